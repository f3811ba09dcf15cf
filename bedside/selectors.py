"""Reads for the bedside and reading pages. Each list runs a fixed number of queries."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Prefetch, QuerySet

from assessments.models import Assessment
from bedside.models import InstitutionChoice
from engine.present import protocol_summary_dict
from evidence.models import Reference, Study
from protocols.models import Institution, ProtocolVersion, VersionStatus
from protocols.selectors import protocol_data_from_version, versions_with_content


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
