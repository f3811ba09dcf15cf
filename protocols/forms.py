"""Admin forms for protocol governance. Validation lives in the models' clean() and the services;
these forms add the units to the labels and carry the revision a pharmacist loaded."""

from __future__ import annotations

from datetime import date

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from evidence.models import Reference
from protocols.models import DosingStep, IndicationRule, Protocol, ProtocolTestPatient, ProtocolVersion
from protocols.services import MAX_REVIEW_YEARS, stale_revision_message, years_later

VERSION_LABELS = {
    "concentration_mg_per_ml": "concentration (mg/mL)",
    "reported_car_target": "reported CAR target experience",
    "reported_max_mg_per_kg_per_day": "highest reported amount (mg/kg/day)",
    "usual_daily_cap_mg": "usual per-day cap (mg/day)",
}
# The cross-center comparison amounts and the label, edited with the rest of the draft (two-person approval).
VERSION_THRESHOLD_FIELDS = [
    "reported_max_mg_per_kg_per_day",
    "reported_max_basis",
    "usual_daily_cap_mg",
    "usual_daily_cap_basis",
    "thresholds_reference",
    "thresholds_locator",
    "label_reference",
]

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
        fields = [
            "protocol",
            "utilization",
            "indications_summary",
            "notes",
            "reported_car_target",
            "concentration_mg_per_ml",
            *VERSION_THRESHOLD_FIELDS,
        ]
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


class DosingStepForm(forms.ModelForm):
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
        if self.instance.pk is not None:
            self.fields["cited_references"].initial = [c.reference_id for c in self.instance.citations.all()]


class ProtocolTestPatientForm(forms.ModelForm):
    class Meta:
        model = ProtocolTestPatient
        fields = [
            "protocol",
            "label",
            "inputs",
            "expected_status",
            "expected_step_name",
            "expected_per_dose_low_mg",
            "expected_per_dose_high_mg",
            "expected_per_day_low_mg",
            "expected_per_day_high_mg",
            "arithmetic",
        ]
        widgets = {"inputs": forms.Textarea(attrs={"rows": 4}), "arithmetic": forms.Textarea(attrs={"rows": 3})}
        field_classes = _finite_decimals(ProtocolTestPatient)


class _RevisionForm(forms.Form):
    revision = forms.IntegerField(widget=forms.HiddenInput)


class SubmitForm(_RevisionForm):
    change_reason = forms.CharField(
        label="Change reason",
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="What changed and why, with its source. Shown to the approving pharmacist and kept in the audit.",
    )


def _default_next_review() -> date:
    return years_later(day=timezone.localdate(), years=1)


class ApproveForm(_RevisionForm):
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
