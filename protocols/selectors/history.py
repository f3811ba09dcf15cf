"""A version's history and what it changes: who edited it, its rows' field-level history, its content as
labelled text and the diff of two versions, its test patients' answers beside the published version's, and
the amounts it changes (plausibility against what the letter reports, coverage by test patients)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Subquery

from anakinra_cds.history_words import delta_words, person_words
from engine import notation
from engine.data import DoseRange, ProtocolData
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
    AmountConfirmation,
    DosingStep,
    IndicationRule,
    ProtocolCitation,
    ProtocolTestPatient,
    ProtocolVersion,
    StepCitation,
)
from protocols.patient_checks import (
    CheckOutcome,
    answer_lines,
    expectation_check,
    patient_inputs_text,
    range_text,
)
from protocols.selectors.catalog import (
    protocol_version_data,
    protocol_version_thresholds,
    step_data,
    thresholds_from_version,
    versions_with_content,
)
from protocols.selectors.reads import (
    protocol_test_patients,
    test_patient_expectation,
)


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


# What counts as editing a version (history records compare columns): its content and its change reason.
VERSION_CONTENT_FIELDS = (*ProtocolVersion.content_attnames(), "change_reason")


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
        version=_labelled(version, ProtocolVersion.CONTENT_FIELDS),
        citations=citations,
        rules=rules,
        steps=steps,
        test_patients=test_patients,
    )


def protocol_version_diff(*, old_version_id: int, new_version_id: int) -> list[SectionDiff]:
    return snapshot_diff(
        protocol_version_snapshot(version_id=old_version_id), protocol_version_snapshot(version_id=new_version_id)
    )


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
