"""Reads of protocol data, shaped as the engine's plain dataclasses.

`published_protocols()` is the hot path of every recommendation. It keeps the loaded versions
in memory and checks, with one small query per call, that the set of published versions is
still the one it loaded; a publish anywhere (any process) changes that set, so a retired version
is never served from the cache.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from django.db.models import Max, Prefetch, Subquery, Value

from engine.data import Citation, ProtocolData, Rule, Step
from engine.vocabulary import CarTarget, DoseBasis, Route, Status, StepKind, Toxicity
from evidence.models import Reference
from protocols.models import DosingStep, ProtocolCitation, ProtocolVersion, StepCitation


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
        )
        for rule in version.rules.all()
    )
    steps = tuple(
        Step(
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
            escalation_ceiling_basis=DoseBasis(step.escalation_ceiling_basis)
            if step.escalation_ceiling_basis
            else None,
            rounding_increment_mg=step.rounding_increment_mg,
            rounding_tolerance_percent=step.rounding_tolerance_percent,
            duration=step.duration_text,
            taper=step.taper_text,
            notes=step.notes,
            citations=tuple(_citation(c.reference) for c in step.citations.all()),
        )
        for step in version.steps.all()
    )
    return ProtocolData(
        institution_slug=institution.slug,
        institution_name=institution.name,
        version_id=version.pk,
        version_number=version.number,
        published_at=version.published_at,
        approved_by=version.approver_display,
        rules=rules,
        steps=steps,
        citations=tuple(_citation(c.reference, c.locator) for c in version.citations.all()),
        reported_car_target=CarTarget(version.reported_car_target) if version.reported_car_target else None,
        concentration_mg_per_ml=version.concentration_mg_per_ml,
        notes=version.notes,
    )


def versions_with_content(queryset) -> Iterable[ProtocolVersion]:
    """Five queries, whatever the number of versions: versions, citations, rules, steps, step citations."""
    return queryset.select_related("protocol__institution", "approved_by").prefetch_related(
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


def _catalog_token() -> tuple:
    """What identifies the published catalog: each published version and when its data last changed."""
    # order_by(): the model's default ordering would enter the GROUP BY and PostgreSQL refuses the query.
    newest_reference = (
        Reference.objects.order_by()
        .annotate(group=Value(1))
        .values("group")
        .annotate(newest=Max("updated_at"))
        .values("newest")
    )
    rows = (
        ProtocolVersion.objects.published()
        .annotate(references_at=Subquery(newest_reference[:1]))
        .order_by("pk")
        .values_list("pk", "edit_revision", "published_at", "protocol__institution__updated_at", "references_at")
    )
    return tuple(rows)


class _PublishedCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token: tuple | None = None
        self._protocols: tuple[ProtocolData, ...] = ()

    def get(self) -> tuple[ProtocolData, ...]:
        token = _catalog_token()
        cached_token, cached = self._token, self._protocols
        if token == cached_token:
            return cached
        with self._lock:
            protocols = published_protocols_load()
            # Store the token read before loading: if a publish raced the load, the next call reloads.
            self._token, self._protocols = token, protocols
        return protocols

    def clear(self) -> None:
        with self._lock:
            self._token, self._protocols = None, ()


_published_cache = _PublishedCache()


def published_protocols(*, institution_slug: str | None = None) -> tuple[ProtocolData, ...]:
    """Published protocols as engine data, ordered by institution name; cached, never stale."""
    protocols = _published_cache.get()
    if institution_slug is None:
        return protocols
    return tuple(p for p in protocols if p.institution_slug == institution_slug)


def published_institution_slugs() -> frozenset[str]:
    return frozenset(p.institution_slug for p in published_protocols())
