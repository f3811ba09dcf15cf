"""The published catalog, the hot path of every recommendation and every card: protocol versions shaped as
the engine's plain dataclasses.

`published_protocols()` keeps the loaded versions in memory and checks, with one primary-key read per call,
that the catalog revision is still the one it loaded. Database triggers give the revision a new,
never-repeated value in the same transaction as any change to versions, institutions or references
(protocols migration 0006), so a publish anywhere (any process, any path) is seen at once and a retired
version is never served.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from django.db import connection
from django.db.models import Prefetch

from engine.data import Citation, ComparisonThresholds, ProtocolData, Rule, Step
from engine.vocabulary import CarTarget, DoseBasis, Route, Status, StepKind, Toxicity
from evidence.models import Reference
from protocols.models import (
    CatalogRevision,
    DosingStep,
    ProtocolCitation,
    ProtocolVersion,
    StepCitation,
)


def _citation(reference: Reference, locator: str = "") -> Citation:
    label = f"{reference.short_label} ({locator})" if locator else reference.short_label
    return Citation(
        key=f"{reference.key}#{locator}" if locator else reference.key,
        label=label,
        doi=reference.doi,
        pmid=reference.pmid,
        url=reference.url,
    )


def _toxicities(row) -> frozenset[Toxicity]:
    return frozenset(Toxicity(t) for t in row.toxicities)


def step_data(step: DosingStep, *, with_citations: bool = True) -> Step:
    """One dosing step as engine data (citations prefetched, or left out for a step not saved yet)."""
    return Step(
        kind=StepKind(step.kind),
        name=step.name,
        toxicities=_toxicities(step),
        dose_basis=DoseBasis(step.dose_basis),
        amount_low=step.amount_low,
        amount_high=step.amount_high,
        routes=tuple(Route(r) for r in step.routes),
        min_grade=step.min_grade,
        max_grade=step.max_grade,
        interval_hours=step.interval_hours,
        interval_is_maximum=step.interval_is_maximum,
        max_single_dose_mg=step.max_single_dose_mg,
        max_daily_dose_mg=step.max_daily_dose_mg,
        escalation_ceiling_amount=step.escalation_ceiling_amount,
        escalation_ceiling_basis=DoseBasis(step.escalation_ceiling_basis) if step.escalation_ceiling_basis else None,
        rounding_increment_mg=step.rounding_increment_mg,
        rounding_tolerance_percent=step.rounding_tolerance_percent,
        duration=step.duration_text,
        taper=step.taper_text,
        notes=step.notes,
        citations=tuple(_citation(c.reference) for c in step.citations.all()) if with_citations else (),
    )


def protocol_data_from_version(version: ProtocolVersion) -> ProtocolData:
    """One version (with rules, steps and citations prefetched) as engine data."""
    institution = version.protocol.institution
    rules = tuple(
        Rule(
            toxicities=_toxicities(rule),
            summary=rule.summary,
            result_status=Status(rule.result_status),
            min_grade=rule.min_grade,
            min_prior_tocilizumab_doses=rule.min_prior_tocilizumab_doses,
            requires_steroids=rule.requires_steroids,
            first_line_if_isolated_late_onset=rule.first_line_if_isolated_late_onset,
            first_line_summary=rule.first_line_summary,
            max_grade=rule.max_grade,
            repeat_tocilizumab_from_doses=rule.repeat_tocilizumab_from_doses,
            repeat_tocilizumab_note=rule.repeat_tocilizumab_note,
        )
        for rule in version.rules.all()
    )
    steps = tuple(step_data(step) for step in version.steps.all())
    return ProtocolData(
        institution_slug=institution.slug,
        institution_name=institution.name,
        version_id=version.pk,
        version_number=version.number,
        published_at=version.published_at,
        approved_by=version.approver_display,
        approved_locally=version.approved_by_id is not None,
        rules=rules,
        steps=steps,
        citations=tuple(_citation(c.reference, c.locator) for c in version.citations.all()),
        reported_car_target=CarTarget(version.reported_car_target) if version.reported_car_target else None,
        concentration_mg_per_ml=version.concentration_mg_per_ml,
        notes=version.notes,
        thresholds=thresholds_from_version(version),
        label_citation=_citation(version.label_reference) if version.label_reference_id else None,
    )


def thresholds_from_version(version: ProtocolVersion) -> ComparisonThresholds | None:
    """The version's cross-center comparison amounts as engine data (`thresholds_reference` selected)."""
    if version.reported_max_mg_per_kg_per_day is None or version.usual_daily_cap_mg is None:
        return None
    reference = version.thresholds_reference if version.thresholds_reference_id else None
    return ComparisonThresholds(
        reported_max_mg_per_kg_per_day=version.reported_max_mg_per_kg_per_day,
        reported_max_basis=version.reported_max_basis,
        usual_daily_cap_mg=version.usual_daily_cap_mg,
        usual_daily_cap_basis=version.usual_daily_cap_basis,
        citation=_citation(reference, version.thresholds_locator) if reference else None,
    )


def protocol_version_thresholds(*, version_id: int) -> ComparisonThresholds | None:
    """The comparison amounts (10 mg/kg/day, 400 mg/day and their source) a version states: for previews and
    plausibility checks of a draft. None when the version states none. One query."""
    version = ProtocolVersion.objects.select_related("thresholds_reference").filter(pk=version_id).first()
    return thresholds_from_version(version) if version is not None else None


def versions_with_content(queryset) -> Iterable[ProtocolVersion]:
    """Five queries, whatever the number of versions: versions, citations, rules, steps, step citations."""
    return queryset.select_related(
        "protocol__institution",
        "approved_by",
        "authored_by",
        "submitted_by",
        "thresholds_reference",
        "label_reference",
    ).prefetch_related(
        Prefetch("citations", queryset=ProtocolCitation.objects.select_related("reference")),
        "rules",
        Prefetch(
            "steps",
            queryset=DosingStep.objects.prefetch_related(
                Prefetch("citations", queryset=StepCitation.objects.select_related("reference"))
            ),
        ),
    )


def published_protocols_load() -> tuple[ProtocolData, ...]:
    """Every published version, straight from the database (no cache)."""
    versions = versions_with_content(ProtocolVersion.objects.published())
    data = (protocol_data_from_version(v) for v in versions)
    return tuple(sorted(data, key=lambda p: (p.institution_name, p.institution_slug)))


def protocol_version_data(*, version_id: int) -> ProtocolData:
    """Any single version (draft, published or retired) as engine data, e.g. for previews."""
    return protocol_data_from_version(versions_with_content(ProtocolVersion.objects.filter(pk=version_id)).get())


def _catalog_token() -> int | None:
    """The catalog's current revision (one primary-key read; see CatalogRevision)."""
    with connection.cursor() as cursor:
        cursor.execute(_REVISION_SQL)
        row = cursor.fetchone()
    return row[0] if row else None


_REVISION_SQL = f"SELECT revision FROM {CatalogRevision._meta.db_table} WHERE id = 1"  # noqa: S608 (fixed text)


class _PublishedCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token: int | None = None
        self._loaded = False
        self._protocols: tuple[ProtocolData, ...] = ()

    def get(self) -> tuple[ProtocolData, ...]:
        token = _catalog_token()
        if self._loaded and token is not None and token == self._token:
            return self._protocols
        with self._lock:
            if self._loaded and token is not None and token == self._token:
                return self._protocols  # another thread loaded this revision while we waited
            protocols = published_protocols_load()
            # Store the revision read before loading: if a publish raced the load, the next call reloads.
            self._token, self._protocols, self._loaded = token, protocols, True
        return protocols

    def clear(self) -> None:
        with self._lock:
            self._token, self._protocols, self._loaded = None, (), False


_published_cache = _PublishedCache()


def published_protocols(*, institution_slug: str | None = None) -> tuple[ProtocolData, ...]:
    """Published protocols as engine data, ordered by institution name; cached, never stale."""
    protocols = _published_cache.get()
    if institution_slug is None:
        return protocols
    return tuple(p for p in protocols if p.institution_slug == institution_slug)
