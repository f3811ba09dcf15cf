"""What the governance pages put together: a pharmacist's worklist (admin home) and the printable change
record for the committee."""

from __future__ import annotations

from dataclasses import dataclass

from audit.selectors import audit_events_for
from protocols.diff import SectionDiff
from protocols.models import (
    OPEN_STATUSES,
    ProtocolVersion,
    VersionStatus,
)
from protocols.selectors.catalog import (
    protocol_version_data,
)
from protocols.selectors.history import (
    ChangeReview,
    PreviewRow,
    protocol_version_change_review,
    protocol_version_diff,
    protocol_version_editor_ids,
    protocol_version_preview,
)
from protocols.selectors.reads import (
    Governance,
    protocol_version_default_comparison,
    version_governance,
)

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
