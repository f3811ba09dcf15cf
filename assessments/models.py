"""A stored recommendation: validated inputs, the full answer, the versions used, who and when.

No patient name, record number or date of birth is ever stored: the inputs are clinical facts only.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from anakinra_cds import jsonutil
from anakinra_cds.jsonutil import DecimalJSONDecoder, DecimalJSONEncoder


class Assessment(models.Model):
    class Source(models.TextChoices):
        API = "api", "JSON API"
        BEDSIDE = "bedside", "Bedside wizard"
        CDS_HOOKS = "cds_hooks", "CDS Hooks"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="assessments"
    )
    source = models.CharField(max_length=12, choices=Source.choices)
    institution_requested = models.SlugField(max_length=40, blank=True)
    inputs = models.JSONField(encoder=DecimalJSONEncoder, decoder=DecimalJSONDecoder)
    recommendations = models.JSONField(encoder=DecimalJSONEncoder, decoder=DecimalJSONDecoder)
    protocol_versions = models.ManyToManyField(
        "protocols.ProtocolVersion", through="AssessmentProtocolVersion", related_name="assessments"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Assessment {self.id} ({self.created_at:%Y-%m-%d %H:%M})"

    def recommendations_json(self) -> Any:
        """The stored recommendations for a JSON response: the exact text written, when this object wrote it."""
        written = getattr(self, "_recommendations_text", None)
        return jsonutil.raw(written) if written is not None else self.recommendations


class AssessmentProtocolVersion(models.Model):
    assessment = models.ForeignKey(Assessment, on_delete=models.CASCADE)
    version = models.ForeignKey("protocols.ProtocolVersion", on_delete=models.PROTECT)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["assessment", "version"], name="assessment_version_once")]

    def __str__(self) -> str:
        return f"{self.assessment_id} used version {self.version_id}"
