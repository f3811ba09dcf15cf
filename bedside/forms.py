"""The wizard's step forms and the evidence filter. Thin: field rules and error messages here, grading in
`engine.grading`, everything else in services and selectors.

Every input is a text box or a radio group (never a browser number box, which would throw away what the
user typed), and every safety question needs an explicit answer: a missing answer is never a silent "no"
("No, none of these" is one explicit answer to all four).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django import forms

from engine import grading, limits, notation
from engine.grading import (
    CARHLH_SEVERITY_WORDS,
    GradeResult,
    GradingInputError,
    ScreeningTool,
)
from engine.inputs import weight_kg_quantize
from engine.vocabulary import CarTarget, Toxicity

TRUE, FALSE, UNKNOWN = "true", "false", "unknown"
YES_NO = [(TRUE, "Yes"), (FALSE, "No")]
YES_NO_UNKNOWN = [*YES_NO, (UNKNOWN, "Not recorded")]
ABSENT, CALCULATE = "absent", "calculate"


def _yes_no(value: str) -> bool | None:
    return {TRUE: True, FALSE: False}.get(value)


class YesNoField(forms.TypedChoiceField):
    """Yes / No (and optionally Not recorded) as radios; cleans to True, False or None."""

    def __init__(self, *, allow_unknown: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("error_messages", {"required": "Choose an answer."})
        super().__init__(
            choices=YES_NO_UNKNOWN if allow_unknown else YES_NO,
            coerce=_yes_no,
            empty_value=None,
            widget=forms.RadioSelect,
            **kwargs,
        )


# Digits 0-9 with at most one decimal point, nothing else: Python's Decimal and int would also take "1e2",
# "+20", "1_0", "Infinity" and non-ASCII digits such as "٢٠", none of which a clinician means as a weight.
PLAIN_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+", re.ASCII)
PLAIN_NUMBER_MESSAGE = "Enter a number using the digits 0-9 and at most one decimal point (for example 20.5)."
DECIMAL_COMMA = "Use a point for decimals, not a comma (for example 20.5)."


def _plain_number(value: Any, invalid_message: str) -> Decimal:
    """A plain decimal number typed into a text box (surrounding spaces ignored), else the field's message.
    Trailing zeros after the point are dropped: the value counts, not the spelling ("20.0000" is 20)."""
    text = str(value).strip()
    if PLAIN_NUMBER.fullmatch(text) is None:
        message = DECIMAL_COMMA if re.fullmatch(r"[0-9]+,[0-9]+", text, re.ASCII) else invalid_message
        raise forms.ValidationError(message, code="invalid")
    return notation.plain_decimal(Decimal(text))


class PlainDecimalField(forms.DecimalField):
    """A DecimalField that takes only plain decimal numbers (see PLAIN_NUMBER)."""

    def to_python(self, value: Any) -> Decimal | None:
        if value in self.empty_values or (isinstance(value, str) and not value.strip()):
            return None
        return _plain_number(value, self.error_messages["invalid"])


# A number followed by a unit: the box takes the number alone, in its own unit.
_WITH_UNIT = r"\s*[0-9]+(?:[.,][0-9]*)?\s*(?:{units})\.?\s*"
WEIGHT_IN_POUNDS = re.compile(_WITH_UNIT.format(units="lbs?|pounds?|#"), re.ASCII | re.IGNORECASE)
WEIGHT_WITH_KG = re.compile(_WITH_UNIT.format(units="kgs?|kilos?|kilograms?"), re.ASCII | re.IGNORECASE)
AGE_IN_MONTHS = re.compile(_WITH_UNIT.format(units="m|mo|mos|months?"), re.ASCII | re.IGNORECASE)
AGE_WITH_YEARS = re.compile(_WITH_UNIT.format(units="y|yr|yrs|years?"), re.ASCII | re.IGNORECASE)
WEIGHT_HINT = (
    f"In kilograms (kg) only, {limits.WEIGHT_KG.low} to {limits.WEIGHT_KG.high}, for example 20.5. "
    "Pounds are not accepted."
)
WEIGHT_NOT_KG = "Enter the weight in kilograms (kg), for example 20.5; pounds are not accepted."
WEIGHT_POUNDS = "Pounds are not accepted: enter the weight in kilograms (kg), for example 20.5."
WEIGHT_UNIT_TYPED = "Enter the number of kilograms alone, without “kg”: for example 20.5."
AGE_HINT = (
    f"In years, {limits.AGE_YEARS.low} to {limits.AGE_YEARS.high}, for example 8. "
    "Under 2 years, use decimals: 1.5 is 18 months, 0.75 is 9 months."
)
AGE_NOT_YEARS = "Enter the age in years, for example 8, or 1.5 for 18 months."
AGE_MONTHS = "Enter the age in years, not months: for example 1.5 for 18 months, 0.75 for 9 months."
AGE_UNIT_TYPED = "Enter the number of years alone, without the unit: for example 8, or 1.5 for 18 months."


class WeightKgField(PlainDecimalField):
    """A weight in kg: any number of decimals, quantized to the gram before the range check, like the API
    (engine.inputs.weight_kg_quantize); the box keeps what was typed. Anything but a plain number is
    refused with a message about kilograms (someone typed "44 lb"); a weight is never converted."""

    def to_python(self, value: Any) -> Decimal | None:
        if value in self.empty_values or (isinstance(value, str) and not value.strip()):
            return None
        text = str(value)
        if WEIGHT_IN_POUNDS.fullmatch(text):
            raise forms.ValidationError(WEIGHT_POUNDS, code="pounds")
        if WEIGHT_WITH_KG.fullmatch(text):
            raise forms.ValidationError(WEIGHT_UNIT_TYPED, code="invalid")
        return weight_kg_quantize(_plain_number(text, WEIGHT_NOT_KG))


class AgeYearsField(PlainDecimalField):
    """An age in years (decimals for months); a number in months is refused with how to write it."""

    def to_python(self, value: Any) -> Decimal | None:
        if value in self.empty_values or (isinstance(value, str) and not value.strip()):
            return None
        text = str(value)
        if AGE_IN_MONTHS.fullmatch(text):
            raise forms.ValidationError(AGE_MONTHS, code="months")
        if AGE_WITH_YEARS.fullmatch(text):
            raise forms.ValidationError(AGE_UNIT_TYPED, code="invalid")
        return _plain_number(text, AGE_NOT_YEARS)


class PlainIntegerField(forms.IntegerField):
    """An IntegerField that takes only plain whole numbers ("20" or "20.0", never "+20" or "2e1")."""

    def to_python(self, value: Any) -> int | None:
        if value in self.empty_values or (isinstance(value, str) and not value.strip()):
            return None
        number = _plain_number(value, self.error_messages["invalid"])
        if number != number.to_integral_value():
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return int(number)


def _decimal_input(**attrs: str) -> forms.TextInput:
    return forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", **attrs})


def _whole_input(**attrs: str) -> forms.TextInput:
    return forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off", **attrs})


def _range_messages(limit: limits.Limit, unit: str | None = None) -> dict[str, str]:
    """The messages for a value outside `limit`, naming its unit (or `unit`, such as "doses")."""
    unit = limit.unit if unit is None else unit
    suffix = f" {unit}" if unit else ""
    message = f"Enter a value from {limit.low} to {limit.high}{suffix}."
    return {"min_value": message, "max_value": message, "invalid": PLAIN_NUMBER_MESSAGE}


def _places_message(limit: limits.Limit) -> dict[str, str]:
    places = "1 decimal place" if limit.decimals == 1 else f"{limit.decimals} decimal places"
    return {"max_decimal_places": f"Use at most {places}."}


def _decimal_bounds(limit: limits.Limit) -> dict[str, Any]:
    """A decimal box's bounds: the range, and the digits and decimal places it takes."""
    return {
        "min_value": limit.low,
        "max_value": limit.high,
        "max_digits": limit.max_digits,
        "decimal_places": limit.decimals,
    }


# --- Step 1: the patient and prior treatment --------------------------------------------------------

SAFETY_QUESTIONS = (
    "ecoli_protein_hypersensitivity",
    "active_infection",
    "concurrent_tnf_blocker",
    "thrombocytopenia_or_coagulopathy",
)
NONE_APPLY, SOME_APPLY = "none", "some"


class RequiredWhenItApplies:
    """A question the form requires only when it applies (the form's clean() says when and adds the
    message). Marked required on the page, so the marker is there whenever the question is shown."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=True, **kwargs)  # type: ignore[call-arg]

    def validate(self, value: Any) -> None:
        if value not in self.empty_values:  # type: ignore[attr-defined]
            super().validate(value)  # type: ignore[misc]


class ConditionalYesNoField(RequiredWhenItApplies, YesNoField):
    pass


class ConditionalChoiceField(RequiredWhenItApplies, forms.ChoiceField):
    pass


class PatientForm(forms.Form):
    weight_kg = WeightKgField(
        label="Weight (kg)",
        min_value=limits.WEIGHT_KG.low,
        max_value=limits.WEIGHT_KG.high,
        help_text=WEIGHT_HINT,
        widget=_decimal_input(),
        error_messages=_range_messages(limits.WEIGHT_KG),
    )
    age_years = AgeYearsField(
        label="Age (years)",
        **_decimal_bounds(limits.AGE_YEARS),
        help_text=AGE_HINT,
        widget=_decimal_input(),
        error_messages={**_range_messages(limits.AGE_YEARS), **_places_message(limits.AGE_YEARS)},
    )
    prior_tocilizumab_doses = PlainIntegerField(
        label="Tocilizumab doses given so far",
        min_value=limits.PRIOR_TOCILIZUMAB_DOSES.low,
        max_value=limits.PRIOR_TOCILIZUMAB_DOSES.high,
        help_text="0 if none.",
        widget=_whole_input(),
        error_messages={
            **_range_messages(limits.PRIOR_TOCILIZUMAB_DOSES, "doses"),
            "invalid": "Enter a whole number of doses.",
        },
    )
    prior_steroids = YesNoField(label="Steroids given, or starting now")
    safety_screen = ConditionalChoiceField(
        label=(
            "Does any of these apply now: hypersensitivity to E. coli-derived proteins or anakinra, an active "
            "infection, a TNF blocker, thrombocytopenia or coagulopathy?"
        ),
        choices=[(NONE_APPLY, "No, none of these"), (SOME_APPLY, "Yes, one or more: answer each below")],
        widget=forms.RadioSelect,
        error_messages={"required": "Choose “No, none of these”, or “Yes” and answer each question."},
    )
    ecoli_protein_hypersensitivity = ConditionalYesNoField(
        label="Known hypersensitivity to E. coli-derived proteins or any component of anakinra"
    )
    active_infection = ConditionalYesNoField(label="Active infection")
    concurrent_tnf_blocker = ConditionalYesNoField(label="Taking a TNF blocker (for example etanercept)")
    thrombocytopenia_or_coagulopathy = ConditionalYesNoField(label="Thrombocytopenia or coagulopathy")
    institution = forms.ChoiceField(
        label="Your center: whose protocol to show first",
        widget=forms.RadioSelect,
        help_text="Every other center's answer follows it.",
        error_messages={
            "required": "Choose your center.",
            "invalid_choice": "Choose one of the listed centers.",
        },
    )
    car_target = forms.ChoiceField(
        label="CAR T-cell target",
        required=False,
        choices=[(t.value, "Other, or not known" if t == CarTarget.OTHER else t.value) for t in CarTarget],
        widget=forms.RadioSelect,
        help_text="Optional: left blank, it is recorded as other or not known.",
    )
    days_since_infusion = PlainIntegerField(
        label="Days since CAR T-cell infusion",
        required=False,
        min_value=limits.DAYS_SINCE_INFUSION.low,
        max_value=limits.DAYS_SINCE_INFUSION.high,
        help_text="Optional.",
        widget=_whole_input(),
        error_messages={
            **_range_messages(limits.DAYS_SINCE_INFUSION, "days"),
            "invalid": "Enter a whole number of days.",
        },
    )
    creatinine_clearance_ml_min = PlainDecimalField(
        label="Creatinine clearance (mL/min)",
        required=False,
        **_decimal_bounds(limits.CREATININE_CLEARANCE_ML_MIN),
        help_text="Optional: leave blank if not known.",
        widget=_decimal_input(),
        error_messages={
            **_range_messages(limits.CREATININE_CLEARANCE_ML_MIN),
            **_places_message(limits.CREATININE_CLEARANCE_ML_MIN),
        },
    )

    def __init__(self, *args: Any, institutions: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["institution"].choices = institutions

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        screen = cleaned.get("safety_screen")
        answers = {name: cleaned.get(name) for name in SAFETY_QUESTIONS if name not in self.errors}
        if screen == NONE_APPLY:
            for name, value in answers.items():
                if value is True:
                    self.add_error(
                        name, "You answered “No, none of these” above: change this to No, or change that answer."
                    )
                elif value is None:
                    cleaned[name] = False  # "none of these" answers every question: No
        elif screen == SOME_APPLY:
            for name, value in answers.items():
                if value is None:
                    self.add_error(name, "Choose an answer.")
            if len(answers) == len(SAFETY_QUESTIONS) and all(value is False for value in answers.values()):
                self.add_error(
                    "safety_screen",
                    "Each question is answered No: choose “No, none of these”, or answer Yes where one applies.",
                )
        elif any(value is None for value in answers.values()):
            # Every question answered one by one is an answer too (a link or an older page may do that).
            self.add_error("safety_screen", self.fields["safety_screen"].error_messages["required"])
        return cleaned

    @property
    def safety_details_answered(self) -> bool:
        return any(self[name].value() for name in SAFETY_QUESTIONS)


# --- Step 2: toxicities and grades ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GradingContext:
    """What the grading helpers need from the first step."""

    age_years: Decimal
    tocilizumab_doses: int
    steroids_given_or_starting: bool | None

    @property
    def screening_tool_without_delay(self) -> ScreeningTool:
        return grading.icans_screening_tool(age_years=self.age_years)

    @property
    def asks_about_antipyretics_or_steroids(self) -> bool:
        """Only before tocilizumab (and without fever) does "already given" decide whether CRS can be graded.
        The first step's "steroids given, or starting now" cannot: starting now is not yet given."""
        return self.tocilizumab_doses == 0


@dataclass(frozen=True, slots=True)
class GradeOutcome:
    """One toxicity's grade and how it was reached."""

    toxicity: Toxicity
    grade: int
    method: str  # "picked" or "computed" (bedside.models.AssessmentGrading.Method)
    result: GradeResult | None = None
    notes: tuple[str, ...] = field(default=())

    def as_record(self) -> dict[str, Any]:
        return {
            "type": self.toxicity.value,
            "grade": self.grade,
            "method": self.method,
            "set_by": [f.text for f in self.result.set_by] if self.result else [],
            "findings": [f"{f.text}: grade {f.grade}" for f in self.result.findings] if self.result else [],
            "notes": list(self.notes),
        }


def _grade_choices(*, calculate: bool, words: dict[int, str] | None = None) -> list[tuple[str, str]]:
    choices = [(ABSENT, "Not present")]
    choices += [(str(g), f"{g} {words[g]}" if words else f"Grade {g}") for g in (1, 2, 3, 4)]
    if calculate:
        choices.append((CALCULATE, "Calculate from findings"))
    return choices


def _enum_choices(words: dict) -> list[tuple[str, str]]:
    return [(key.value, text[:1].upper() + text[1:]) for key, text in words.items()]


def _radio(label: str, choices: list[tuple[str, str]], help_text: str = "") -> forms.ChoiceField:
    return forms.ChoiceField(
        label=label,
        choices=choices,
        required=False,
        widget=forms.RadioSelect,
        help_text=help_text,
    )


OXYGEN_WORDS = {
    grading.OxygenSupport.NONE: "none",
    grading.OxygenSupport.NASAL_CANNULA: "nasal cannula (enter the flow)",
    grading.OxygenSupport.BLOW_BY: "blow-by",
    grading.OxygenSupport.MASK: "facemask, non-rebreather or Venturi mask",
    grading.OxygenSupport.POSITIVE_PRESSURE: "positive pressure (CPAP, BiPAP, intubation and ventilation)",
}
CHOOSE_ONE = "Choose one to calculate the grade."


# The fields that belong to each toxicity: "Calculate grade" checks one toxicity's fields and no other's.
TOXICITY_FIELDS = {
    Toxicity.CRS: (
        "fever",
        "hypotension",
        "crs_grade",
        "crs_hypotension",
        "crs_oxygen",
        "crs_antipyretics_or_steroids_given",
        "crs_oxygen_flow_l_min",
    ),
    Toxicity.ICANS: (
        "icans_grade",
        "icans_developmental_delay",
        "icans_ice_score",
        "icans_capd_total",
        "icans_unable_to_perform",
        "icans_consciousness",
        "icans_seizure",
        "icans_motor",
        "icans_raised_icp",
    ),
    Toxicity.CARHLH: ("carhlh_grade", "late_onset_isolated"),
}


class ToxicitiesForm(forms.Form):
    fever = YesNoField(label="Fever of 38.0 °C or more now", allow_unknown=True, required=False)
    hypotension = YesNoField(label="Hypotension now", allow_unknown=True, required=False)
    crs_grade = forms.ChoiceField(
        label="CRS grade",
        choices=_grade_choices(calculate=True),
        initial=ABSENT,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose a grade, Not present, or Calculate."},
    )
    crs_hypotension = _radio("Hypotension", _enum_choices(grading.HYPOTENSION_WORDS))
    crs_oxygen = _radio("Oxygen", _enum_choices(OXYGEN_WORDS))
    crs_antipyretics_or_steroids_given = forms.BooleanField(
        label="Antipyretics or steroids have already been given (not only planned)",
        required=False,
        help_text="Then fever is no longer required to grade CRS.",
    )
    crs_oxygen_flow_l_min = PlainDecimalField(
        label="Nasal cannula flow (L/min)",
        required=False,
        **_decimal_bounds(limits.OXYGEN_FLOW_L_MIN),
        help_text="6 L/min or less is low flow; above 6 L/min is high flow.",
        widget=_decimal_input(),
        error_messages={
            "min_value": "Enter a flow above 0 L/min.",
            "max_value": f"Enter a flow of at most {limits.OXYGEN_FLOW_L_MIN.high} L/min.",
            "invalid": PLAIN_NUMBER_MESSAGE,
            **_places_message(limits.OXYGEN_FLOW_L_MIN),
        },
    )

    icans_grade = forms.ChoiceField(
        label="ICANS grade",
        choices=_grade_choices(calculate=True),
        initial=ABSENT,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose a grade, Not present, or Calculate."},
    )
    icans_developmental_delay = forms.BooleanField(
        label="Use CAPD at age 12 or over (developmental delay)", required=False
    )
    icans_ice_score = PlainIntegerField(
        label=f"ICE score ({limits.ICE_SCORE.low} to {limits.ICE_SCORE.high})",
        required=False,
        min_value=limits.ICE_SCORE.low,
        max_value=limits.ICE_SCORE.high,
        help_text="Age 12 and over.",
        widget=_whole_input(),
        error_messages={
            **_range_messages(limits.ICE_SCORE),
            "invalid": f"Enter a whole number from {limits.ICE_SCORE.low} to {limits.ICE_SCORE.high}.",
        },
    )
    icans_capd_total = PlainIntegerField(
        label=f"CAPD total ({limits.CAPD_TOTAL.low} to {limits.CAPD_TOTAL.high})",
        required=False,
        min_value=limits.CAPD_TOTAL.low,
        max_value=limits.CAPD_TOTAL.high,
        help_text=(
            "Age under 12, or developmental delay. Enter the total only: 0 shows no delirium features (no finding), "
            "1 to 8 is grade 1 or 2, 9 or more is grade 3."
        ),
        widget=_whole_input(),
        error_messages={
            **_range_messages(limits.CAPD_TOTAL),
            "invalid": f"Enter a whole number from {limits.CAPD_TOTAL.low} to {limits.CAPD_TOTAL.high}.",
        },
    )
    icans_unable_to_perform = forms.BooleanField(label="Unarousable: cannot perform ICE or CAPD", required=False)
    icans_consciousness = _radio(
        "Level of consciousness (not due to sedation)", _enum_choices(grading.CONSCIOUSNESS_WORDS)
    )
    icans_seizure = _radio("Seizure", _enum_choices(grading.SEIZURE_WORDS))
    icans_motor = _radio("Motor findings (tremor and myoclonus do not count)", _enum_choices(grading.MOTOR_WORDS))
    icans_raised_icp = _radio("Raised intracranial pressure or cerebral edema", _enum_choices(grading.RAISED_ICP_WORDS))

    carhlh_grade = forms.ChoiceField(
        label="carHLH severity (clinician-entered; not an ASTCT grade)",
        choices=_grade_choices(calculate=False, words=CARHLH_SEVERITY_WORDS),
        initial=ABSENT,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose a severity, or Not present."},
    )
    late_onset_isolated = ConditionalYesNoField(
        label="Late, isolated onset (carHLH arising late, without active CRS)",
        allow_unknown=True,
        help_text="Needed with carHLH; Not recorded is an answer.",
    )

    def __init__(self, *args: Any, context: GradingContext, only: Toxicity | None = None, **kwargs: Any) -> None:
        """`only`: grade that one toxicity and check nothing else ("Calculate grade")."""
        super().__init__(*args, **kwargs)
        self.context = context
        self.only = only
        self.outcomes: dict[Toxicity, GradeOutcome] = {}

    @property
    def outcomes_by_name(self) -> dict[str, GradeOutcome]:
        return {t.value: o for t, o in self.outcomes.items()}

    def full_clean(self) -> None:
        super().full_clean()
        if self.only is not None and self._errors is not None:
            # Only the toxicity being calculated: another one's answers are not asked for yet.
            keep = TOXICITY_FIELDS[self.only]
            for name in [name for name in self._errors if name not in keep]:
                del self._errors[name]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        choices = {
            Toxicity.CRS: cleaned.get("crs_grade"),
            Toxicity.ICANS: cleaned.get("icans_grade"),
            Toxicity.CARHLH: cleaned.get("carhlh_grade"),
        }
        if self.only is None and all(choice == ABSENT for choice in choices.values()):
            raise forms.ValidationError("Mark at least one toxicity as present, with a grade.")
        for toxicity, choice in choices.items():
            if choice in (None, ABSENT) or self.only not in (None, toxicity):
                continue
            if choice != CALCULATE:
                self.outcomes[toxicity] = GradeOutcome(toxicity=toxicity, grade=int(choice), method="picked")
            elif toxicity == Toxicity.CRS:
                self._calculate_crs(cleaned)
            else:
                self._calculate_icans(cleaned)
        late_onset_answered = self.data.get(self.add_prefix("late_onset_isolated"), "") != ""
        if choices[Toxicity.CARHLH] not in (None, ABSENT) and not late_onset_answered:
            self.add_error("late_onset_isolated", "Choose an answer for carHLH (Not recorded is an answer).")
        return cleaned

    def _require(self, cleaned: dict[str, Any], names: tuple[str, ...]) -> bool:
        missing = [name for name in names if not cleaned.get(name) and name not in self.errors]
        for name in missing:
            self.add_error(name, CHOOSE_ONE)
        return not missing and not any(name in self.errors for name in names)

    def _calculate_crs(self, cleaned: dict[str, Any]) -> None:
        if not self._require(cleaned, ("crs_hypotension", "crs_oxygen")) or "crs_oxygen_flow_l_min" in self.errors:
            return
        hypotension = grading.Hypotension(cleaned["crs_hypotension"])
        oxygen = grading.OxygenSupport(cleaned["crs_oxygen"])
        flow = cleaned.get("crs_oxygen_flow_l_min")
        if flow is not None and oxygen != grading.OxygenSupport.NASAL_CANNULA:
            self.add_error(
                "crs_oxygen_flow_l_min", "A flow is only used with a nasal cannula; clear it or change Oxygen."
            )
            return
        recorded = cleaned.get("hypotension")
        if recorded is False and hypotension != grading.Hypotension.NONE:
            self.add_error("crs_hypotension", "“Hypotension now” above says No: correct one of the two.")
            return
        if recorded is True and hypotension == grading.Hypotension.NONE:
            self.add_error("crs_hypotension", "“Hypotension now” above says Yes: choose how it is treated.")
            return
        try:
            fever = cleaned.get("fever")
            result = grading.crs_grade(
                fever=fever,
                tocilizumab_given=self.context.tocilizumab_doses > 0,
                # A tick left over from before the question applied (say, fever now recorded) is ignored.
                antipyretics_or_steroids_given=self.context.asks_about_antipyretics_or_steroids
                and fever is not True
                and bool(cleaned.get("crs_antipyretics_or_steroids_given")),
                hypotension=hypotension,
                oxygen=oxygen,
                oxygen_flow_l_min=flow,
            )
        except GradingInputError as error:
            self.add_error(f"crs_{error.field}", error.message)
            return
        if result.grade is None:
            self.add_error("crs_grade", result.explanation)
            return
        self.outcomes[Toxicity.CRS] = GradeOutcome(
            toxicity=Toxicity.CRS, grade=result.grade, method="computed", result=result, notes=result.notes
        )

    def _calculate_icans(self, cleaned: dict[str, Any]) -> None:
        domains = ("icans_consciousness", "icans_seizure", "icans_motor", "icans_raised_icp")
        if not self._require(cleaned, domains) or any(
            name in self.errors for name in ("icans_ice_score", "icans_capd_total")
        ):
            return
        try:
            result = grading.icans_grade(
                age_years=self.context.age_years,
                developmental_delay=bool(cleaned.get("icans_developmental_delay")),
                ice_score=cleaned.get("icans_ice_score"),
                capd_total=cleaned.get("icans_capd_total"),
                unable_to_perform=bool(cleaned.get("icans_unable_to_perform")),
                consciousness=grading.Consciousness(cleaned["icans_consciousness"]),
                seizure=grading.Seizure(cleaned["icans_seizure"]),
                motor=grading.Motor(cleaned["icans_motor"]),
                raised_icp=grading.RaisedIcp(cleaned["icans_raised_icp"]),
            )
        except GradingInputError as error:
            self.add_error(f"icans_{error.field}", error.message)
            return
        if result.grade is None:
            self.add_error("icans_grade", result.explanation)
            return
        self.outcomes[Toxicity.ICANS] = GradeOutcome(
            toxicity=Toxicity.ICANS, grade=result.grade, method="computed", result=result, notes=result.notes
        )

    @property
    def late_onset_answer(self) -> bool | None:
        """Only meaningful with carHLH; None otherwise."""
        if self.cleaned_data.get("carhlh_grade") in (None, ABSENT):
            return None
        return self.cleaned_data.get("late_onset_isolated")


# --- Reading pages ----------------------------------------------------------------------------------


class EvidenceFilterForm(forms.Form):
    toxicity = forms.ChoiceField(
        label="Toxicity",
        required=False,
        choices=[("", "All toxicities"), *((t.value, t.value) for t in Toxicity)],
    )
    population = forms.ChoiceField(
        label="Population",
        required=False,
        choices=[("", "Pediatric and adult"), ("pediatric", "Pediatric / young adult"), ("adult", "Adult")],
    )
