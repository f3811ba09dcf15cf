"""Reads of protocol data, shaped as the engine's plain dataclasses.

`published_protocols()` is the hot path of every recommendation. It keeps the loaded versions
in memory and checks, with one primary-key read per call, that the catalog revision is still the
one it loaded. Database triggers give the revision a new, never-repeated value in the same
transaction as any change to versions, institutions or references (protocols migration 0006), so a
publish anywhere (any process, any path) is seen at once and a retired version is never served.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db import connection
from django.db.models import Prefetch, QuerySet, Subquery
from django.utils import timezone

from anakinra_cds.history_words import delta_words, person_words
from audit.selectors import audit_events_for
from engine import notation
from engine.data import Citation, ComparisonThresholds, DoseRange, ProtocolData, Rule, Step
from engine.vocabulary import CarTarget, DoseBasis, Route, Status, StepKind, Toxicity
from evidence.models import Reference
from protocols.change_checks import (
    ChangedAmount,
    PlausibilityThresholds,
    amount_coverage,
    changed_amounts,
    step_changed_amounts,
)
from protocols.diff import SectionDiff, Snapshot, snapshot_diff
from protocols.models import (
    OPEN_STATUSES,
    AmountConfirmation,
    CatalogRevision,
    DosingStep,
    IndicationRule,
    Protocol,
    ProtocolCitation,
    ProtocolTestPatient,
    ProtocolVersion,
    StepCitation,
    VersionStatus,
    user_display,
)
from protocols.patient_checks import (
    CheckOutcome,
    PatientExpectation,
    answer_lines,
    expectation_check,
    patient_inputs_text,
    range_text,
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


def published_thresholds() -> dict[str, ComparisonThresholds | None]:
    """Each published protocol's comparison amounts, by institution slug (from the cached catalog)."""
    return {p.institution_slug: p.thresholds for p in published_protocols()}


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


# --- Governance: test patients, previews, editors, history, diffs -------------------------------


def test_patient_expectation(test_patient: ProtocolTestPatient) -> PatientExpectation:
    def pair(low: Decimal | None, high: Decimal | None) -> DoseRange | None:
        return None if low is None or high is None else DoseRange(low, high)

    return PatientExpectation(
        test_patient_id=test_patient.pk,
        label=test_patient.label,
        patient=test_patient.patient_inputs(),
        status=Status(test_patient.expected_status),
        step_name=test_patient.expected_step_name,
        per_dose_mg=pair(test_patient.expected_per_dose_low_mg, test_patient.expected_per_dose_high_mg),
        per_day_mg=pair(test_patient.expected_per_day_low_mg, test_patient.expected_per_day_high_mg),
    )


def protocol_test_patients(*, version_id: int) -> list[ProtocolTestPatient]:
    return list(ProtocolTestPatient.objects.filter(version_id=version_id).order_by("label", "pk"))


def protocol_test_patients_check(*, version_id: int) -> list[CheckOutcome]:
    """Every test patient of the version, run on that version (draft or not)."""
    data = protocol_version_data(version_id=version_id)
    return [
        expectation_check(expectation=test_patient_expectation(p), protocol=data)
        for p in protocol_test_patients(version_id=version_id)
    ]


def test_patient_outcomes(*, test_patients: Iterable[ProtocolTestPatient]) -> dict[int, CheckOutcome]:
    """Each test patient on its own version. Published versions come from the cached catalog; any other
    version is read once, however many of its patients are listed (admin list views)."""
    loaded: dict[int, ProtocolData] = {p.version_id: p for p in published_protocols()}
    outcomes: dict[int, CheckOutcome] = {}
    for test_patient in test_patients:
        data = loaded.get(test_patient.version_id)
        if data is None:
            data = loaded[test_patient.version_id] = protocol_version_data(version_id=test_patient.version_id)
        outcomes[test_patient.pk] = expectation_check(expectation=test_patient_expectation(test_patient), protocol=data)
    return outcomes


@dataclass(frozen=True, slots=True)
class PreviewLine:
    what: str
    published: str
    draft: str

    @property
    def changed(self) -> bool:
        return self.published != self.draft


@dataclass(frozen=True, slots=True)
class PreviewRow:
    label: str
    draft: CheckOutcome
    published: CheckOutcome | None
    lines: tuple[PreviewLine, ...]
    test_patient_id: int | None = None
    patient_text: str = ""

    @property
    def changed(self) -> bool:
        return any(line.changed for line in self.lines)


def protocol_version_preview(
    *, version_id: int, against: ProtocolData | None = None, version_data: ProtocolData | None = None
) -> list[PreviewRow]:
    """For each of the version's test patients: the published version's answer (or `against`'s) beside
    this version's answer. Versions already read may be passed in (`version_data`, `against`)."""
    if against is not None:
        published_data = against
    else:
        version = ProtocolVersion.objects.get(pk=version_id)
        published = (
            ProtocolVersion.objects.published().filter(protocol_id=version.protocol_id).exclude(pk=version_id).first()
        )
        published_data = protocol_version_data(version_id=published.pk) if published else None
    draft_data = version_data or protocol_version_data(version_id=version_id)
    rows = []
    for test_patient in protocol_test_patients(version_id=version_id):
        expectation = test_patient_expectation(test_patient)
        draft = expectation_check(expectation=expectation, protocol=draft_data)
        old = expectation_check(expectation=expectation, protocol=published_data) if published_data else None
        old_lines = answer_lines(old.recommendation if old else None)
        new_lines = answer_lines(draft.recommendation)
        lines = tuple(
            PreviewLine(what=what, published=old_lines.get(what, "not given"), draft=new_lines.get(what, "not given"))
            for what in dict.fromkeys([*old_lines, *new_lines])
        )
        rows.append(
            PreviewRow(
                label=test_patient.label,
                draft=draft,
                published=old,
                lines=lines,
                test_patient_id=test_patient.pk,
                patient_text=patient_inputs_text(test_patient.inputs),
            )
        )
    return rows


VERSION_CONTENT_FIELDS = (
    "utilization",
    "indications_summary",
    "notes",
    "reported_car_target",
    "concentration_mg_per_ml",
    "reported_max_mg_per_kg_per_day",
    "reported_max_basis",
    "usual_daily_cap_mg",
    "usual_daily_cap_basis",
    "thresholds_reference_id",
    "thresholds_locator",
    "label_reference_id",
    "change_reason",
)


def _history_user_ids(history_queryset) -> set[int]:
    return set(history_queryset.exclude(history_user_id=None).values_list("history_user_id", flat=True))


def protocol_version_editor_ids(*, version: ProtocolVersion) -> set[int]:
    """Everyone who wrote this version's content: its author, its submitter, and anyone whose edit
    of it, or of its rules, steps, citations or test patients, is in the history. Reviewing (reject) is
    not editing."""
    ids = {version.authored_by_id, version.submitted_by_id}
    previous = None
    for record in ProtocolVersion.history.filter(id=version.pk).order_by("history_date", "history_id"):
        content_changed = previous is None or any(
            getattr(record, name) != getattr(previous, name) for name in VERSION_CONTENT_FIELDS
        )
        if content_changed and record.history_user_id is not None:
            ids.add(record.history_user_id)
        previous = record
    step_ids = DosingStep.history.filter(version_id=version.pk).values("id")
    ids |= _history_user_ids(IndicationRule.history.filter(version_id=version.pk))
    ids |= _history_user_ids(DosingStep.history.filter(version_id=version.pk))
    ids |= _history_user_ids(ProtocolCitation.history.filter(version_id=version.pk))
    ids |= _history_user_ids(StepCitation.history.filter(step_id__in=Subquery(step_ids)))
    ids |= _history_user_ids(ProtocolTestPatient.history.filter(version_id=version.pk))
    ids.discard(None)
    return ids


@dataclass(frozen=True, slots=True)
class RowHistoryEntry:
    """One change to a version or one of its rows, for the version's history page and for conflicts."""

    when: datetime
    who: str
    table: str
    row: str
    action: str
    changes: tuple[tuple[str, str, str], ...]


def _history_entries(records, table: str, label) -> list[RowHistoryEntry]:
    entries = []
    previous_by_id: dict[int, object] = {}
    for record in records:
        previous = previous_by_id.get(record.id)
        changes: tuple[tuple[str, str, str], ...] = ()
        if previous is not None:
            delta = record.diff_against(previous, foreign_keys_are_objs=True)
            changes = tuple(delta_words(record.instance_type, delta))
        entries.append(
            RowHistoryEntry(
                when=record.history_date,
                who=person_words(record.history_user),
                table=table,
                row=label(record),
                action=record.get_history_type_display().lower(),
                changes=changes,
            )
        )
        previous_by_id[record.id] = record
    return entries


def _text(value) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return notation.plain_number(value, Decimal("0.001"))
    return str(value)


def protocol_version_row_history(*, version_id: int) -> list[RowHistoryEntry]:
    """Field-level history of a version's rules, steps, citations and test patients (who, when, what), newest first.
    A fixed number of queries: one per table, plus the references and step names for labels."""
    steps = list(
        DosingStep.history.filter(version_id=version_id)
        .select_related("history_user")
        .order_by("history_date", "history_id")
    )
    step_names = {record.id: record.name for record in steps}
    rules = IndicationRule.history.filter(version_id=version_id).select_related("history_user")
    citations = list(ProtocolCitation.history.filter(version_id=version_id).select_related("history_user"))
    step_citations = list(StepCitation.history.filter(step_id__in=list(step_names)).select_related("history_user"))
    reference_ids = {r.reference_id for r in citations} | {r.reference_id for r in step_citations}
    references = Reference.objects.in_bulk(reference_ids)
    test_patients = ProtocolTestPatient.history.filter(version_id=version_id).select_related("history_user")

    def reference_label(record) -> str:
        reference = references.get(record.reference_id)
        return reference.short_label if reference else f"reference {record.reference_id}"

    def ordered(records):
        return sorted(records, key=lambda r: (r.history_date, r.history_id))

    entries = (
        _history_entries(ordered(rules), "Indication rule", lambda r: r.summary)
        + _history_entries(steps, "Dosing step", lambda r: r.name)
        + _history_entries(ordered(citations), "Protocol citation", reference_label)
        + _history_entries(
            ordered(step_citations),
            "Step citation",
            lambda r: f"{step_names.get(r.step_id, 'step')}: {reference_label(r)}",
        )
        + _history_entries(ordered(test_patients), "Test patient", lambda r: r.label)
    )
    return sorted(entries, key=lambda e: e.when, reverse=True)


@dataclass(frozen=True, slots=True)
class LastChange:
    when: datetime
    who: str


def protocol_version_last_change(*, version_id: int) -> LastChange | None:
    """The newest recorded change to a version or any of its rows (for "changed by ... at ...")."""
    step_ids = DosingStep.history.filter(version_id=version_id).values("id")
    candidates = [
        queryset.select_related("history_user").order_by("-history_date", "-history_id").first()
        for queryset in (
            ProtocolVersion.history.filter(id=version_id),
            IndicationRule.history.filter(version_id=version_id),
            DosingStep.history.filter(version_id=version_id),
            ProtocolCitation.history.filter(version_id=version_id),
            StepCitation.history.filter(step_id__in=Subquery(step_ids)),
            ProtocolTestPatient.history.filter(version_id=version_id),
        )
    ]
    newest = max((c for c in candidates if c is not None), key=lambda c: c.history_date, default=None)
    if newest is None:
        return None
    return LastChange(when=newest.history_date, who=person_words(newest.history_user))


def _display(instance, name: str) -> str:
    field = instance._meta.get_field(name)
    if field.choices:
        value = getattr(instance, f"get_{name}_display")()
        return _text(value if getattr(instance, name) not in (None, "") else None)
    return _text(getattr(instance, name))


def _labelled(instance, names: Iterable[str]) -> dict[str, str]:
    return {str(instance._meta.get_field(n).verbose_name): _display(instance, n) for n in names}


RULE_FIELDS = (
    "min_grade",
    "max_grade",
    "min_prior_tocilizumab_doses",
    "requires_steroids",
    "result_status",
    "summary",
    "first_line_if_isolated_late_onset",
    "first_line_summary",
    "repeat_tocilizumab_from_doses",
    "repeat_tocilizumab_note",
)
STEP_FIELDS = (
    "position",
    "kind",
    "min_grade",
    "max_grade",
    "dose_basis",
    "amount_low",
    "amount_high",
    "interval_hours",
    "interval_is_maximum",
    "max_single_dose_mg",
    "max_daily_dose_mg",
    "escalation_ceiling_amount",
    "escalation_ceiling_basis",
    "rounding_increment_mg",
    "rounding_tolerance_percent",
    "duration_text",
    "taper_text",
    "notes",
)
VERSION_FIELDS = (
    "utilization",
    "indications_summary",
    "notes",
    "reported_car_target",
    "concentration_mg_per_ml",
    "reported_max_mg_per_kg_per_day",
    "reported_max_basis",
    "usual_daily_cap_mg",
    "usual_daily_cap_basis",
    "thresholds_reference",
    "thresholds_locator",
    "label_reference",
)


def _test_patient_values(test_patient: ProtocolTestPatient) -> dict[str, str]:
    """A test patient as its reviewer reads it: the patient in words, the expected answer as ranges."""

    def expected(low: Decimal | None, high: Decimal | None, unit: str) -> str:
        return "-" if low is None or high is None else range_text(DoseRange(low, high), unit)

    return {
        "patient": patient_inputs_text(test_patient.inputs),
        **_labelled(test_patient, ("expected_status", "expected_step_name")),
        "expected per dose": expected(
            test_patient.expected_per_dose_low_mg, test_patient.expected_per_dose_high_mg, "mg"
        ),
        "expected per day": expected(
            test_patient.expected_per_day_low_mg, test_patient.expected_per_day_high_mg, "mg/day"
        ),
        **_labelled(test_patient, ("arithmetic",)),
    }


def protocol_version_snapshot(*, version_id: int) -> Snapshot:
    """A version's content as labelled text, for diffs (six queries)."""
    version = versions_with_content(ProtocolVersion.objects.filter(pk=version_id)).get()
    rules = []
    for number, rule in enumerate(version.rules.all(), start=1):
        values = {"toxicities": ", ".join(rule.toxicities), **_labelled(rule, RULE_FIELDS)}
        rules.append((f"Rule {number}", values))
    steps = []
    for step in version.steps.all():
        values = {"toxicities": ", ".join(step.toxicities), "routes": ", ".join(step.routes)}
        values |= _labelled(step, STEP_FIELDS)
        values["citations"] = "; ".join(str(c.reference) for c in step.citations.all()) or "-"
        steps.append((step.name, values))
    citations = [(str(c.reference), {"locator": c.locator or "-"}) for c in version.citations.all()]
    test_patients = [(p.label, _test_patient_values(p)) for p in protocol_test_patients(version_id=version_id)]
    return Snapshot(
        version=_labelled(version, VERSION_FIELDS),
        citations=citations,
        rules=rules,
        steps=steps,
        test_patients=test_patients,
    )


def protocol_version_diff(*, old_version_id: int, new_version_id: int) -> list[SectionDiff]:
    return snapshot_diff(
        protocol_version_snapshot(version_id=old_version_id), protocol_version_snapshot(version_id=new_version_id)
    )


# --- Governance display ----------------------------------------------------------------------------


class ReviewState:
    OVERDUE = "overdue"
    NOT_SCHEDULED = "not scheduled"
    CURRENT = "current"


def review_state(*, next_review: date | None, today: date) -> str:
    if next_review is None:
        return ReviewState.NOT_SCHEDULED
    return ReviewState.OVERDUE if next_review < today else ReviewState.CURRENT


@dataclass(frozen=True, slots=True)
class Governance:
    """Who wrote and checked a version, when it went live and when it is due for review."""

    version_id: int
    version_number: int
    status: str
    authored_by: str
    submitted_by: str
    checked_by: str
    submitted_at: datetime | None
    published_at: datetime | None
    next_review: date | None
    review_state: str
    change_reason: str
    coverage_note: str = ""


def version_governance(*, version: ProtocolVersion, today: date | None = None) -> Governance:
    """Expects `authored_by`, `submitted_by` and `approved_by` selected (no query of its own)."""
    today = today or timezone.localdate()
    return Governance(
        version_id=version.pk,
        version_number=version.number,
        status=version.status,
        authored_by=user_display(version.authored_by) or ("data file loader" if version.source_fingerprint else ""),
        submitted_by=user_display(version.submitted_by),
        checked_by=version.approver_display,
        submitted_at=version.submitted_at,
        published_at=version.published_at,
        next_review=version.next_review,
        review_state=review_state(next_review=version.next_review, today=today),
        change_reason=version.change_reason,
        coverage_note=version.coverage_note,
    )


def protocols_with_governance() -> QuerySet[Protocol]:
    """Protocols with their published and open versions attached (`published_versions`,
    `open_versions` lists): three queries for any number of protocols."""
    people = ("authored_by", "submitted_by", "approved_by")
    return Protocol.objects.select_related("institution").prefetch_related(
        Prefetch(
            "versions",
            queryset=ProtocolVersion.objects.published().select_related(*people),
            to_attr="published_versions",
        ),
        Prefetch(
            "versions",
            queryset=ProtocolVersion.objects.filter(status__in=OPEN_STATUSES).select_related(*people),
            to_attr="open_versions",
        ),
    )


def protocol_version_default_comparison(*, version: ProtocolVersion) -> ProtocolVersion | None:
    """What a version is compared with by default: the version it was copied from, else the
    published one, else the newest before it."""
    if version.based_on_id:
        return version.based_on
    siblings = ProtocolVersion.objects.filter(protocol_id=version.protocol_id).exclude(pk=version.pk)
    return siblings.published().first() or siblings.filter(number__lt=version.number).order_by("-number").first()


def protocol_test_patient_runs(*, test_patient: ProtocolTestPatient) -> list[tuple[ProtocolVersion, CheckOutcome]]:
    """One test patient on its own version and, when that is not the live one, on the published version."""
    versions = [test_patient.version]
    published = (
        ProtocolVersion.objects.published()
        .filter(protocol_id=test_patient.version.protocol_id)
        .exclude(pk=test_patient.version_id)
        .first()
    )
    if published is not None:
        versions.append(published)
    expectation = test_patient_expectation(test_patient)
    return [
        (version, expectation_check(expectation=expectation, protocol=protocol_version_data(version_id=version.pk)))
        for version in versions
    ]


def institution_has_versions(*, institution_id: int) -> bool:
    """Once a protocol version exists, the institution's slug is a public identifier."""
    return ProtocolVersion.objects.filter(protocol__institution_id=institution_id).exists()


# --- The reviewed change: plausibility of changed amounts and their coverage by test patients ---------


def plausibility_thresholds(*, version_id: int) -> PlausibilityThresholds:
    """The most any center in the letter reports (per kg per day, and the usual per-day cap), with their
    citation, as they apply to a change: the comparison amounts of the approved version `version_id` (the
    version a draft was copied from), never the draft's own, which the same change could edit.

    They are protocol-version data (clinical review round 2: `ProtocolVersion.reported_max_mg_per_kg_per_day`,
    `usual_daily_cap_mg` and their reference), the same amounts the engine's above_reported_maximum and
    above_usual_daily_cap compare with. A version loaded before they existed borrows those of the newest
    published version that states them; with none anywhere, nothing is flagged.
    """
    thresholds = protocol_version_thresholds(version_id=version_id)
    if thresholds is None:
        newest = (
            ProtocolVersion.objects.published()
            .filter(reported_max_mg_per_kg_per_day__isnull=False)
            .select_related("thresholds_reference")
            .order_by("-published_at", "-pk")
            .first()
        )
        thresholds = thresholds_from_version(newest) if newest is not None else None
    if thresholds is None:
        return PlausibilityThresholds(mg_per_kg_per_day=None, mg_per_day=None, citation="")
    return PlausibilityThresholds(
        mg_per_kg_per_day=thresholds.reported_max_mg_per_kg_per_day,
        mg_per_day=thresholds.usual_daily_cap_mg,
        citation=thresholds.citation.label if thresholds.citation else "",
    )


@dataclass(frozen=True, slots=True)
class AmountReview:
    amount: ChangedAmount
    covered_by: tuple[str, ...]  # labels of the test patients whose answers this amount changes
    confirmation: AmountConfirmation | None

    @property
    def flagged(self) -> bool:
        return self.amount.above

    @property
    def confirmed(self) -> bool:
        return self.confirmation is not None


@dataclass(frozen=True, slots=True)
class ChangeReview:
    """What a version changes in the amounts given, against the version it was copied from."""

    compared_with: ProtocolVersion | None
    thresholds: PlausibilityThresholds
    amounts: tuple[AmountReview, ...]

    @property
    def flagged(self) -> list[AmountReview]:
        return [a for a in self.amounts if a.flagged]

    @property
    def unconfirmed(self) -> list[AmountReview]:
        return [a for a in self.amounts if a.flagged and not a.confirmed]

    @property
    def uncovered(self) -> list[AmountReview]:
        return [a for a in self.amounts if not a.covered_by]


def _comparison_base(version: ProtocolVersion) -> ProtocolVersion | None:
    """What a version's changes are measured from: the version it was copied from; a new protocol's first
    version has none (every amount is new)."""
    return version.based_on if version.based_on_id else None


def protocol_version_change_review(
    *, version_id: int, new: ProtocolData | None = None, old: ProtocolData | None = None
) -> ChangeReview:
    """Versions already read may be passed in (`new`, and `old` for the version it was copied from)."""
    version = ProtocolVersion.objects.select_related("based_on").get(pk=version_id)
    base = _comparison_base(version)
    thresholds = plausibility_thresholds(version_id=base.pk if base is not None else version.pk)
    new = new or protocol_version_data(version_id=version_id)
    if base is None:
        old = None
    elif old is None or old.version_id != base.pk:
        old = protocol_version_data(version_id=base.pk)
    amounts = changed_amounts(old=old, new=new, thresholds=thresholds)
    expectations = [test_patient_expectation(p) for p in protocol_test_patients(version_id=version_id)]
    coverage = amount_coverage(old=old, new=new, amounts=amounts, expectations=expectations)
    confirmations = {c.amount_key: c for c in version.amount_confirmations.select_related("confirmed_by")}
    return ChangeReview(
        compared_with=base,
        thresholds=thresholds,
        amounts=tuple(
            AmountReview(
                amount=c.amount,
                covered_by=c.test_patient_labels,
                confirmation=confirmations.get(c.amount.key) if c.amount.above else None,
            )
            for c in coverage
        ),
    )


def dosing_step_unconfirmed_amounts(*, step: DosingStep) -> list[ChangedAmount]:
    """The amounts of a draft's step, as it stands in a form (not saved yet), that differ from the version
    the draft was copied from, lie above what the letter reports, and are not confirmed yet."""
    version = ProtocolVersion.objects.select_related("based_on").get(pk=step.version_id)
    base = _comparison_base(version)
    old = None
    if base is not None:
        old_row = DosingStep.objects.filter(version_id=base.pk, name=step.name).first()
        old = step_data(old_row, with_citations=False) if old_row is not None else None
    amounts = step_changed_amounts(
        old=old,
        new=step_data(step, with_citations=False),
        thresholds=plausibility_thresholds(version_id=base.pk if base is not None else version.pk),
    )
    confirmed = set(version.amount_confirmations.values_list("amount_key", flat=True))
    return [a for a in amounts if a.above and a.key not in confirmed]


# --- A pharmacist's worklist (admin home) ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorklistEntry:
    version: ProtocolVersion
    governance: Governance


@dataclass(frozen=True, slots=True)
class Worklist:
    awaiting_your_review: list[WorklistEntry]  # submitted by others: yours to approve or return
    awaiting_another_pharmacist: list[WorklistEntry]  # versions you wrote or edited, submitted
    your_drafts: list[WorklistEntry]

    @property
    def empty(self) -> bool:
        return not (self.awaiting_your_review or self.awaiting_another_pharmacist or self.your_drafts)


def protocol_worklist(*, user, can_approve: bool) -> Worklist:
    """What awaits this pharmacist: submitted versions they may review (not their own work), their own
    submitted versions, and the drafts they started. Open versions are at most one per protocol."""
    people = ("protocol__institution", "authored_by", "submitted_by", "approved_by")
    open_versions = list(
        ProtocolVersion.objects.filter(status__in=OPEN_STATUSES)
        .select_related(*people)
        .order_by("submitted_at", "protocol__institution__name")
    )
    review, others, drafts = [], [], []
    for version in open_versions:
        entry = WorklistEntry(version=version, governance=version_governance(version=version))
        if version.status == VersionStatus.DRAFT:
            if version.authored_by_id == user.pk:
                drafts.append(entry)
        elif user.pk in protocol_version_editor_ids(version=version):
            others.append(entry)
        elif can_approve:
            review.append(entry)
    return Worklist(awaiting_your_review=review, awaiting_another_pharmacist=others, your_drafts=drafts)


# --- The printable change record ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    """One document for the committee: what changed, why, how it was checked, and who signed."""

    version: ProtocolVersion
    compared_with: ProtocolVersion | None
    governance: Governance
    sections: list[SectionDiff] | None
    review: ChangeReview
    test_patients: list[PreviewRow]
    decisions: list  # audit events, oldest first


def protocol_version_change_record(*, version_id: int) -> ChangeRecord:
    version = ProtocolVersion.objects.select_related(
        "protocol__institution", "authored_by", "submitted_by", "approved_by", "based_on"
    ).get(pk=version_id)
    compared_with = version.based_on if version.based_on_id else protocol_version_default_comparison(version=version)
    sections = (
        protocol_version_diff(old_version_id=compared_with.pk, new_version_id=version.pk) if compared_with else None
    )
    events = audit_events_for(subject_type="protocol_version", subject_id=version.pk)
    # Each version is read once (five queries), whatever the number of rows and test patients.
    new = protocol_version_data(version_id=version.pk)
    old = protocol_version_data(version_id=compared_with.pk) if compared_with else None
    return ChangeRecord(
        version=version,
        compared_with=compared_with,
        governance=version_governance(version=version),
        sections=sections,
        review=protocol_version_change_review(version_id=version.pk, new=new, old=old),
        test_patients=protocol_version_preview(version_id=version.pk, against=old, version_data=new),
        decisions=list(events.order_by("created_at", "id")),
    )
