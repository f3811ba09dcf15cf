"""Run a protocol's test patients through the engine and compare with what the pharmacist expects.

Pure: engine data in, plain results out (no Django). A check passes when the status is the
expected one and, for a named step, the ordered per-dose and per-day ranges are exactly the
expected ones (a missing per-dose range is expected when the step states no interval).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from engine import notation
from engine.data import DoseRange, PatientInputs, ProtocolData, Recommendation, StepResult
from engine.recommend import recommend
from engine.text import step_words
from engine.vocabulary import Status


@dataclass(frozen=True, slots=True)
class PatientExpectation:
    test_patient_id: int
    label: str
    patient: PatientInputs
    status: Status
    step_name: str = ""
    per_dose_mg: DoseRange | None = None
    per_day_mg: DoseRange | None = None


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    expectation: PatientExpectation
    recommendation: Recommendation
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def checked_step(self) -> StepResult | None:
        return step_named(self.recommendation, self.expectation.step_name)

    @property
    def step_orders(self) -> tuple[tuple[str, str], ...]:
        """Each step's name and order line, as the result page words it."""
        return tuple((r.step.name, step_words(r).order_text) for r in self.recommendation.steps)


def answer_lines(recommendation: Recommendation | None) -> dict[str, str]:
    """An answer as labelled lines in words (status, each step's amounts and order, each warning's text)."""
    if recommendation is None:
        return {}
    lines = {"Status": recommendation.status.value.replace("_", " ")}
    for result in recommendation.steps:
        name = result.step.name
        lines[f"{name}: per dose"] = range_text(result.per_dose_mg)
        lines[f"{name}: per day"] = range_text(result.per_day_mg, "mg/day")
        lines[f"{name}: order"] = step_words(result).order_text
    lines["Warnings"] = "\n".join(f"{w.severity.value}: {w.text}" for w in recommendation.warnings) or "none"
    return lines


def range_text(value: DoseRange | None, unit: str = "mg") -> str:
    if value is None:
        return "none"
    return notation.amount_range(value.low, value.high, unit)


def step_named(recommendation: Recommendation, name: str) -> StepResult | None:
    if not name:
        return None
    return next((s for s in recommendation.steps if s.step.name == name), None)


def _same_range(expected: DoseRange | None, actual: DoseRange | None) -> bool:
    if expected is None or actual is None:
        return expected is None and actual is None
    return expected.low == actual.low and expected.high == actual.high


def expectation_check(*, expectation: PatientExpectation, protocol: ProtocolData) -> CheckOutcome:
    recommendation = recommend(protocol=protocol, patient=expectation.patient)
    problems: list[str] = []
    if recommendation.status != expectation.status:
        problems.append(f"status: expected {expectation.status.value}, got {recommendation.status.value}")
    if expectation.step_name:
        matching = [s for s in recommendation.steps if s.step.name == expectation.step_name]
        if not matching:
            shown = ", ".join(f'"{s.step.name}"' for s in recommendation.steps) or "none"
            problems.append(f'step "{expectation.step_name}" is not in the answer (steps given: {shown})')
        elif len(matching) > 1:
            problems.append(f'step "{expectation.step_name}": several steps have this name; rename one')
        else:
            step = matching[0]
            if not _same_range(expectation.per_dose_mg, step.per_dose_mg):
                problems.append(
                    f"{expectation.step_name}, per dose: expected {range_text(expectation.per_dose_mg)}, "
                    f"got {range_text(step.per_dose_mg)}"
                )
            if not _same_range(expectation.per_day_mg, step.per_day_mg):
                problems.append(
                    f"{expectation.step_name}, per day: expected {range_text(expectation.per_day_mg, 'mg/day')}, "
                    f"got {range_text(step.per_day_mg, 'mg/day')}"
                )
    return CheckOutcome(expectation=expectation, recommendation=recommendation, problems=tuple(problems))


_FLAG_WORDS = (
    ("thrombocytopenia_or_coagulopathy", "thrombocytopenia or coagulopathy"),
    ("concurrent_tnf_blocker", "TNF blocker"),
    ("ecoli_protein_hypersensitivity", "E. coli-protein hypersensitivity"),
    ("active_infection", "active infection"),
)


def _yes_no(value: object) -> str:
    return "yes" if value else "no"


def patient_inputs_text(inputs: dict) -> str:
    """A test patient's inputs (API request fields) in a clinician's words, for diffs and change records."""
    weight = inputs.get("weight_kg")
    age = inputs.get("age_years")
    parts = [
        f"{notation.plain_number(Decimal(weight), Decimal('0.001'))} kg" if weight is not None else "no weight",
        f"{notation.plain_number(Decimal(age), Decimal('0.01'))} years" if age is not None else "no age",
    ]
    for item in inputs.get("toxicities", []):
        word = "severity" if item.get("type") == "carHLH" else "grade"
        parts.append(f"{item.get('type')} {word} {item.get('grade')}")
    parts.append(f"tocilizumab doses {inputs.get('prior_tocilizumab_doses')}")
    parts.append(f"steroids {_yes_no(inputs.get('prior_steroids'))}")
    if inputs.get("car_target") not in (None, "other"):
        parts.append(f"{inputs['car_target']} CAR T")
    if inputs.get("days_since_infusion") is not None:
        parts.append(f"day {inputs['days_since_infusion']} after infusion")
    for name, word in (
        ("fever", "fever"),
        ("hypotension", "hypotension"),
        ("late_onset_isolated", "late, isolated onset"),
    ):
        if inputs.get(name) is not None:
            parts.append(f"{word} {_yes_no(inputs[name])}")
    parts += [word for name, word in _FLAG_WORDS if inputs.get(name)]
    if inputs.get("creatinine_clearance_ml_min") is not None:
        parts.append(
            f"creatinine clearance {notation.amount(Decimal(inputs['creatinine_clearance_ml_min']), 'mL/min')}"
        )
    return "; ".join(parts)
