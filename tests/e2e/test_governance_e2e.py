"""A pharmacist lowers a cap in the admin, a second pharmacist approves and publishes it, and a
clinician then gets the new dose. Every page is watched for console errors and CSP violations
(the admin must work with our CSP: 'self', nothing inline)."""

from __future__ import annotations

import threading

import pytest
from django.db import connections, transaction
from playwright.sync_api import expect

from protocols.models import Protocol, ProtocolVersion, VersionStatus
from protocols.services import GovernanceError, protocol_version_draft_create
from tests.e2e import wizard
from tests.e2e.conftest import axe_violations, e2e_db, login, screenshot
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, e2e_db]

# cnh: 2 mg/kg/dose every 6 h. 60 kg -> 120 mg: 100 mg with the published cap, 80 mg with the new one.
HEAVY_PATIENT = {
    "weight_kg": 60,
    "age_years": 17,
    "toxicities": [{"type": "ICANS", "grade": 4}],
    "prior_tocilizumab_doses": 2,
    "prior_steroids": True,
    "institution": "cnh",
}
HEAVY_LABEL = "60 kg, ICANS grade 4 after tocilizumab and steroids: per-dose cap"


def clinician_sees(page, live_server, patient: dict) -> dict[str, str]:
    """What a signed-in clinician is shown for `patient`: the wizard walked to the bedside result page."""
    page.goto(f"{live_server.url}/")
    wizard.walk(page, patient)
    return wizard.first_step_shown(page, patient["institution"])


def _switch_user(page, live_server, username: str) -> None:
    page.context.clear_cookies()
    login(page, live_server, username=username)


def test_pharmacist_changes_cap_and_second_pharmacist_publishes_it(watched_page, live_server, request):
    page = watched_page
    author = UserFactory(username="e2e-author", role="pharmacist")
    reviewer = UserFactory(username="e2e-reviewer", role="pharmacist")
    UserFactory(username="e2e-clin", role="clinician")
    _switch_user(page, live_server, "e2e-clin")
    # 2 mg/kg x 60 kg = 120 mg, above the published 100 mg per-dose cap
    assert clinician_sees(page, live_server, HEAVY_PATIENT) == {
        "order": "anakinra 100 mg IV every 6 hours (2 mg/kg/dose; max 100 mg/dose, 400 mg/day)",
        "per_dose": "100 mg",
    }

    # The author starts a draft of the cnh protocol from the admin.
    _switch_user(page, live_server, "e2e-author")
    page.goto(f"{live_server.url}/admin/protocols/protocol/")
    page.get_by_role("link", name="Children's National Hospital anakinra protocol").click()
    expect(page.get_by_text("Next review due")).to_be_visible()
    page.get_by_role("link", name="Start a new draft").click()
    page.get_by_label("Why a new version (optional)").fill("Lower the per-dose cap.")
    page.get_by_role("button", name="Start the draft").click()
    expect(page.get_by_text("Draft v2 started as a copy of the published version.")).to_be_visible()
    draft_url = page.url

    # ... lowers the per-dose cap inline and sees the preview flag the changed answer.
    page.get_by_role("spinbutton", name="maximum per dose (mg)").fill("80")
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.get_by_text("fails on this version").first).to_be_visible()
    expect(page.get_by_text("(changed)").first).to_be_visible()
    screenshot(page, request, "draft-preview")

    # ... updates the test patient that pinned the old cap.
    page.goto(f"{live_server.url}/admin/protocols/protocoltestpatient/")
    page.get_by_role("link", name=HEAVY_LABEL).click()
    page.get_by_label("expected per dose, low (mg)").fill("80")
    page.get_by_label("expected per dose, high (mg)").fill("80")
    page.get_by_label("expected per day, low (mg)").fill("320")
    page.get_by_label("expected per day, high (mg)").fill("320")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("was changed successfully")).to_be_visible()

    # ... and submits it for approval.
    page.goto(draft_url)
    page.get_by_role("link", name="Submit for approval").click()
    page.get_by_label("Change reason").fill("Per-dose cap lowered to 80 mg (test change).")
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.get_by_text("submitted for approval.")).to_be_visible()

    # A second pharmacist reviews the differences and approves.
    _switch_user(page, live_server, "e2e-reviewer")
    page.goto(draft_url)
    page.get_by_role("link", name="Approve and publish").click()
    expect(page.get_by_role("rowheader", name="maximum per dose (mg)")).to_be_visible()
    screenshot(page, request, "approve")
    assert axe_violations(page) == []
    page.get_by_label("Approval note").fill("Checked the change and the test patients.")
    page.get_by_role("button", name="Approve and publish").click()
    expect(page.get_by_text("approved and published; it is live now.")).to_be_visible()
    facts = page.locator(".gov-facts")
    expect(facts).to_contain_text(f"Authored by{author.get_full_name()}")
    expect(facts).to_contain_text(f"Checked by{reviewer.get_full_name()}")

    # The clinician now gets the new dose.
    _switch_user(page, live_server, "e2e-clin")
    # The same 120 mg is now capped at the new 80 mg per dose.
    assert clinician_sees(page, live_server, HEAVY_PATIENT) == {
        "order": "anakinra 80 mg IV every 6 hours (2 mg/kg/dose; max 80 mg/dose, 400 mg/day)",
        "per_dose": "80 mg",
    }


def test_two_pharmacists_starting_a_draft_at_once_get_one_draft():
    """Real concurrency (two connections, committed transactions): the second start waits on the
    protocol lock, then is told about the first draft instead of making a second one or a 500."""
    first_author = UserFactory(username="race-first", role="pharmacist")
    second_author = UserFactory(username="race-second", role="pharmacist")
    protocol = Protocol.objects.get(institution__slug="cnh")
    first_started, first_may_commit = threading.Event(), threading.Event()
    outcome: dict[str, str] = {}

    def start_first() -> None:
        try:
            with transaction.atomic():
                draft = protocol_version_draft_create(protocol=protocol, author=first_author)
                outcome["first"] = f"draft v{draft.number}"
                first_started.set()
                first_may_commit.wait(10)
        finally:
            connections.close_all()

    def start_second() -> None:
        try:
            draft = protocol_version_draft_create(protocol=protocol, author=second_author)
            outcome["second"] = f"draft v{draft.number}"
        except GovernanceError as error:
            outcome["second"] = str(error)
        except Exception as error:
            outcome["second"] = f"{type(error).__name__}: {error}"
        finally:
            connections.close_all()

    first = threading.Thread(target=start_first)
    first.start()
    assert first_started.wait(10)
    second = threading.Thread(target=start_second)
    second.start()
    second.join(1)
    waiting = second.is_alive()  # blocked on the protocol lock the first start holds
    first_may_commit.set()
    first.join(10)
    second.join(10)

    assert waiting is True
    assert outcome["first"] == "draft v2"
    assert outcome["second"].startswith(f"{protocol} already has {protocol} v2 (draft) (authored by Test User")
    assert list(ProtocolVersion.objects.filter(protocol=protocol).values_list("number", "status")) == [
        (2, VersionStatus.DRAFT),
        (1, VersionStatus.PUBLISHED),
    ]
