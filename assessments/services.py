"""Make and store an assessment: one engine run over the published protocols."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from anakinra_cds import jsonutil
from assessments.models import Assessment
from engine.data import PatientInputs, ProtocolData
from engine.present import recommendation_dict
from engine.recommend import recommend_all
from engine.revisions import RULES_REVISION
from protocols.selectors.catalog import published_protocols


def assessment_create(
    *,
    patient: PatientInputs,
    inputs: dict[str, Any],
    institution_slug: str | None,
    created_by: AbstractBaseUser | None,
    source: str,
    protocols: Sequence[ProtocolData] | None = None,
) -> Assessment:
    """Run the engine for one patient and store the inputs, the full answer and the versions used
    (one INSERT, so no transaction is needed).

    `protocols` lets a caller that already read the published catalog pass it in (one read per request).
    """
    if protocols is None:
        protocols = published_protocols()
    if institution_slug is not None:
        protocols = [p for p in protocols if p.institution_slug == institution_slug]
    recommendations = [recommendation_dict(r) for r in recommend_all(protocols=protocols, patient=patient)]
    # Encode the (large) answer once: the same text is stored and, by the API, sent back.
    text = jsonutil.dumps(recommendations)
    assessment = Assessment.objects.create(
        created_by=created_by,
        source=source,
        institution_requested=institution_slug or "",
        inputs=inputs,
        recommendations=jsonutil.raw(text),
        protocol_version_ids=[p.version_id for p in protocols],
        rules_revision=RULES_REVISION,
    )
    assessment.recommendations = recommendations
    assessment._recommendations_text = text
    return assessment
