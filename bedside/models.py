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
    # [{"type": "CRS", "grade": 3, "method": "computed", "set_by": ["..."], "findings": ["..."], "notes": ["..."]}]
    toxicities = models.JSONField(encoder=DecimalJSONEncoder, decoder=DecimalJSONDecoder)

    class Meta:
        constraints = [models.CheckConstraint(condition=~Q(toxicities=[]), name="grading_has_toxicities")]

    def __str__(self) -> str:
        return f"Grading of {self.assessment_id}"
