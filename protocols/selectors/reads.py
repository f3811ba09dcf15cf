"""Plain reads of protocol versions: their test patients run on them, who wrote and checked them and when
they are due for review, what a version is compared with by default."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from engine.data import DoseRange, ProtocolData
from engine.vocabulary import Status
from protocols.models import (
    OPEN_STATUSES,
    Protocol,
    ProtocolTestPatient,
    ProtocolVersion,
    user_display,
)
from protocols.patient_checks import (
    CheckOutcome,
    PatientExpectation,
    expectation_check,
)
from protocols.selectors.catalog import (
    protocol_version_data,
    published_protocols,
)


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
