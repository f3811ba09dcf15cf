"""Reads for the bedside and reading pages. Each list runs a fixed number of queries."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Prefetch, QuerySet

from anakinra_cds import jsonutil
from assessments.models import Assessment
from bedside.models import InstitutionChoice
from engine.inputs import RecommendationRequest
from engine.present import protocol_summary_dict, recommendation_dict
from engine.recommend import recommend
from evidence.models import Reference, Study
from protocols.models import Institution, ProtocolTestPatient, ProtocolVersion, VersionStatus
from protocols.selectors.catalog import protocol_data_from_version, published_protocols, versions_with_content


def institution_choice_get(*, user: AbstractBaseUser) -> str | None:
    return InstitutionChoice.objects.filter(user=user).values_list("institution__slug", flat=True).first()


def published_institution_choices() -> list[tuple[str, str]]:
    """(slug, "Name, Location") for every institution with a published protocol, by name."""
    rows = (
        Institution.objects.filter(protocol__versions__status=VersionStatus.PUBLISHED)
        .order_by("name", "slug")
        .values_list("slug", "name", "location")
    )
    return [(slug, f"{name}, {location}" if location else name) for slug, name, location in rows]


def assessment_for_display(*, assessment_id: uuid.UUID | str) -> Assessment | None:
    """One assessment with its author, wizard grading and literature shown beside it (one query)."""
    try:
        key = uuid.UUID(str(assessment_id))
    except ValueError:
        return None
    return (
        Assessment.objects.select_related("created_by", "bedside_grading", "bedside_literature").filter(pk=key).first()
    )


def literature_regimen_studies(*, institution_slugs: list[str]) -> list[Study]:
    """Studies whose regimen is shown with one of these institutions' protocols (two queries)."""
    return list(
        Study.objects.filter(regimen_protocol__institution__slug__in=institution_slugs)
        .exclude(regimen_dose_basis="")
        .select_related("regimen_protocol__institution")
        .prefetch_related("references")
        .order_by("table_order")
    )


def study_list(*, toxicity: str = "", population: str = "") -> QuerySet[Study]:
    """Table 2 studies, optionally by toxicity addressed and population (two queries)."""
    studies = Study.objects.prefetch_related("references")
    if toxicity:
        studies = studies.filter(**{f"addresses_{toxicity.lower()}": True})
    if population:
        studies = studies.filter(population=population)
    return studies.order_by("table_order")


# The ASTCT consensus paper the grading helpers follow: its row is loaded from protocols/data/clinical_data.toml.
GRADING_REFERENCE_KEY = "lee-2019"


def grading_reference() -> Reference | None:
    """Lee DW et al. 2019 (ASTCT consensus) as stored, so its identifiers are never typed into a template."""
    return Reference.objects.filter(key=GRADING_REFERENCE_KEY).first()


def reference_list() -> QuerySet[Reference]:
    return Reference.objects.all()


def institution_protocol_list() -> list[Institution]:
    """Every institution with its published version (if any) and that version's governance (two queries)."""
    published = ProtocolVersion.objects.published().select_related("authored_by", "approved_by")
    return list(
        Institution.objects.select_related("protocol")
        .prefetch_related(Prefetch("protocol__versions", queryset=published, to_attr="published_versions"))
        .order_by("name", "slug")
    )


@dataclass(frozen=True, slots=True)
class ProtocolDetail:
    institution: Institution
    current: ProtocolVersion | None
    current_data: dict[str, Any] | None  # engine.present.protocol_summary_dict of the published version
    versions: list[ProtocolVersion]


def protocol_detail(*, slug: str) -> ProtocolDetail | None:
    """An institution's current protocol as data, and its version history."""
    institution = Institution.objects.select_related("protocol").filter(slug=slug).first()
    if institution is None:
        return None
    protocol = getattr(institution, "protocol", None)
    if protocol is None:
        return ProtocolDetail(institution=institution, current=None, current_data=None, versions=[])
    versions = list(
        ProtocolVersion.objects.filter(protocol=protocol)
        .select_related("authored_by", "submitted_by", "approved_by")
        .order_by("-number")
    )
    current = next(iter(versions_with_content(ProtocolVersion.objects.published().filter(protocol=protocol))), None)
    data = protocol_summary_dict(protocol_data_from_version(current)) if current is not None else None
    return ProtocolDetail(institution=institution, current=current, current_data=data, versions=versions)


@dataclass(frozen=True, slots=True)
class VersionPreview:
    """A protocol version (usually a draft) beside the published one, as the bedside shows them, and one
    test patient's answer on each (for the approving pharmacist; nothing here is stored)."""

    institution: Institution
    version: ProtocolVersion
    version_data: dict[str, Any]  # engine.present.protocol_summary_dict
    published: ProtocolVersion | None
    published_data: dict[str, Any] | None
    test_patients: list[ProtocolTestPatient]
    patient: ProtocolTestPatient | None
    patient_inputs: dict[str, Any] | None  # the validated echo (defaults filled in)
    version_answer: dict[str, Any] | None  # stored-assessment shape (engine.present.recommendation_dict, as JSON)
    published_answer: dict[str, Any] | None


def _as_stored(recommendation) -> dict[str, Any]:
    """An answer exactly as a stored assessment holds it (through the same JSON), so it is shown the same way."""
    return jsonutil.loads(jsonutil.dumps(recommendation_dict(recommendation)))


def protocol_version_bedside_preview(
    *, slug: str, version_id: int, test_patient_id: str | None
) -> VersionPreview | None:
    version = (
        versions_with_content(ProtocolVersion.objects.filter(pk=version_id, protocol__institution__slug=slug))
        .select_related("based_on")
        .first()
    )
    if version is None:
        return None
    published = next(
        iter(
            versions_with_content(
                ProtocolVersion.objects.published().filter(protocol_id=version.protocol_id).exclude(pk=version.pk)
            )
        ),
        None,
    )
    version_data = protocol_data_from_version(version)
    published_data = protocol_data_from_version(published) if published is not None else None
    test_patients = list(ProtocolTestPatient.objects.filter(version=version).order_by("label", "pk"))
    patient = next((p for p in test_patients if str(p.pk) == test_patient_id), None) or next(iter(test_patients), None)
    inputs = version_answer = published_answer = None
    if patient is not None:
        request = RecommendationRequest.model_validate(patient.inputs)
        inputs = request.echo()
        version_answer = _as_stored(recommend(protocol=version_data, patient=request.to_patient()))
        if published_data is not None:
            published_answer = _as_stored(recommend(protocol=published_data, patient=request.to_patient()))
    return VersionPreview(
        institution=version.protocol.institution,
        version=version,
        version_data=protocol_summary_dict(version_data),
        published=published,
        published_data=protocol_summary_dict(published_data) if published_data is not None else None,
        test_patients=test_patients,
        patient=patient,
        patient_inputs=inputs,
        version_answer=version_answer,
        published_answer=published_answer,
    )


@dataclass(frozen=True, slots=True)
class NewerVersion:
    institution_name: str
    used_version: int
    current_version: int
    current_published_at: Any


def assessment_newer_versions(*, assessment: Assessment) -> list[NewerVersion]:
    """Centers whose published protocol is no longer the version a stored answer used (the answer itself is
    never recomputed). Read from the cached published catalog: one primary-key query at most."""
    current = {p.institution_slug: p for p in published_protocols()}
    newer = []
    for rec in assessment.recommendations:
        now = current.get(rec["institution"]["slug"])
        if now is not None and now.version_id != rec["protocol"]["id"]:
            newer.append(
                NewerVersion(
                    institution_name=rec["institution"]["name"],
                    used_version=rec["protocol"]["version"],
                    current_version=now.version_number,
                    current_published_at=now.published_at,
                )
            )
    return newer
