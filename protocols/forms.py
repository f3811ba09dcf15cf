"""Admin forms for protocol governance. Validation lives in the models' clean() and the services;
these forms add the units to the labels and carry the revision a pharmacist loaded."""

from __future__ import annotations

from datetime import date

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from pydantic import ValidationError as PydanticValidationError

from engine import limits, notation
from engine.grading import CARHLH_SEVERITY_WORDS
from engine.inputs import RecommendationRequest, validation_errors
from engine.vocabulary import CarTarget, Toxicity
from evidence.models import Reference
from protocols.change_checks import ChangedAmount
from protocols.models import (
    DosingStep,
    IndicationRule,
    Protocol,
    ProtocolTestPatient,
    ProtocolVersion,
    VersionStatus,
)
from protocols.selectors.history import dosing_step_unconfirmed_amounts
from protocols.services import MAX_REVIEW_YEARS, stale_revision_message, years_later

VERSION_LABELS = {
    "concentration_mg_per_ml": "concentration (mg/mL)",
    "reported_car_target": "reported CAR target experience",
    "reported_max_mg_per_kg_per_day": "highest reported amount (mg/kg/day)",
    "usual_daily_cap_mg": "usual per-day cap (mg/day)",
}

RULE_LABELS = {
    "position": "order in the list",
    "applies_to_crs": "applies to CRS",
    "applies_to_icans": "applies to ICANS",
    "applies_to_carhlh": "applies to carHLH",
    "min_grade": "lowest grade (1 to 4)",
    "max_grade": "highest grade (1 to 4)",
    "min_prior_tocilizumab_doses": "prior tocilizumab doses needed (doses, 0 to 10)",
    "requires_steroids": "needs steroids given or starting",
    "result_status": "status when met",
}

STEP_LABELS = {
    "position": "order in the list",
    "applies_to_crs": "applies to CRS",
    "applies_to_icans": "applies to ICANS",
    "applies_to_carhlh": "applies to carHLH",
    "min_grade": "lowest grade (1 to 4)",
    "max_grade": "highest grade (1 to 4)",
    "dose_basis": "dose basis (the unit of the amounts)",
    "amount_low": "amount, low (in the dose basis unit)",
    "amount_high": "amount, high (in the dose basis unit)",
    "interval_hours": "interval (hours between doses)",
    "interval_is_maximum": "interval is the most frequent allowed",
    "route_iv": "route: IV",
    "route_sc": "route: subcut",
    "max_single_dose_mg": "maximum per dose (mg)",
    "max_daily_dose_mg": "maximum per day (mg)",
    "escalation_ceiling_amount": "escalation ceiling (in its basis unit)",
    "escalation_ceiling_basis": "escalation ceiling basis (mg/kg/day or mg/day)",
    "rounding_increment_mg": "round to multiples of (mg)",
    "rounding_tolerance_percent": "rounding tolerance (%, above 0, at most 25)",
}


class FiniteDecimalField(forms.DecimalField):
    """Django's DecimalField refuses NaN and infinities only in validate(), after has_changed() has
    compared the value, and comparing a signalling NaN ("sNaN") raises: refuse them on conversion."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is not None and not value.is_finite():
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return value


def _finite_decimals(model) -> dict[str, type[forms.Field]]:
    return {f.name: FiniteDecimalField for f in model._meta.get_fields() if isinstance(f, models.DecimalField)}


STEP_HELP = {
    "amount_low": "For a single value give it in both, e.g. 2 and 2 for 2 mg/kg/dose.",
    "interval_hours": "Blank when the protocol states no frequency: only per-day amounts are then given.",
    "max_single_dose_mg": "Blank for no per-dose cap. Needs an interval.",
    "max_daily_dose_mg": "Blank for no per-day cap. Applied after the per-dose cap.",
}


class ProtocolVersionForm(forms.ModelForm):
    # The revision the page was loaded at: a save over someone else's newer edit is refused.
    loaded_revision = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = ProtocolVersion
        # The cross-center comparison amounts and the label are edited with the rest of the draft.
        fields = ["protocol", *ProtocolVersion.CONTENT_FIELDS]
        labels = VERSION_LABELS
        field_classes = _finite_decimals(ProtocolVersion)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["loaded_revision"].initial = self.instance.edit_revision
        elif "protocol" in self.fields:
            # The admin's add page is for a new protocol's first version; later versions are copies.
            self.fields["protocol"].queryset = Protocol.objects.filter(versions__isnull=True).select_related(
                "institution"
            )
            self.fields["protocol"].help_text = (
                "Only protocols with no version yet. To change a protocol, start a draft from its published "
                "version (on the protocol's page)."
            )

    def clean(self):
        cleaned_data = super().clean()
        if self.instance.pk is not None:
            # Lock the row until this save commits, so two saves cannot both pass this check.
            current = (
                ProtocolVersion.objects.select_for_update()
                .filter(pk=self.instance.pk)
                .values_list("edit_revision", flat=True)
                .first()
            )
            if cleaned_data.get("loaded_revision") != current:
                raise ValidationError(
                    stale_revision_message(version_id=self.instance.pk, revision=current), code="stale_revision"
                )
        return cleaned_data


class IndicationRuleForm(forms.ModelForm):
    class Meta:
        model = IndicationRule
        fields = [
            *RULE_LABELS,
            "summary",
            "first_line_if_isolated_late_onset",
            "first_line_summary",
            "repeat_tocilizumab_from_doses",
            "repeat_tocilizumab_note",
        ]
        labels = RULE_LABELS


UNUSUAL_REASON_LABEL = "Reason for an amount above what the letter reports"


class DosingStepForm(forms.ModelForm):
    unusual_amount_reason = forms.CharField(
        label=UNUSUAL_REASON_LABEL,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=(
            "Only when a changed amount is above the most any center in the letter reports (the save says so): "
            "why it is right. Kept in the audit and shown to the approving pharmacist."
        ),
    )
    cited_references = forms.ModelMultipleChoiceField(
        queryset=Reference.objects.all(),
        required=False,
        label="step citations",
        help_text="References cited on this step (the version's own citations are cited on every answer).",
        widget=forms.SelectMultiple(attrs={"size": 6}),
    )

    class Meta:
        model = DosingStep
        fields = [*STEP_LABELS, "kind", "name", "duration_text", "taper_text", "notes"]
        labels = STEP_LABELS
        help_texts = STEP_HELP
        field_classes = _finite_decimals(DosingStep)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.unusual_amounts: list[ChangedAmount] = []
        if self.instance.pk is not None:
            self.fields["cited_references"].initial = [c.reference_id for c in self.instance.citations.all()]

    def _post_clean(self) -> None:
        super()._post_clean()  # the instance now holds the posted values
        if self.errors or not self.has_changed() or self.instance.version_id is None:
            return
        self.unusual_amounts = dosing_step_unconfirmed_amounts(step=self.instance)
        if not self.unusual_amounts or self.cleaned_data.get("unusual_amount_reason", "").strip():
            return
        for amount in self.unusual_amounts:
            self.add_error(
                amount.field,
                f"{amount.per_day_working}, above {amount.threshold_text}: the most any center in the "
                f"letter reports ({amount.citation}). Check the unit (mg or mg/kg). If the amount is right, "
                f'say why in "{UNUSUAL_REASON_LABEL}" and save again.',
            )


YES, NO, NOT_RECORDED = "yes", "no", ""
YES_NO = [(YES, "Yes"), (NO, "No")]
YES_NO_UNKNOWN = [(NOT_RECORDED, "Not recorded"), *YES_NO]
NOT_PRESENT = ""


def _yes_no_field(label: str, *, allow_unknown: bool = False) -> forms.ChoiceField:
    return forms.ChoiceField(
        label=label, choices=YES_NO_UNKNOWN if allow_unknown else YES_NO, required=not allow_unknown
    )


def _grade_field(label: str, words: dict[int, str] | None = None) -> forms.TypedChoiceField:
    grades = [(g, f"{g} {words[g]}" if words else f"Grade {g}") for g in (1, 2, 3, 4)]
    return forms.TypedChoiceField(
        label=label, choices=[(NOT_PRESENT, "Not present"), *grades], coerce=int, empty_value=None, required=False
    )


# The bedside's questions, as one form: the test patient's `inputs` are built from these (API request fields).
PATIENT_FIELDS = (
    "weight_kg",
    "age_years",
    "car_target",
    "days_since_infusion",
    "fever",
    "hypotension",
    "prior_tocilizumab_doses",
    "prior_steroids",
    "late_onset_isolated",
    "thrombocytopenia_or_coagulopathy",
    "concurrent_tnf_blocker",
    "ecoli_protein_hypersensitivity",
    "active_infection",
    "creatinine_clearance_ml_min",
)
GRADE_FIELDS = {"crs_grade": Toxicity.CRS, "icans_grade": Toxicity.ICANS, "carhlh_grade": Toxicity.CARHLH}
FLAG_FIELDS = (
    "thrombocytopenia_or_coagulopathy",
    "concurrent_tnf_blocker",
    "ecoli_protein_hypersensitivity",
    "active_infection",
)
OPTIONAL_FLAGS = ("fever", "hypotension", "late_onset_isolated")


class ProtocolTestPatientForm(forms.ModelForm):
    """A test patient, asked with the bedside's questions instead of raw JSON."""

    weight_kg = FiniteDecimalField(
        label="Weight (kg)",
        max_digits=limits.WEIGHT_KG_STORED.max_digits,
        decimal_places=limits.WEIGHT_KG_STORED.decimals,
        help_text=f"{limits.WEIGHT_KG_STORED.low} to {limits.WEIGHT_KG_STORED.high} kg.",
    )
    age_years = FiniteDecimalField(
        label="Age (years)",
        max_digits=limits.AGE_YEARS.max_digits,
        decimal_places=limits.AGE_YEARS.decimals,
        help_text=f"{limits.AGE_YEARS.low} to {limits.AGE_YEARS.high} years.",
    )
    car_target = forms.ChoiceField(
        label="CAR T-cell target",
        choices=[(t.value, "Other" if t == CarTarget.OTHER else t.value) for t in CarTarget],
        initial=CarTarget.OTHER.value,
    )
    days_since_infusion = forms.IntegerField(label="Days since CAR T-cell infusion", required=False)
    fever = _yes_no_field("Fever of 38.0 °C or more now", allow_unknown=True)
    hypotension = _yes_no_field("Hypotension now", allow_unknown=True)
    crs_grade = _grade_field("CRS grade (ASTCT)")
    icans_grade = _grade_field("ICANS grade (ASTCT)")
    carhlh_grade = _grade_field("carHLH severity (clinician-entered)", CARHLH_SEVERITY_WORDS)
    late_onset_isolated = _yes_no_field(
        "Late, isolated onset (carHLH arising late, without active CRS)", allow_unknown=True
    )
    prior_tocilizumab_doses = forms.IntegerField(label="Tocilizumab doses given so far", help_text="0 if none.")
    prior_steroids = _yes_no_field("Steroids given, or starting now")
    thrombocytopenia_or_coagulopathy = _yes_no_field("Thrombocytopenia or coagulopathy")
    concurrent_tnf_blocker = _yes_no_field("Taking a TNF blocker (for example etanercept)")
    ecoli_protein_hypersensitivity = _yes_no_field(
        "Known hypersensitivity to E. coli-derived proteins or any component of anakinra"
    )
    active_infection = _yes_no_field("Active infection")
    creatinine_clearance_ml_min = FiniteDecimalField(
        label="Creatinine clearance (mL/min)",
        required=False,
        max_digits=limits.CREATININE_CLEARANCE_ML_MIN.max_digits,
        decimal_places=limits.CREATININE_CLEARANCE_ML_MIN.decimals,
    )

    class Meta:
        model = ProtocolTestPatient
        fields = [
            "version",
            "label",
            "expected_status",
            "expected_step_name",
            "expected_per_dose_low_mg",
            "expected_per_dose_high_mg",
            "expected_per_day_low_mg",
            "expected_per_day_high_mg",
            "arithmetic",
        ]
        widgets = {"arithmetic": forms.Textarea(attrs={"rows": 3})}
        field_classes = _finite_decimals(ProtocolTestPatient)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "version" in self.fields:
            # Test patients are added to and edited in a draft only; published versions are frozen.
            self.fields["version"].queryset = ProtocolVersion.objects.filter(status=VersionStatus.DRAFT).select_related(
                "protocol"
            )
            self.fields["version"].help_text = "The draft this patient belongs to (published versions are frozen)."
        for name, value in patient_form_initial(self.instance.inputs).items():
            self.fields[name].initial = value
        for name in FLAG_FIELDS:
            self.fields[name].initial = self.fields[name].initial or NO

    def clean(self):
        cleaned_data = super().clean()
        if any(name in self.errors for name in (*PATIENT_FIELDS, *GRADE_FIELDS)):
            return cleaned_data
        inputs = patient_form_inputs(cleaned_data)
        problems = validation_problems(inputs)
        for field, messages in problems.items():
            for message in messages:
                self.add_error(field if field in self.fields else None, message)
        if not problems:
            self.instance.inputs = inputs
        return cleaned_data


def _yes_no_value(value: bool | None) -> str:
    return {True: YES, False: NO}.get(value, NOT_RECORDED)  # type: ignore[arg-type]


def patient_form_initial(inputs: dict | None) -> dict[str, object]:
    """The form's answers for stored inputs (API request fields)."""
    if not inputs:
        return {}
    initial: dict[str, object] = {
        name: inputs.get(name)
        for name in ("weight_kg", "age_years", "days_since_infusion", "prior_tocilizumab_doses")
        if name in inputs
    }
    initial["car_target"] = inputs.get("car_target") or CarTarget.OTHER.value
    if inputs.get("creatinine_clearance_ml_min") is not None:
        initial["creatinine_clearance_ml_min"] = inputs["creatinine_clearance_ml_min"]
    for name in (*OPTIONAL_FLAGS, *FLAG_FIELDS, "prior_steroids"):
        if name in inputs:
            initial[name] = _yes_no_value(inputs[name])
    grades = {item.get("type"): item.get("grade") for item in inputs.get("toxicities", []) if isinstance(item, dict)}
    for name, toxicity in GRADE_FIELDS.items():
        initial[name] = grades.get(toxicity.value, NOT_PRESENT)
    return initial


def patient_form_inputs(cleaned_data: dict) -> dict[str, object]:
    """API request fields from the form's answers: what is required always, the rest only when answered
    (so a stored patient reads as its author wrote it)."""
    inputs: dict[str, object] = {
        "weight_kg": notation.plain_decimal(cleaned_data["weight_kg"]),
        "age_years": notation.plain_decimal(cleaned_data["age_years"]),
        "toxicities": [
            {"type": toxicity.value, "grade": cleaned_data[name]}
            for name, toxicity in GRADE_FIELDS.items()
            if cleaned_data.get(name) is not None
        ],
        "prior_tocilizumab_doses": cleaned_data["prior_tocilizumab_doses"],
        "prior_steroids": cleaned_data["prior_steroids"] == YES,
    }
    if cleaned_data.get("car_target") and cleaned_data["car_target"] != CarTarget.OTHER.value:
        inputs["car_target"] = cleaned_data["car_target"]
    if cleaned_data.get("days_since_infusion") is not None:
        inputs["days_since_infusion"] = cleaned_data["days_since_infusion"]
    for name in OPTIONAL_FLAGS:
        if cleaned_data.get(name) in (YES, NO):
            inputs[name] = cleaned_data[name] == YES
    for name in FLAG_FIELDS:
        if cleaned_data.get(name) == YES:
            inputs[name] = True
    if cleaned_data.get("creatinine_clearance_ml_min") is not None:
        inputs["creatinine_clearance_ml_min"] = notation.plain_decimal(cleaned_data["creatinine_clearance_ml_min"])
    return inputs


def validation_problems(inputs: dict) -> dict[str, list[str]]:
    """The API's own checks, keyed by the form field to fix ("toxicities" go on the CRS grade)."""
    try:
        RecommendationRequest.model_validate(inputs)
    except PydanticValidationError as error:
        problems = validation_errors(error)
        if "toxicities" in problems:
            problems["crs_grade"] = [
                "Mark at least one toxicity as present, with a grade."
                if f"must list {limits.TOXICITIES.low} to {limits.TOXICITIES.high} toxicities" in message
                else message
                for message in problems.pop("toxicities")
            ]
        return {field: [_sentence(message) for message in messages] for field, messages in problems.items()}
    return {}


def _sentence(message: str) -> str:
    message = f"{message[:1].upper()}{message[1:]}"
    return message if message.endswith(".") else f"{message}."


class _RevisionForm(forms.Form):
    revision = forms.IntegerField(widget=forms.HiddenInput)


class SubmitForm(_RevisionForm):
    change_reason = forms.CharField(
        label="Change reason",
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="What changed and why, with its source. Shown to the approving pharmacist and kept in the audit.",
    )
    coverage_note = forms.CharField(
        label="Why no test patient exercises a changed amount",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=(
            "Needed only when some changed amount changes no test patient's answer (listed above): add a test "
            "patient that reaches it, or say here why not."
        ),
    )

    def __init__(self, *args, uncovered: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not uncovered:
            del self.fields["coverage_note"]


def _default_next_review() -> date:
    return years_later(day=timezone.localdate(), years=1)


class ApproveForm(_RevisionForm):
    password = forms.CharField(
        label="Your password (electronic signature)",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Approving signs this version with your name: enter your own password again. It is not stored.",
    )
    approval_note = forms.CharField(
        label="Approval note",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What you checked (e.g. against the source, test patients reviewed).",
    )
    next_review = forms.DateField(
        label="Next review due",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=f"When this version must be reviewed again: after today and at most {MAX_REVIEW_YEARS} years ahead.",
    )

    field_order = ["revision", "approval_note", "next_review", "password"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["next_review"].initial = _default_next_review()


class RejectForm(_RevisionForm):
    reason = forms.CharField(
        label="Why it goes back to draft",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Shown to the author and kept in the audit.",
    )


class StartDraftForm(forms.Form):
    reason = forms.CharField(
        label="Why a new version (optional)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class DeleteDraftForm(forms.Form):
    reason = forms.CharField(
        label="Why the draft is deleted",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Kept in the audit with your name. The draft, its rows and its test patients go; history stays.",
    )
