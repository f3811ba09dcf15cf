"""Reads of audit events."""

from __future__ import annotations

from django.db.models import QuerySet

from audit.models import AuditEvent


def audit_events_for(*, subject_type: str, subject_id: str | int) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(subject_type=subject_type, subject_id=str(subject_id)).select_related("actor")
