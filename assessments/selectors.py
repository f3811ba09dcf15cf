"""Reads of stored assessments."""

from __future__ import annotations

import uuid

from assessments.models import Assessment


def assessment_get(*, assessment_id: uuid.UUID | str) -> Assessment | None:
    try:
        key = uuid.UUID(str(assessment_id))
    except ValueError:
        return None
    return Assessment.objects.filter(pk=key).first()
