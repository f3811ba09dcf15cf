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
    # The published versions the answer used. Published and retired versions can never be deleted
    # (model guards and database triggers), so the ids always resolve; no FK row locks on the hot path.
    protocol_version_ids = models.JSONField(default=list)
    # The engine's clinical rules the answer was computed under (engine.revisions); answers stored before
    # this field existed were computed under revision 1.
    rules_revision = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Assessment {self.id} ({self.created_at:%Y-%m-%d %H:%M})"

    def recommendations_json(self) -> Any:
        """The stored recommendations for a JSON response: the exact text written, when this object wrote it."""
        written = getattr(self, "_recommendations_text", None)
        return jsonutil.raw(written) if written is not None else self.recommendations
