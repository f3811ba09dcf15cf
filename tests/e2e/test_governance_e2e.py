"""Two pharmacists change a protocol and approve it in the admin, and a clinician then gets the new dose:
an amount above what the letter reports confirmed with a reason, test patients edited inside the draft and
shown in the approval diff, the worklist and the notification mail, the bedside preview, the printed change
record and the password re-entered to sign. Every page is watched for console errors and CSP violations
(the admin must work with our CSP: 'self', nothing inline), and axe checks each governance page."""

from __future__ import annotations

import threading

import pytest
from django.core import mail
from django.db import connections, transaction
from playwright.sync_api import expect

from audit.models import AuditEvent
from protocols.models import Protocol, ProtocolVersion, VersionStatus
from protocols.services import GovernanceError, protocol_version_draft_create
from tests.e2e import wizard
from tests.e2e.conftest import ARTIFACTS, axe_violations, e2e_db, login, screenshot
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.e2e, e2e_db]

ALL_IMPACTS = ("minor", "moderate", "serious", "critical")
PROTOCOL = "Seattle Children's Hospital anakinra protocol"
# Seattle: 2 mg/kg/dose IV up to every 6 h, at most 100 mg/dose and 400 mg/day. The change walked here:
# 3 mg/kg/dose (12 mg/kg/day, above the 10 mg/kg/day the letter reports: confirmed with a reason), a fixed
# 6-hour interval and a 300 mg/day cap. At 30 kg: 3 x 30 = 90 mg x 4 = 360 mg/day, above 300 mg/day:
# 75 mg a dose (before: 2 x 30 = 60 mg, 240 mg/day).
ICANS_PATIENT = {
    "weight_kg": 30,
    "age_years": 10,
    "toxicities": [{"type": "ICANS", "grade": 3}],
    "prior_tocilizumab_doses": 0,
    "prior_steroids": True,
    "institution": "seattle",
}
CHANGED_PATIENTS = (
    "30 kg, CRS grade 3 after one tocilizumab dose and steroids: consider",
    "30 kg, ICANS grade 3 with steroids starting",
    "30 kg, CRS grade 3 after two tocilizumab doses and steroids: still consider",
)


def clinician_sees(page, live_server, patient: dict) -> dict[str, str]:
    """What a signed-in clinician is shown for `patient`: the wizard walked to the bedside result page."""
    page.goto(f"{live_server.url}/")
    wizard.walk(page, patient)
    return wizard.first_step_shown(page, patient["institution"])


def _switch_user(page, live_server, username: str) -> None:
    page.context.clear_cookies()
    login(page, live_server, username=username)


_BOXES = "elements => elements.map(e => e.getBoundingClientRect().toJSON())"


def _no_axe_violations(page, where: str) -> None:
    assert (where, axe_violations(page, impacts=ALL_IMPACTS)) == (where, [])


def _edit_test_patient(page, label: str) -> None:
    """From the draft's page: open the test patient, expect 75 mg a dose and 300 mg/day, save (back to the draft)."""
    page.get_by_role("link", name=f"Edit this test patient ({label})").click()
    page.get_by_label("expected per dose, low (mg)").fill("75")
    page.get_by_label("expected per dose, high (mg)").fill("75")
    page.get_by_label("expected per day, low (mg)").fill("300")
    page.get_by_label("expected per day, high (mg)").fill("300")
    page.get_by_label("Arithmetic").fill("3 mg/kg x 30 kg = 90 mg x 4 = 360 mg/day, above the 300 mg/day cap: 75 mg.")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("was changed successfully")).to_be_visible()


def test_two_pharmacists_change_and_approve_a_protocol(watched_page, live_server, request, settings):
    page = watched_page
    settings.SITE_URL = ""  # the notification's link is then built from the request's host
    author = UserFactory(username="e2e-author", role="pharmacist", email="author@example.org")
    reviewer = UserFactory(username="e2e-reviewer", role="pharmacist", email="reviewer@example.org")
    UserFactory(username="e2e-clin", role="clinician")
    _switch_user(page, live_server, "e2e-clin")
    assert clinician_sees(page, live_server, ICANS_PATIENT) == {
        "order": (
            "anakinra 60 mg IV no more often than every 6 hours, at most 4 doses a day "
            "(2 mg/kg/dose; max 100 mg/dose, 400 mg/day)"
        ),
        "per_dose": "60 mg",
    }

    # The author, named in the header with their role, starts a draft with a reason.
    _switch_user(page, live_server, "e2e-author")
    page.goto(f"{live_server.url}/admin/")
    expect(page.locator("#user-tools")).to_contain_text(f"Signed in as {author.get_full_name()} (pharmacist).")
    page.goto(f"{live_server.url}/admin/protocols/protocol/")
    page.get_by_role("link", name=PROTOCOL).click()
    page.get_by_role("link", name="Start a new draft").click()
    page.get_by_label("Why a new version (optional)").fill("Annual review of the Seattle protocol.")
    page.get_by_role("button", name="Start the draft").click()
    expect(page.get_by_text("Draft v2 started as a copy of the published version.")).to_be_visible()
    draft_url = page.url

    # A higher amount is refused at save until confirmed with a reason.
    page.get_by_role("spinbutton", name="amount, low (in the dose basis unit)").fill("3")
    page.get_by_role("spinbutton", name="amount, high (in the dose basis unit)").fill("3")
    page.get_by_role("checkbox", name="interval is the most frequent allowed").uncheck()
    page.get_by_role("spinbutton", name="maximum per day (mg)").fill("300")
    page.get_by_role("button", name="Save and continue editing").click()
    expect(
        page.get_by_text("3 mg/kg/dose every 6 h is 4 doses a day x 3 mg/kg = 12 mg/kg/day, above 10 mg/kg/day").first
    ).to_be_visible()
    page.get_by_role("textbox", name="Reason for an amount above what the letter reports").fill(
        "Seattle's rarely used higher dose, now the standard one (test change)."
    )
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.get_by_text("was changed successfully")).to_be_visible()
    review = page.locator(".gov-review")
    expect(review).to_contain_text("2 changed amounts above what the letter reports")
    expect(review).to_contain_text("Seattle's rarely used higher dose")
    expect(page.get_by_text("fails on this version").first).to_be_visible()
    _no_axe_violations(page, "draft")

    # The test patients belong to the draft: edited there, with the bedside's questions.
    for label in CHANGED_PATIENTS:
        _edit_test_patient(page, label)
        assert page.url == draft_url
    expect(page.get_by_text("fails on this version")).to_have_count(0)
    page.get_by_role("link", name=f"Edit this test patient ({CHANGED_PATIENTS[1]})").click()
    expect(page.get_by_label("Weight (kg)")).to_have_value("30")
    _no_axe_violations(page, "test patient form")
    page.goto(draft_url)

    # Submitting (the start reason carried in) notifies the other pharmacist by email.
    page.get_by_role("link", name="Submit for approval").click()
    expect(page.get_by_label("Change reason")).to_have_value("Annual review of the Seattle protocol.")
    _no_axe_violations(page, "submit")
    page.get_by_label("Change reason").fill("3 mg/kg/dose every 6 h, at most 300 mg/day (test change).")
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.get_by_text("submitted for approval.")).to_be_visible()
    assert [(m.to, m.subject) for m in mail.outbox] == [
        (["reviewer@example.org"], f"Awaiting your approval: {PROTOCOL} v2")
    ]
    # SITE_URL is unset here: the link is absolute, on the host the author submitted from.
    approve_link = mail.outbox[0].body.split("You may review it: ")[1].split()[0]

    # The reviewer finds it on the admin home's worklist.
    _switch_user(page, live_server, "e2e-reviewer")
    page.goto(f"{live_server.url}/admin/")
    worklist = page.locator(".gov-worklist")
    expect(worklist).to_contain_text("Awaiting your approval")
    _no_axe_violations(page, "admin home")
    worklist.get_by_role("link", name=f"{PROTOCOL} v2").click()
    assert page.url == approve_link
    assert approve_link.startswith(f"{live_server.url}/admin/protocols/protocolversion/")

    # The flag comes first; the edited test patients are in the diff.
    content = page.locator("#content-main")
    expect(content.locator("> .gov-review").first).to_contain_text("2 changed amounts above what the letter reports")
    diff = page.locator(".gov-diff")
    expect(diff).to_contain_text("Test patients")
    expect(diff.locator("caption", has_text=CHANGED_PATIENTS[1])).to_be_visible()
    expect(diff.get_by_role("row", name="expected per dose 60 mg 75 mg").first).to_be_visible()
    screenshot(page, request, "approve")
    _no_axe_violations(page, "approve")

    # The bedside preview: the draft beside the published version, and a test patient on both.
    page.get_by_role("link", name="as the bedside shows it, beside the published version").click()
    expect(page.locator("#published-heading")).to_have_text("Published: v1")
    page.get_by_label("Test patient", exact=True).select_option(label=CHANGED_PATIENTS[1])
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#center-seattle-published .orders")).to_contain_text("60 mg")
    expect(page.locator("#center-seattle .orders")).to_contain_text("75 mg")
    # The draft's card is labelled as the draft, never as the published letter.
    expect(page.locator("section[aria-labelledby='version-answer-heading'] .protocol-ref")).to_have_text(
        "Protocol version 2 (submitted for approval - not in use). Not approved yet: clinicians see the published "
        "version until a second pharmacist approves this one."
    )
    screenshot(page, request, "bedside-preview")
    _no_axe_violations(page, "bedside preview")
    page.go_back()
    page.go_back()

    # The printable change record.
    page.get_by_role("link", name="printable change record").click()
    record_url = page.url
    expect(page.get_by_role("heading", name=f"Protocol change record: {PROTOCOL}")).to_be_visible()
    _no_axe_violations(page, "change record")
    # This change (four test patients, three of them changed) prints on two pages at A4 and at Letter,
    # signatures included, with each signer's lines side by side at one height.
    page_counts = {}
    for paper in ("A4", "Letter"):
        pdf = page.pdf(path=str(ARTIFACTS / f"change-record-{paper}.pdf"), format=paper)
        page_counts[paper] = pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")
    assert page_counts == {"A4": 2, "Letter": 2}
    viewport = page.viewport_size
    page.emulate_media(media="print")
    page.set_viewport_size({"width": 703, "height": 1047})  # A4 less the page margins, at 96 dpi
    line_tops = [
        [round(box["y"]) for box in column.locator(".line").evaluate_all(_BOXES)]
        for column in page.locator(".sign-grid > div").all()
    ]
    assert len(line_tops) == 3 and line_tops[0] == line_tops[1] == line_tops[2], line_tops
    page.emulate_media(media="null")  # no emulation: page.pdf() prints with print CSS again
    page.set_viewport_size(viewport)
    page.go_back()

    # Approval is signed with the reviewer's own password.
    page.get_by_label("Approval note").fill("Checked the flag, the arithmetic and the test patients.")
    page.get_by_label("Your password (electronic signature)").fill("not-my-password")
    page.get_by_role("button", name="Approve and publish").click()
    expect(page.get_by_text("That is not your password.")).to_be_visible()
    page.get_by_label("Your password (electronic signature)").fill(PASSWORD)
    page.get_by_role("button", name="Approve and publish").click()
    expect(page.get_by_text("approved and published; it is live now.")).to_be_visible()
    facts = page.locator(".gov-facts")
    expect(facts).to_contain_text(f"Authored by{author.get_full_name()}")
    expect(facts).to_contain_text(f"Checked by{reviewer.get_full_name()}")
    # Signed and published, the record still prints on two pages (with the approver and the decisions since).
    page.goto(record_url)
    expect(page.locator("#content-main, main")).to_contain_text(f"Approving pharmacist: {reviewer.get_full_name()}")
    approved_counts = {}
    for paper in ("A4", "Letter"):
        pdf = page.pdf(path=str(ARTIFACTS / f"change-record-approved-{paper}.pdf"), format=paper)
        approved_counts[paper] = pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")
    assert approved_counts == {"A4": 2, "Letter": 2}
    signed = AuditEvent.objects.filter(subject_type="protocol_version", actor=reviewer).order_by("id")
    assert [(e.action, e.details.get("signature")) for e in signed] == [
        ("protocol_version.signature_refused", None),
        ("protocol_version.approved", "password re-entered at approval"),
        ("protocol_version.published", None),
    ]

    # The clinician now gets the new dose.
    _switch_user(page, live_server, "e2e-clin")
    assert clinician_sees(page, live_server, ICANS_PATIENT) == {
        "order": "anakinra 75 mg IV every 6 hours (3 mg/kg/dose; max 100 mg/dose, 300 mg/day)",
        "per_dose": "75 mg",
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
