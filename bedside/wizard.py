"""The wizard's flow: its steps, the answers kept in the session, and what a finished wizard sends.

Each step keeps the raw text the user typed (so Back and Forward never lose anything, even an answer
that does not validate yet). A step is complete when its stored answers validate; a later step is
only shown once every earlier one is complete (pretalx's flow idea: steps that know whether they are
done). Answers become a `RecommendationRequest`, the API's schema, so the wizard and the API cannot
disagree about what is valid.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib.sessions.backends.base import SessionBase
from django.dispatch import Signal

from bedside.forms import (
    ABSENT,
    CALCULATE,
    FALSE,
    NONE_APPLY,
    SAFETY_QUESTIONS,
    SOME_APPLY,
    TOXICITY_FIELDS,
    TRUE,
    UNKNOWN,
    GradeOutcome,
    GradingContext,
    PatientForm,
    ToxicitiesForm,
    YesNoField,
)
from engine import notation
from engine.vocabulary import CarTarget, Toxicity

SESSION_KEY = "bedside_wizard"
# Sent (with `session`) when the wizard's patient ends: its answers are reset for a new patient, or its
# result is stored. Whatever another app keeps beside the answers about that patient (an EHR launch's
# patient context) ends with it.
patient_ended = Signal()


@dataclass(frozen=True, slots=True)
class Step:
    slug: str
    title: str
    form_class: type[forms.Form]
    template: str


PATIENT = Step("patient", "Patient and treatment", PatientForm, "bedside/wizard/patient.html")
TOXICITIES = Step("toxicities", "Toxicities and grades", ToxicitiesForm, "bedside/wizard/toxicities.html")
STEPS: tuple[Step, ...] = (PATIENT, TOXICITIES)
STEPS_BY_SLUG = {step.slug: step for step in STEPS}
GRADE_FIELDS = {Toxicity.CRS: "crs_grade", Toxicity.ICANS: "icans_grade", Toxicity.CARHLH: "carhlh_grade"}
# Steps of the earlier four-step wizard, now part of these (a bookmark or an open tab still lands).
FORMER_STEPS = {"treatment": PATIENT, "institution": PATIENT}


def step_index(step: Step) -> int:
    return STEPS.index(step)


# --- Session storage -------------------------------------------------------------------------------


class WizardAnswers:
    """The raw answers of each step in the session, plus where they came from."""

    def __init__(self, session: SessionBase) -> None:
        self.session = session
        self.data: dict[str, Any] = session.get(SESSION_KEY) or {"answers": {}}
        self._merge_former_steps()

    def _merge_former_steps(self) -> None:
        """Answers kept by the earlier four-step wizard move to the step that asks them now, so an
        assessment in progress during an upgrade loses nothing."""
        answers = self.data["answers"]
        if not any(slug in answers for slug in FORMER_STEPS):
            return
        patient = answers.setdefault(PATIENT.slug, {})
        for slug in FORMER_STEPS:
            for name, value in answers.pop(slug, {}).items():
                patient.setdefault(name, value)
        toxicities = answers.setdefault(TOXICITIES.slug, {})
        for name in ("fever", "hypotension"):
            if name in patient:
                toxicities.setdefault(name, patient.pop(name))
        self._store()

    def for_step(self, step: Step) -> dict[str, str]:
        return dict(self.data["answers"].get(step.slug, {}))

    def save_step(self, step: Step, raw: Mapping[str, str]) -> None:
        if self.data["answers"].get(step.slug) == dict(raw):
            return  # nothing changed: the answers still produce the finished assessment, if any
        self.data["answers"][step.slug] = dict(raw)
        self.data.pop("finished_assessment", None)
        self._store()

    def fill(self, answers: Mapping[str, Mapping[str, str]], *, finished_assessment: str) -> None:
        """Every step's answers at once, as they were when `finished_assessment` was made (its result page
        "Change answers"). The patient before them, if any, ends first."""
        self.reset()
        self.data = {
            "answers": {step.slug: dict(answers[step.slug]) for step in STEPS if step.slug in answers},
            "finished_assessment": finished_assessment,
        }
        self._store()

    def reset(self) -> None:
        self.data = {"answers": {}}
        self._store()
        patient_ended.send(sender=WizardAnswers, session=self.session)

    def mark_finished(self, assessment_id: str) -> None:
        self.data["finished_assessment"] = assessment_id
        self._store()
        patient_ended.send(sender=WizardAnswers, session=self.session)

    @property
    def finished_assessment(self) -> str | None:
        return self.data.get("finished_assessment")

    @property
    def is_empty(self) -> bool:
        return not any(self.data["answers"].values())

    def _store(self) -> None:
        self.session[SESSION_KEY] = self.data
        self.session.modified = True


def raw_answers(step: Step, data: Mapping[str, Any]) -> dict[str, str]:
    """The submitted text of a step's fields, exactly as typed (an unticked box is "")."""
    return {name: str(data.get(name, "")) for name in step.form_class.base_fields}


# --- Evaluating the steps in order ------------------------------------------------------------------


@dataclass(slots=True)
class StepState:
    step: Step
    complete: bool
    cleaned: dict[str, Any] | None
    form: forms.Form | None  # bound to the stored answers; None when an earlier step is incomplete


def grading_context(patient: dict[str, Any]) -> GradingContext:
    return GradingContext(
        age_years=patient["age_years"],
        tocilizumab_doses=patient["prior_tocilizumab_doses"],
        steroids_given_or_starting=patient["prior_steroids"],
    )


def form_kwargs_for(
    step: Step, cleaned_before: dict[str, dict[str, Any]], institutions: Callable[[], list[tuple[str, str]]]
) -> dict[str, Any] | None:
    """Extra form arguments a step needs from earlier steps; None when they are not complete yet."""
    if step is TOXICITIES:
        if PATIENT.slug not in cleaned_before:
            return None
        return {"context": grading_context(cleaned_before[PATIENT.slug])}
    return {"institutions": institutions()}


def evaluate(answers: WizardAnswers, institutions: Callable[[], list[tuple[str, str]]]) -> list[StepState]:
    states: list[StepState] = []
    cleaned_before: dict[str, dict[str, Any]] = {}
    for step in STEPS:
        stored = answers.for_step(step)
        kwargs = form_kwargs_for(step, cleaned_before, institutions) if stored else None
        if kwargs is None:
            states.append(StepState(step=step, complete=False, cleaned=None, form=None))
            continue
        form = step.form_class(data=stored, **kwargs)
        if form.is_valid():
            cleaned_before[step.slug] = form.cleaned_data
            states.append(StepState(step=step, complete=True, cleaned=form.cleaned_data, form=form))
        else:
            states.append(StepState(step=step, complete=False, cleaned=None, form=form))
    return states


def first_incomplete(states: list[StepState]) -> StepState | None:
    return next((s for s in states if not s.complete), None)


# --- What a finished wizard sends -------------------------------------------------------------------


# A computed grade's own answers (the findings the helper was given), kept with the grading record so the
# wizard can be filled in again from a stored assessment. Fever and hypotension are request fields.
HELPER_FIELDS = {
    toxicity: tuple(name for name in names if name not in ("fever", "hypotension", GRADE_FIELDS[toxicity]))
    for toxicity, names in TOXICITY_FIELDS.items()
    if toxicity in GRADE_FIELDS
}


def grading_records(states: list[StepState], raw_toxicities: Mapping[str, str]) -> list[dict[str, Any]]:
    """How each grade was reached (bedside.AssessmentGrading), with a computed grade's answers as typed."""
    records = []
    for outcome in toxicity_outcomes(states):
        record = outcome.as_record()
        if outcome.method == "computed":
            record["answers"] = {name: raw_toxicities.get(name, "") for name in HELPER_FIELDS[outcome.toxicity]}
        records.append(record)
    return records


def toxicity_outcomes(states: list[StepState]) -> list[GradeOutcome]:
    form = states[step_index(TOXICITIES)].form
    assert isinstance(form, ToxicitiesForm) and form.is_valid()
    return [form.outcomes[t] for t in Toxicity if t in form.outcomes]


def clinical_answers(states: list[StepState]) -> dict[str, Any]:
    """Every clinical answer in the request's shape (Decimals, ints and booleans)."""
    patient = states[step_index(PATIENT)].cleaned
    toxicities_form = states[step_index(TOXICITIES)].form
    assert patient and isinstance(toxicities_form, ToxicitiesForm)
    toxicities = toxicities_form.cleaned_data
    return {
        "weight_kg": patient["weight_kg"],
        "age_years": patient["age_years"],
        "toxicities": [{"type": o.toxicity.value, "grade": o.grade} for o in toxicity_outcomes(states)],
        "prior_tocilizumab_doses": patient["prior_tocilizumab_doses"],
        "prior_steroids": patient["prior_steroids"],
        "car_target": patient["car_target"] or CarTarget.OTHER.value,
        "days_since_infusion": patient["days_since_infusion"],
        "fever": toxicities["fever"],
        "hypotension": toxicities["hypotension"],
        "late_onset_isolated": toxicities_form.late_onset_answer,
        "thrombocytopenia_or_coagulopathy": patient["thrombocytopenia_or_coagulopathy"],
        "concurrent_tnf_blocker": patient["concurrent_tnf_blocker"],
        "ecoli_protein_hypersensitivity": patient["ecoli_protein_hypersensitivity"],
        "active_infection": patient["active_infection"],
        "creatinine_clearance_ml_min": patient["creatinine_clearance_ml_min"],
    }


def recommendation_request_data(states: list[StepState]) -> dict[str, Any]:
    """Every answer as a RecommendationRequest body."""
    patient = states[step_index(PATIENT)].cleaned
    assert patient is not None
    return {**clinical_answers(states), "institution": patient["institution"]}


# Which step asks for each request field (to send the user back to the right place).
FIELD_STEPS = {
    **dict.fromkeys(
        (
            "weight_kg",
            "age_years",
            "prior_tocilizumab_doses",
            "prior_steroids",
            "car_target",
            "days_since_infusion",
            "thrombocytopenia_or_coagulopathy",
            "concurrent_tnf_blocker",
            "ecoli_protein_hypersensitivity",
            "active_infection",
            "creatinine_clearance_ml_min",
            "institution",
        ),
        PATIENT,
    ),
    **dict.fromkeys(("toxicities", "fever", "hypotension", "late_onset_isolated"), TOXICITIES),
}


# --- Pre-filling from a link (the EHR launch) -------------------------------------------------------

BOOLEAN_WORDS = {"true": TRUE, "false": FALSE}


def _prefill_field(name: str) -> tuple[Step, forms.Field] | None:
    step = FIELD_STEPS.get(name)
    if step is None or name in ("toxicities", "institution"):
        return None
    form_field = step.form_class.base_fields.get(name)
    return (step, form_field) if form_field is not None else None


@dataclass(frozen=True, slots=True)
class Prefill:
    answers: dict[str, dict[str, str]]
    used: tuple[str, ...]
    invalid: tuple[str, ...]  # "name: why"
    unknown: tuple[str, ...]


def prefill_from_query(query: Mapping[str, str], institution_slugs: frozenset[str]) -> Prefill:
    """Answers from query parameters named like the API request fields; bad or unknown ones are
    reported, never fatal. Booleans are `true` or `false`. Grades are never taken from a link."""
    answers: dict[str, dict[str, str]] = {}
    used: list[str] = []
    invalid: list[str] = []
    unknown: list[str] = []
    for name, value in query.items():
        value = value.strip()
        if name == "institution":
            if value in institution_slugs:
                answers.setdefault(PATIENT.slug, {})["institution"] = value
                used.append(name)
            else:
                invalid.append(f"{name}: no published protocol for {value!r}")
            continue
        target = _prefill_field(name)
        if target is None:
            unknown.append(name)
            continue
        step, form_field = target
        if isinstance(form_field, YesNoField):
            raw = BOOLEAN_WORDS.get(value.lower())
            if raw is None:
                invalid.append(f"{name}: must be true or false")
                continue
        else:
            raw = value
            try:
                form_field.clean(raw)
            except forms.ValidationError as error:
                invalid.append(f"{name}: {' '.join(error.messages)}")
                continue
        answers.setdefault(step.slug, {})[name] = raw
        used.append(name)
    return Prefill(answers=answers, used=tuple(used), invalid=tuple(invalid), unknown=tuple(unknown))


def prefill_rows(prefill: Prefill, institution_names: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(parameter, question, answer in words) for each value the link carries, for the confirmation page."""
    rows = []
    for step in STEPS:
        for name, raw in prefill.answers.get(step.slug, {}).items():
            form_field = step.form_class.base_fields[name]
            if name == "institution":
                shown = institution_names.get(raw, raw)
            elif isinstance(form_field, forms.ChoiceField):
                shown = str(dict(form_field.choices).get(raw, raw))
            else:
                shown = raw
            rows.append((name, str(form_field.label), shown))
    return rows


# --- Filling the wizard again from a stored assessment ---------------------------------------------


def _flag(value: Any, *, unknown: str = "") -> str:
    return {True: TRUE, False: FALSE}.get(value, unknown)


def _number(value: Any) -> str:
    return "" if value is None else str(notation.plain_decimal(Decimal(str(value))))


def answers_from_assessment(inputs: Mapping[str, Any], gradings: list[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """Every answer a stored assessment was made from, as the wizard's raw answers: its request inputs, and
    how each grade was reached (a computed grade gets "Calculate" and the findings it was given, when the
    record kept them; an older record did not, and the helper then asks for them again)."""
    safety = {name: inputs.get(name) for name in SAFETY_QUESTIONS}
    some = any(value is True for value in safety.values())
    patient = {
        "weight_kg": _number(inputs["weight_kg"]),
        "age_years": _number(inputs["age_years"]),
        "prior_tocilizumab_doses": str(inputs["prior_tocilizumab_doses"]),
        "prior_steroids": _flag(inputs["prior_steroids"]),
        "safety_screen": SOME_APPLY if some else NONE_APPLY,
        **{name: _flag(value) if some else "" for name, value in safety.items()},
        "institution": inputs.get("institution") or "",
        "car_target": str(inputs.get("car_target") or ""),
        "days_since_infusion": _number(inputs.get("days_since_infusion")),
        "creatinine_clearance_ml_min": _number(inputs.get("creatinine_clearance_ml_min")),
    }
    toxicities = {name: "" for name in TOXICITIES.form_class.base_fields}
    toxicities.update(
        fever=_flag(inputs.get("fever"), unknown=UNKNOWN),
        hypotension=_flag(inputs.get("hypotension"), unknown=UNKNOWN),
        **{field: ABSENT for field in GRADE_FIELDS.values()},
    )
    records = {record["type"]: record for record in gradings}
    for given in inputs.get("toxicities", []):
        toxicity = Toxicity(given["type"])
        record = records.get(toxicity.value, {})
        if record.get("method") == "computed":
            toxicities[GRADE_FIELDS[toxicity]] = CALCULATE
            toxicities.update({name: str(value) for name, value in record.get("answers", {}).items()})
        else:
            toxicities[GRADE_FIELDS[toxicity]] = str(given["grade"])
        if toxicity is Toxicity.CARHLH:
            toxicities["late_onset_isolated"] = _flag(inputs.get("late_onset_isolated"), unknown=UNKNOWN)
    return {PATIENT.slug: patient, TOXICITIES.slug: toxicities}


def findings_not_kept(gradings: list[Mapping[str, Any]]) -> list[str]:
    """The toxicities whose computed grade's findings an older grading record did not keep."""
    return [record["type"] for record in gradings if record.get("method") == "computed" and "answers" not in record]
