"""SMART App Launch in real Chromium, against the test EHR (tests/smart_ehr.py: an authlib authorization
server and a FHIR endpoint on 127.0.0.1) and the live app (on localhost: another site).

The EHR launch end to end: launch URL -> authorize (PKCE S256) -> token -> the wizard pre-filled from the
EHR -> grades entered -> result -> print. Once in a window of its own, and once inside the EHR's chart
page, in a cross-site iframe, with Chromium's third-party cookies blocked
(`--test-third-party-cookie-phaseout`): there the session survives only because its cookies are
`Partitioned` (smart.middleware). The control test removes that one attribute and the launch breaks.

`Secure` cookies over plain http: Chromium treats http://localhost as a secure context and accepts
Secure (and Partitioned) cookies from it, which is what a developer's machine has too; production is
https. No certificate is faked.
"""

from __future__ import annotations

import re
from http.cookies import Morsel

import pytest
from django.contrib.sessions.backends.db import SessionStore

from audit.models import AuditEvent
from smart.session import PATIENT_KEY, SMART_KEY
from tests.e2e import wizard
from tests.e2e.bedside_checks import ALL_IMPACTS
from tests.e2e.conftest import CHROMIUM, axe_violations, e2e_db, screenshot
from tests.ehr_support import ISSUER
from tests.smart_ehr import start_ehr
from tests.smart_support import CLIENT_ID, PATIENT_ID, ehr_context, patient_record, registration

pytestmark = [pytest.mark.e2e, e2e_db]

THIRD_PARTY_COOKIES_BLOCKED = "--test-third-party-cookie-phaseout"
# 20 kg, 8 years, CRS grade 3 after one tocilizumab dose and steroids. CNH: 2 mg/kg/dose x 20 kg = 40 mg IV
# every 6 hours; 4 doses a day = 160 mg/day (caps 100 mg/dose, 400 mg/day).
CNH_ORDER = "anakinra 40 mg IV every 6 hours (2 mg/kg/dose; max 100 mg/dose, 400 mg/day)"
CLINICAL_ANSWERS = {
    "car_target": "CD19",
    "fever": True,
    "hypotension": True,
    "prior_tocilizumab_doses": 1,
    "prior_steroids": True,
    "toxicities": [{"type": "CRS", "grade": 3}],
    "institution": "cnh",
}


@pytest.fixture
def test_ehr(live_server, settings):
    ehr, httpd = start_ehr()
    ehr.patient_add(patient_record(age=8, allergies=("penicillin",)))
    ehr.client_add(CLIENT_ID, f"{live_server.url}/smart/callback")
    ehr.app_launch_url = f"{live_server.url}/smart/launch"
    settings.SITE_URL = ""
    settings.CDS_HOOKS_ISSUERS = registration(ehr, user_mapping="create")
    yield ehr
    httpd.shutdown()
    httpd.server_close()


# Chromium never lets a cross-origin frame take focus by itself, and says so on the console: the result page's
# `autofocus` (which moves a screen reader to the answer in a window of its own) is refused inside the EHR's frame.
# That message, exactly, is the browser's policy rather than an error of the app's; anything else fails the test.
CROSS_ORIGIN_AUTOFOCUS = re.compile(r"^Blocked autofocusing on a <\w+> element in a cross-origin subframe\.$")


def _watch(page) -> list[str]:
    """Console errors, page errors and CSP violations of the page and every frame in it."""
    errors: list[str] = []

    def console(msg) -> None:
        if msg.type == "error" and not CROSS_ORIGIN_AUTOFOCUS.match(msg.text):
            errors.append(f"console {msg.type}: {msg.text}")

    page.on("console", console)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => "
        "console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));"
    )
    return errors


@pytest.fixture
def blocking_browser(playwright, browser_type_launch_args):
    """Chromium with third-party cookies blocked, as Chrome's phase-out does."""
    browser = playwright.chromium.launch(
        **{**browser_type_launch_args, "args": [*browser_type_launch_args["args"], THIRD_PARTY_COOKIES_BLOCKED]}
    )
    assert browser_type_launch_args["executable_path"] == CHROMIUM
    yield browser
    browser.close()


def _prefilled(target) -> dict[str, str]:
    return {
        "weight": target.get_by_label("Weight (kg)").input_value(),
        "age": target.get_by_label("Age (years)").input_value(),
        "allergy": target.locator("input[name=ecoli_protein_hypersensitivity]:checked").get_attribute("value"),
        "weight_note": target.locator(".ehr-reading[data-field=weight_kg] .ehr-reading-note").inner_text(),
        "allergy_note": target.locator(
            ".ehr-reading[data-field=ecoli_protein_hypersensitivity] .ehr-reading-note"
        ).inner_text(),
    }


def _walk_to_print(target) -> dict[str, str]:
    """Grades and the rest entered by the clinician, then the result and its printable summary."""
    wizard.walk(target, CLINICAL_ANSWERS, fill_patient_step=False)
    shown = wizard.first_step_shown(target, "cnh")
    with target.expect_navigation():
        target.get_by_role("link", name="Printable summary").click()
    printed = target.locator(".dose-table td[data-label='Order']").first.inner_text()
    return {**shown, "printed": printed}


def _assert_ehr_saw_a_smart_launch(ehr, live_server) -> None:
    (authorize,) = ehr.seen_at("/auth/authorize")
    (token,) = ehr.seen_at("/auth/token")
    assert {
        k: authorize["query"][k] for k in ("response_type", "client_id", "redirect_uri", "aud", "code_challenge_method")
    } == {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": f"{live_server.url}/smart/callback",
        "aud": ehr.fhir_base,
        "code_challenge_method": "S256",
    }
    assert token["form"]["grant_type"] == "authorization_code"
    assert len(token["form"]["code_verifier"]) == 43
    # Every FHIR read carried the launch's token.
    reads = [r for r in ehr.seen if r["path"].startswith("/fhir/") and ".well-known" not in r["path"]]
    assert sorted(r["path"] for r in reads) == [
        "/fhir/AllergyIntolerance",
        "/fhir/Observation",
        f"/fhir/Patient/{PATIENT_ID}",
    ]
    assert {r["authorization"] for r in reads} == {f"Bearer {next(iter(ehr.tokens))}"}


def test_smart_ehr_launch_in_a_window_prefills_the_wizard_through_to_the_printout(
    watched_page, live_server, test_ehr, request
):
    page = watched_page
    launch = test_ehr.launch_create(ehr_context())

    with page.expect_navigation(url=f"{live_server.url}/"):
        page.goto(test_ehr.app_url(launch))

    prefilled = _prefilled(page)
    assert prefilled["weight"] == "20"
    assert prefilled["age"] == "8"
    assert prefilled["allergy"] == "false"
    assert prefilled["weight_note"].startswith("From the EHR, dated ")
    assert prefilled["weight_note"].endswith(" (1 day ago): the latest body weight.")
    assert prefilled["allergy_note"].endswith(
        "no anakinra or E. coli allergy recorded (other current allergies: “penicillin”)."
    )
    assert page.locator(".ehr-patient").inner_text().startswith("Robin Okafor, born ")
    screenshot(page, request, "smart-prefilled")
    assert axe_violations(page, impacts=ALL_IMPACTS) == []

    shown = _walk_to_print(page)
    assert shown == {"order": CNH_ORDER, "per_dose": "40 mg", "printed": CNH_ORDER}
    assert page.get_by_role("button", name="Print").is_visible()
    assert axe_violations(page, impacts=ALL_IMPACTS) == []
    screenshot(page, request, "smart-print")
    _assert_ehr_saw_a_smart_launch(test_ehr, live_server)
    (event,) = AuditEvent.objects.filter(action="smart.launch")
    assert PATIENT_ID not in str(event.details)
    # The result is stored: the patient id and the token left the session with it.
    (cookie,) = [c for c in page.context.cookies(live_server.url) if c["name"] == "sessionid"]
    session = SessionStore(session_key=cookie["value"]).load()
    assert (PATIENT_KEY in session, session[SMART_KEY]) == (False, {"registration": ISSUER})


def test_smart_ehr_launch_inside_the_ehr_frame_with_third_party_cookies_blocked(
    blocking_browser, live_server, test_ehr, request
):
    page = blocking_browser.new_page(viewport={"width": 1280, "height": 1000})
    errors = _watch(page)
    launch = test_ehr.launch_create(ehr_context())

    page.goto(test_ehr.chart_url(launch))
    frame = page.frame_locator("#smart-app")
    frame.get_by_label("Weight (kg)").wait_for()
    app = next(f for f in page.frames if f.url.startswith(live_server.url))

    # The app is on another site than the EHR's chart: a third party in this frame.
    assert page.url.startswith("http://127.0.0.1:")
    assert app.url == f"{live_server.url}/"
    prefilled = _prefilled(app)
    assert (prefilled["weight"], prefilled["age"], prefilled["allergy"]) == ("20", "8", "false")
    screenshot(page, request, "smart-frame-prefilled")

    shown = _walk_to_print(app)
    assert shown == {"order": CNH_ORDER, "per_dose": "40 mg", "printed": CNH_ORDER}
    screenshot(page, request, "smart-frame-print")
    cookies = {c["name"]: c for c in page.context.cookies(live_server.url)}
    assert {name: (c["sameSite"], c["secure"], c.get("partitionKey") is not None) for name, c in cookies.items()} == {
        "sessionid": ("None", True, True),
        "csrftoken": ("None", True, True),
    }
    assert errors == [], "\n".join(errors)
    _assert_ehr_saw_a_smart_launch(test_ehr, live_server)


def test_smart_ehr_launch_inside_the_frame_fails_without_partitioned_cookies(
    blocking_browser, live_server, test_ehr, monkeypatch
):
    # The control: the same launch, the same browser, cookies still SameSite=None; Secure, but without the
    # Partitioned attribute. Chromium drops them in the third-party frame, so the callback finds no session.
    monkeypatch.setattr("smart.middleware.PartitionedMorsel.OutputString", Morsel.OutputString)
    page = blocking_browser.new_page()
    launch = test_ehr.launch_create(ehr_context())

    page.goto(test_ehr.chart_url(launch))
    frame = page.frame_locator("#smart-app")
    heading = frame.get_by_role("heading", name="The launch from the EHR was not completed")
    heading.wait_for()

    assert frame.get_by_role("alert").inner_text().startswith("This sign-in was not started in this browser session")
    assert page.context.cookies(live_server.url) == []
    assert AuditEvent.objects.filter(action="smart.launch").count() == 0
