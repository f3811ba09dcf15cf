"""The governance services: drafts as full copies, submission, the two-person rule, review dates,
history users and audit events."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from evidence.models import Reference
from protocols.models import DosingStep, Protocol, ProtocolTestPatient, ProtocolVersion, VersionStatus
from protocols.selectors.history import protocol_version_diff, protocol_version_snapshot
from protocols.services import (
    FailingTestPatients,
    GovernanceError,
    StaleRevision,
    dosing_step_citations_set,
    protocol_version_approve,
    protocol_version_draft_create,
    protocol_version_first_create,
    protocol_version_reject,
    protocol_version_submit,
)
from tests import factories

pytestmark = pytest.mark.integration


def _protocol(slug: str) -> Protocol:
    return Protocol.objects.get(institution__slug=slug)


def _published(slug: str) -> ProtocolVersion:
    return ProtocolVersion.objects.get(protocol__institution__slug=slug, status=VersionStatus.PUBLISHED)


def _submit(version, user, reason="Wording only."):
    return protocol_version_submit(
        version=version, submitted_by=user, change_reason=reason, expected_revision=version.edit_revision
    )


def _approve(version, user, *, next_review=None, note="Checked against the source."):
    return protocol_version_approve(
        version=version,
        approved_by=user,
        password=factories.PASSWORD,
        approval_note=note,
        next_review=next_review or timezone.localdate() + timedelta(days=365),
        expected_revision=ProtocolVersion.objects.get(pk=version.pk).edit_revision,
    )


def test_draft_is_a_full_copy_of_the_published_version(pharmacist):
    source = _published("nih")  # three steps, one of them with its own citation

    draft = protocol_version_draft_create(protocol=_protocol("nih"), author=pharmacist, reason="Annual review")

    assert protocol_version_diff(old_version_id=source.pk, new_version_id=draft.pk) == []
    assert protocol_version_snapshot(version_id=draft.pk).steps[1][1]["citations"] == (
        "[18] Lichtenstein DA, et al. Blood 2021"
    )
    assert (draft.number, draft.status, draft.authored_by, draft.based_on) == (2, "draft", pharmacist, source)
    assert ProtocolVersion.objects.get(pk=source.pk).status == VersionStatus.PUBLISHED


def test_draft_copies_the_published_versions_test_patients(pharmacist):
    source = _published("stjude")

    draft = protocol_version_draft_create(protocol=_protocol("stjude"), author=pharmacist)

    copied = list(draft.test_patients.order_by("label").values_list("label", "inputs", "expected_per_day_low_mg"))
    assert copied == list(
        source.test_patients.order_by("label").values_list("label", "inputs", "expected_per_day_low_mg")
    )
    assert len(copied) == 3
    assert set(draft.test_patients.values_list("pk", flat=True)).isdisjoint(
        source.test_patients.values_list("pk", flat=True)
    )
    assert {r.history_user for r in ProtocolTestPatient.history.filter(version_id=draft.pk)} == {pharmacist}


def test_draft_carries_the_start_reason_into_its_change_reason(pharmacist):
    draft = protocol_version_draft_create(protocol=_protocol("cnh"), author=pharmacist, reason="  Annual review  ")
    unexplained = protocol_version_draft_create(protocol=_protocol("nih"), author=pharmacist)

    assert (draft.change_reason, unexplained.change_reason) == ("Annual review", "")


def test_test_patient_edited_in_a_draft_is_in_the_diff(pharmacist):
    draft = protocol_version_draft_create(protocol=_protocol("cnh"), author=pharmacist)
    heavy = draft.test_patients.get(label__startswith="60 kg")
    heavy.expected_per_dose_low_mg = heavy.expected_per_dose_high_mg = Decimal("80")
    heavy.save()
    draft.test_patients.filter(label__startswith="20 kg, CRS grade 3 with").delete()

    sections = protocol_version_diff(old_version_id=_published("cnh").pk, new_version_id=draft.pk)

    assert [s.title for s in sections] == ["Test patients"]
    assert [(row.key, row.state) for row in sections[0].rows] == [
        (heavy.label, "changed"),
        ("20 kg, CRS grade 3 with steroids but no tocilizumab yet: third line not reached", "removed"),
    ]
    assert [(c.label, c.old, c.new) for c in sections[0].rows[0].changes] == [("expected per dose", "100 mg", "80 mg")]


def test_editor_of_a_test_patient_cannot_approve(pharmacist, second_pharmacist):
    draft = protocol_version_draft_create(protocol=_protocol("cnh"), author=pharmacist)
    test_patient = draft.test_patients.first()
    test_patient.arithmetic = "Checked again."
    test_patient._history_user = second_pharmacist
    test_patient.save()
    version = _submit(ProtocolVersion.objects.get(pk=draft.pk), pharmacist)

    with pytest.raises(GovernanceError, match="You wrote or edited this version"):
        _approve(version, second_pharmacist)


def test_draft_history_and_audit_name_the_author(pharmacist):
    draft = protocol_version_draft_create(protocol=_protocol("cnh"), author=pharmacist, reason="Annual review")

    assert {r.history_user for r in draft.history.all()} == {pharmacist}
    assert {r.history_user for r in DosingStep.history.filter(version_id=draft.pk)} == {pharmacist}
    event = AuditEvent.objects.get(action="protocol_version.draft_started", subject_id=str(draft.pk))
    assert (event.actor, event.reason, event.details) == (
        pharmacist,
        "Annual review",
        {
            "protocol": "cnh",
            "version": 2,
            "subject": "Children's National Hospital anakinra protocol v2",
            "copied_from_version": 1,
        },
    )


def test_draft_refused_without_a_published_version(pharmacist):
    protocol = factories.ProtocolFactory()

    with pytest.raises(GovernanceError, match="has no published version to copy"):
        protocol_version_draft_create(protocol=protocol, author=pharmacist)


def test_submit_needs_a_change_reason(pharmacist):
    draft = protocol_version_draft_create(protocol=_protocol("cnh"), author=pharmacist)

    with pytest.raises(GovernanceError, match="Say what changed and why"):
        _submit(draft, pharmacist, reason="  ")

    assert ProtocolVersion.objects.get(pk=draft.pk).status == VersionStatus.DRAFT


def test_submit_refused_without_test_patients(pharmacist):
    draft = protocol_version_draft_create(protocol=_protocol("chop"), author=pharmacist)
    draft.test_patients.all().delete()
    draft.refresh_from_db()

    with pytest.raises(FailingTestPatients, match="has no test patients"):
        _submit(draft, pharmacist)


def test_submit_refused_for_a_stale_revision(pharmacist, second_pharmacist):
    draft = protocol_version_draft_create(protocol=_protocol("cnh"), author=pharmacist)
    loaded = draft.edit_revision
    step = draft.steps.get()
    step.taper_text = "edited by the second pharmacist"
    step._history_user = second_pharmacist
    step.save()

    with pytest.raises(StaleRevision, match=f"changed by {second_pharmacist.get_full_name()} at"):
        protocol_version_submit(version=draft, submitted_by=pharmacist, change_reason="x", expected_revision=loaded)


def test_author_cannot_approve_own_version(pharmacist):
    version = _submit(protocol_version_draft_create(protocol=_protocol("cnh"), author=pharmacist), pharmacist)

    with pytest.raises(GovernanceError, match="You wrote or edited this version"):
        _approve(version, pharmacist)

    assert ProtocolVersion.objects.get(pk=version.pk).status == VersionStatus.SUBMITTED


def test_editor_of_a_single_step_cannot_approve(pharmacist, second_pharmacist):
    draft = protocol_version_draft_create(protocol=_protocol("cnh"), author=pharmacist)
    step = draft.steps.get()
    step.duration_text = "Up to 2 weeks."
    step._history_user = second_pharmacist
    step.save()
    version = _submit(ProtocolVersion.objects.get(pk=draft.pk), pharmacist)

    with pytest.raises(GovernanceError, match="You wrote or edited this version"):
        _approve(version, second_pharmacist)


def test_reviewer_who_returned_a_version_may_approve_it_later(pharmacist, second_pharmacist):
    version = _submit(protocol_version_draft_create(protocol=_protocol("cnh"), author=pharmacist), pharmacist)
    returned = protocol_version_reject(
        version=version, rejected_by=second_pharmacist, reason="Add the source.", expected_revision=None
    )
    resubmitted = _submit(returned, pharmacist, reason="Source added.")

    published = _approve(resubmitted, second_pharmacist)

    assert (published.status, published.approved_by) == (VersionStatus.PUBLISHED, second_pharmacist)


def test_approval_needs_the_approve_permission(pharmacist, clinician):
    version = _submit(protocol_version_draft_create(protocol=_protocol("cnh"), author=pharmacist), pharmacist)

    with pytest.raises(GovernanceError, match="Only a pharmacist with approval rights"):
        _approve(version, clinician)


@pytest.mark.parametrize("days_ahead", [0, -1, 3 * 366 + 1])
def test_next_review_must_be_after_today_and_within_three_years(pharmacist, second_pharmacist, days_ahead):
    version = _submit(protocol_version_draft_create(protocol=_protocol("cnh"), author=pharmacist), pharmacist)

    with pytest.raises(GovernanceError, match="The next review date must be after today"):
        _approve(version, second_pharmacist, next_review=timezone.localdate() + timedelta(days=days_ahead))


def test_approval_publishes_retires_and_records_who_and_why(pharmacist, second_pharmacist):
    old = _published("cnh")
    version = _submit(
        protocol_version_draft_create(protocol=_protocol("cnh"), author=pharmacist), pharmacist, "Typo fixed."
    )
    review = timezone.localdate() + timedelta(days=200)

    _approve(version, second_pharmacist, next_review=review, note="Compared with Table 1.")

    retired = ProtocolVersion.objects.get(pk=old.pk)
    assert retired.status == VersionStatus.RETIRED
    retirement = retired.history.order_by("-history_date", "-history_id").first()
    assert (retirement.status, retirement.history_user, retirement.history_change_reason) == (
        "retired",
        second_pharmacist,
        "retired: version 2 published",
    )
    latest = ProtocolVersion.objects.get(pk=version.pk).history.order_by("-history_date", "-history_id").first()
    assert (latest.status, latest.history_user, latest.next_review) == ("published", second_pharmacist, review)
    events = AuditEvent.objects.filter(subject_id=str(version.pk)).order_by("id")
    assert [(e.action, e.actor, e.reason) for e in events] == [
        ("protocol_version.draft_started", pharmacist, "Draft started from version 1."),
        ("protocol_version.submitted", pharmacist, "Typo fixed."),
        ("protocol_version.approved", second_pharmacist, "Compared with Table 1."),
        ("protocol_version.published", second_pharmacist, "Typo fixed."),
    ]
    assert events.last().details == {
        "protocol": "cnh",
        "version": 2,
        "subject": "Children's National Hospital anakinra protocol v2",
        "next_review": review.isoformat(),
        "test_patients_passed": 4,  # cnh's four seeded test patients
        "retired_version": 1,
    }
    approved = events.get(action="protocol_version.approved").details
    assert (approved["signature"], approved["amounts_above_letter"], approved["amounts_no_test_patient_exercises"]) == (
        "password re-entered at approval",
        [],
        [],
    )


def test_publish_refused_while_a_test_patient_fails(pharmacist, second_pharmacist):
    draft = protocol_version_draft_create(protocol=_protocol("stjude"), author=pharmacist)
    version = _submit(draft, pharmacist)
    step = version.steps.get()
    # Edited after submission (the ORM allows it on an open version); the approver passes no revision.
    DosingStep.objects.filter(pk=step.pk).update(rounding_tolerance_percent=Decimal("5"))

    with pytest.raises(FailingTestPatients) as caught:
        protocol_version_approve(
            version=version,
            approved_by=second_pharmacist,
            password=factories.PASSWORD,
            approval_note="ok",
            next_review=timezone.localdate() + timedelta(days=30),
            expected_revision=None,
        )

    assert [o.expectation.label for o in caught.value.outcomes] == [
        "38 kg, carHLH grade 3: rounded to the nearest vial"
    ]
    assert caught.value.outcomes[0].problems == (
        "Initial dosing, per dose: expected 100 mg, got 95 mg",
        "Initial dosing, per day: expected 400 mg/day, got 380 mg/day",
    )
    assert _published("stjude").number == 1


def test_step_citations_set_adds_removes_and_orders(pharmacist):
    draft = protocol_version_draft_create(protocol=_protocol("nih"), author=pharmacist)
    step = draft.steps.get(name="Initial dosing, less severe carHLH")
    wanted = [Reference.objects.get(key="ref-28"), Reference.objects.get(key="diorio-2022")]

    dosing_step_citations_set(step=step, references=wanted, actor=pharmacist)

    assert [(c.reference.key, c.position) for c in step.citations.order_by("position")] == [
        ("ref-28", 0),
        ("diorio-2022", 1),
    ]


def test_first_version_refused_once_the_protocol_has_one(pharmacist):
    version = ProtocolVersion(protocol=_protocol("cnh"), utilization="x", indications_summary="y")

    with pytest.raises(GovernanceError, match="already has a version: start a draft from it instead"):
        protocol_version_first_create(version=version, author=pharmacist)

    assert ProtocolVersion.objects.filter(protocol=_protocol("cnh")).count() == 1
