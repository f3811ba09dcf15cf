"""The governance workflow through the admin, with the Django test client: draft, inline edit,
submit, self-approval refused, approval by a second pharmacist, the new version live, and
assessments made before it unchanged."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from protocols.models import DosingStep, Protocol, ProtocolTestPatient, ProtocolVersion, VersionStatus
from protocols.selectors.catalog import published_protocols
from tests import factories
from tests.admin_helpers import admin_form_data, logged_in, step_field, version_change_url

pytestmark = pytest.mark.integration

# cnh: 2 mg/kg/dose every 6 h, max 100 mg/dose and 400 mg/day. 60 kg -> 120 mg, capped to 100 mg.
HEAVY_CNH_PATIENT = {
    "weight_kg": 60,
    "age_years": 17,
    "toxicities": [{"type": "ICANS", "grade": 4}],
    "prior_tocilizumab_doses": 2,
    "prior_steroids": True,
    "institution": "cnh",
}
HEAVY_LABEL = "60 kg, ICANS grade 4 after tocilizumab and steroids: per-dose cap"


def _recommend(client, body):
    return client.post("/api/v1/recommendations", data=json.dumps(body), content_type="application/json")


def _action_url(name: str, version: ProtocolVersion) -> str:
    return reverse(f"admin:protocols_protocolversion_{name}", args=[version.pk])


def _revision(client, url: str) -> str:
    return str(client.get(url).context["form"]["revision"].value())


def _next_year() -> str:
    return (timezone.localdate() + timedelta(days=365)).isoformat()


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_workflow_draft_edit_submit_approve_publishes_and_keeps_old_assessments(
    pharmacist, second_pharmacist, clinician
):
    # Arrange: a clinician's assessment on the published version 1 (100 mg per dose, capped).
    clinician_client = logged_in(clinician)
    before = _recommend(clinician_client, HEAVY_CNH_PATIENT).json()
    assert before["recommendations"][0]["steps"][0]["per_dose_mg"] == {"low": 100, "high": 100}
    author, reviewer = logged_in(pharmacist), logged_in(second_pharmacist)
    protocol = Protocol.objects.get(institution__slug="cnh")
    version_1 = ProtocolVersion.objects.get(protocol=protocol, status=VersionStatus.PUBLISHED)

    # Act 1: start a draft (a copy of version 1).
    started = author.post(
        reverse("admin:protocols_protocol_start_draft", args=[protocol.pk]), {"reason": "Lower the per-dose cap"}
    )
    draft = ProtocolVersion.objects.get(protocol=protocol, status=VersionStatus.DRAFT)
    assert (started.status_code, started["Location"], draft.number, draft.based_on) == (
        302,
        version_change_url(draft.pk),
        2,
        version_1,
    )

    # Act 2: change the per-dose cap inline, 100 mg -> 80 mg.
    page = author.get(version_change_url(draft.pk))
    data = admin_form_data(page)
    data[step_field(page, "Initial dosing", "max_single_dose_mg")] = "80"
    saved = author.post(version_change_url(draft.pk), data)
    assert saved.status_code == 302
    assert DosingStep.objects.get(version=draft).max_single_dose_mg == Decimal("80")

    # Act 3: submitting is refused while the 60 kg test patient still expects 100 mg.
    submit_url = _action_url("submit", draft)
    refused = author.post(submit_url, {"revision": _revision(author, submit_url), "change_reason": "Cap 80 mg"})
    assert refused.status_code == 200
    assert "Initial dosing, per dose: expected 100 mg, got 80 mg" in refused.content.decode()
    assert ProtocolVersion.objects.get(pk=draft.pk).status == VersionStatus.DRAFT

    # Act 4: the pharmacist updates that test patient's expected answer in the admin, then submits.
    test_patient = ProtocolTestPatient.objects.get(version=draft, label=HEAVY_LABEL)
    tp_url = reverse("admin:protocols_protocoltestpatient_change", args=[test_patient.pk])
    tp_data = admin_form_data(author.get(tp_url))
    tp_data |= {
        "expected_per_dose_low_mg": "80",
        "expected_per_dose_high_mg": "80",
        "expected_per_day_low_mg": "320",
        "expected_per_day_high_mg": "320",
    }
    assert author.post(tp_url, tp_data).status_code == 302
    submitted = author.post(
        submit_url, {"revision": _revision(author, submit_url), "change_reason": "Per-dose cap lowered to 80 mg."}
    )
    assert submitted.status_code == 302
    assert ProtocolVersion.objects.get(pk=draft.pk).status == VersionStatus.SUBMITTED

    # Act 5: the author cannot approve their own version.
    approve_url = _action_url("approve", draft)
    approval = {"approval_note": "Checked.", "next_review": _next_year(), "password": factories.PASSWORD}
    self_approval = author.post(approve_url, {**approval, "revision": _revision(author, approve_url)})
    assert self_approval.status_code == 200
    assert "You wrote or edited this version, so you cannot approve it" in self_approval.content.decode()
    assert ProtocolVersion.objects.get(pk=draft.pk).status == VersionStatus.SUBMITTED

    # Act 6: a second pharmacist approves; the version is published.
    approved = reviewer.post(approve_url, {**approval, "revision": _revision(reviewer, approve_url)})

    # Assert: version 2 is live, version 1 retired, the API gives the new dose, the old assessment is unchanged.
    assert approved.status_code == 302
    version_2 = ProtocolVersion.objects.get(pk=draft.pk)
    assert (version_2.status, version_2.approved_by, version_2.next_review.isoformat()) == (
        VersionStatus.PUBLISHED,
        second_pharmacist,
        approval["next_review"],
    )
    assert ProtocolVersion.objects.get(pk=version_1.pk).status == VersionStatus.RETIRED
    live = published_protocols(institution_slug="cnh")
    assert [(p.version_number, p.steps[0].max_single_dose_mg) for p in live] == [(2, Decimal("80"))]
    after = _recommend(clinician_client, HEAVY_CNH_PATIENT).json()
    assert after["recommendations"][0]["steps"][0]["per_dose_mg"] == {"low": 80, "high": 80}
    stored = clinician_client.get(f"/api/v1/assessments/{before['assessment_id']}").json()
    assert stored == before
    assert stored["recommendations"][0]["protocol"]["version"] == 1
    assert list(
        AuditEvent.objects.filter(subject_id=str(draft.pk)).order_by("id").values_list("action", "actor__username")
    ) == [
        ("protocol_version.draft_started", "pharm1"),
        ("protocol_version.submitted", "pharm1"),
        ("protocol_version.approved", "pharm2"),
        ("protocol_version.published", "pharm2"),
    ]


@pytest.fixture
def submitted_cnh_draft(pharmacist):
    """cnh v2 submitted by `pharmacist`: notes changed only, so every test patient still passes."""
    from protocols.services import protocol_version_draft_create, protocol_version_submit

    protocol = Protocol.objects.get(institution__slug="cnh")
    draft = protocol_version_draft_create(protocol=protocol, author=pharmacist)
    return protocol_version_submit(
        version=draft, submitted_by=pharmacist, change_reason="Wording.", expected_revision=draft.edit_revision
    )


def test_reject_returns_version_to_draft_with_reason_and_audit(submitted_cnh_draft, second_pharmacist):
    reviewer = logged_in(second_pharmacist)
    url = _action_url("reject", submitted_cnh_draft)

    response = reviewer.post(url, {"revision": _revision(reviewer, url), "reason": "Cite the source of the change."})

    assert response.status_code == 302
    version = ProtocolVersion.objects.get(pk=submitted_cnh_draft.pk)
    assert (version.status, version.submitted_by) == (VersionStatus.DRAFT, None)
    event = AuditEvent.objects.get(subject_id=str(version.pk), action="protocol_version.rejected")
    assert (event.actor, event.reason) == (second_pharmacist, "Cite the source of the change.")


def test_reject_without_reason_keeps_version_submitted(submitted_cnh_draft, second_pharmacist):
    reviewer = logged_in(second_pharmacist)
    url = _action_url("reject", submitted_cnh_draft)

    response = reviewer.post(url, {"revision": _revision(reviewer, url), "reason": ""})

    assert response.status_code == 200
    assert response.context["form"].errors == {"reason": ["This field is required."]}
    assert ProtocolVersion.objects.get(pk=submitted_cnh_draft.pk).status == VersionStatus.SUBMITTED


def test_approve_refused_while_a_test_patient_fails(submitted_cnh_draft, second_pharmacist):
    # Arrange: after submission, a test patient's expectation no longer matches the version.
    test_patient = ProtocolTestPatient.objects.get(version=submitted_cnh_draft, label=HEAVY_LABEL)
    test_patient.expected_per_dose_low_mg = test_patient.expected_per_dose_high_mg = Decimal("90")
    test_patient.save()
    reviewer = logged_in(second_pharmacist)
    url = _action_url("approve", submitted_cnh_draft)

    response = reviewer.post(
        url,
        {
            "revision": _revision(reviewer, url),
            "approval_note": "ok",
            "next_review": _next_year(),
            "password": factories.PASSWORD,
        },
    )

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "Cannot publish: 1 of 4 test patients fail on this version. "
        f"{HEAVY_LABEL}: Initial dosing, per dose: expected 90 mg, got 100 mg"
    ]
    assert ProtocolVersion.objects.get(pk=submitted_cnh_draft.pk).status == VersionStatus.SUBMITTED
    assert published_protocols(institution_slug="cnh")[0].version_number == 1


def test_approve_refused_when_version_changed_since_the_page_was_loaded(
    submitted_cnh_draft, pharmacist, second_pharmacist
):
    reviewer = logged_in(second_pharmacist)
    url = _action_url("approve", submitted_cnh_draft)
    loaded_revision = _revision(reviewer, url)
    step = DosingStep.objects.get(version=submitted_cnh_draft)
    step.notes = "Changed after the reviewer opened the page."
    step._history_user = pharmacist
    step.save()

    response = reviewer.post(
        url,
        {
            "revision": loaded_revision,
            "approval_note": "ok",
            "next_review": _next_year(),
            "password": factories.PASSWORD,
        },
    )

    assert response.status_code == 200
    assert (
        response.context["form"]
        .non_field_errors()[0]
        .startswith(f"This version was changed by {pharmacist.get_full_name()} at ")
    )
    assert "after you opened it. Nothing was saved" in response.context["form"].non_field_errors()[0]
    assert ProtocolVersion.objects.get(pk=submitted_cnh_draft.pk).status == VersionStatus.SUBMITTED


def test_start_draft_refused_while_another_draft_is_open(pharmacist, second_pharmacist):
    protocol = Protocol.objects.get(institution__slug="nih")
    url = reverse("admin:protocols_protocol_start_draft", args=[protocol.pk])
    logged_in(pharmacist).post(url, {"reason": ""})

    response = logged_in(second_pharmacist).post(url, {"reason": ""})

    assert response.status_code == 200
    assert ProtocolVersion.objects.filter(protocol=protocol, status=VersionStatus.DRAFT).count() == 1
    draft = ProtocolVersion.objects.get(protocol=protocol, status=VersionStatus.DRAFT)
    assert response.context["form"].non_field_errors() == [
        f"{protocol} already has {draft} (authored by {pharmacist.get_full_name()}): "
        "continue that one, or delete it first."
    ]


def test_start_draft_action_on_changelist_creates_drafts(pharmacist):
    protocols = Protocol.objects.filter(institution__slug__in=["chop", "musc"])

    response = logged_in(pharmacist).post(
        reverse("admin:protocols_protocol_changelist"),
        {"action": "start_drafts", "_selected_action": [p.pk for p in protocols]},
    )

    assert response.status_code == 302
    drafts = ProtocolVersion.objects.filter(status=VersionStatus.DRAFT).order_by("protocol__institution__slug")
    assert [(d.protocol.institution.slug, d.number, d.authored_by) for d in drafts] == [
        ("chop", 2, pharmacist),
        ("musc", 2, pharmacist),
    ]
