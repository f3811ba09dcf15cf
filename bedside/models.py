"""What the bedside keeps beyond the assessment itself: each user's last institution, and how each
grade of a wizard assessment was reached. Neither holds a patient identifier."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from anakinra_cds.jsonutil import DecimalJSONDecoder, DecimalJSONEncoder


class InstitutionChoice(models.Model):
    """The institution a user chose last; the wizard offers it first next time."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="bedside_institution_choice"
    )
    institution = models.ForeignKey("protocols.Institution", on_delete=models.CASCADE, related_name="+")
    chosen_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.user} last chose {self.institution}"


class AssessmentGrading(models.Model):
    """How each toxicity's grade was set in the wizard: picked by the clinician, or computed from
    ASTCT findings (with the finding that set it). Shown beside the grades so the basis can be reviewed."""

    class Method(models.TextChoices):
        PICKED = "picked", "Picked by the clinician"
        COMPUTED = "computed", "Computed from ASTCT findings"

    assessment = models.OneToOneField(
        "assessments.Assessment", on_delete=models.CASCADE, related_name="bedside_grading"
    )
    # [{"type": "CRS", "grade": 3, "method": "computed", "set_by": ["..."], "findings": ["..."], "notes": ["..."],
    #   "answers": {"crs_hypotension": "...", ...}}]: a computed grade's helper answers as typed (older records
    #   lack them), so the result page's "Change answers" fills the wizard in again.
    toxicities = models.JSONField(encoder=DecimalJSONEncoder, decoder=DecimalJSONDecoder)

    class Meta:
        constraints = [models.CheckConstraint(condition=~Q(toxicities=[]), name="grading_has_toxicities")]

    def __str__(self) -> str:
        return f"Grading of {self.assessment_id}"


class AssessmentLiterature(models.Model):
    """Published regimens shown beside a wizard assessment's protocols: a center's own trial from the
    letter's Table 2 (evidence.Study with a regimen), worked out for the assessment's weight when it was made,
    so the result and printout read it back unchanged. Literature for discussion with pharmacy, never an
    order; the API, CDS Hooks and FHIR answers carry protocol steps alone and never this."""

    assessment = models.OneToOneField(
        "assessments.Assessment", on_delete=models.CASCADE, related_name="bedside_literature"
    )
    # [{"institution": "nih", "study_key": "...", "study_label": "...", "dose_basis": "mg/kg/dose",
    #   "amount": {"low", "high"}, "interval_hours": 12, "routes": ["SC"], "weight_kg": ..., "per_dose_mg": {...},
    #   "per_day_mg": {...}, "doses_per_day": 2, "arithmetic": ["..."], "references": ["..."]}]
    regimens = models.JSONField(encoder=DecimalJSONEncoder, decoder=DecimalJSONDecoder)

    class Meta:
        constraints = [models.CheckConstraint(condition=~Q(regimens=[]), name="literature_has_regimens")]

    def __str__(self) -> str:
        return f"Literature shown with {self.assessment_id}"
