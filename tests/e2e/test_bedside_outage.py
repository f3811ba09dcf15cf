"""The bedside with its database away, in real Chromium against the app under gunicorn (as
tests/anakinra_cds/test_database_outage.py runs it): the 503 page carries back everything the form sent, and once the
database is back its "Try again" button sends it again, so nothing typed is lost."""

from __future__ import annotations

import pytest
from django.conf import global_settings
from playwright.sync_api import expect

from assessments.models import Assessment
from tests.anakinra_cds.test_database_outage import TcpForwarder, gunicorn
from tests.e2e import wizard
from tests.e2e.bedside_checks import ALL_IMPACTS, focus_indicator_problems
from tests.e2e.conftest import axe_violations, e2e_db
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.e2e, e2e_db]

PHONE = {"width": 360, "height": 740}
# cnh, 20 kg, CRS grade 3: 2 mg/kg/dose x 20 kg = 40 mg IV every 6 hours (caps 100 mg/dose, 400 mg/day).
PATIENT = {
    "weight_kg": "20",
    "age_years": "8",
    "prior_tocilizumab_doses": 1,
    "prior_steroids": True,
    "institution": "cnh",
    "fever": True,
    "hypotension": True,
    "toxicities": [{"type": "CRS", "grade": 3}],
}
CNH_ORDER = "anakinra 40 mg IV every 6 hours (2 mg/kg/dose; max 100 mg/dose, 400 mg/day)"


@pytest.fixture
def app_behind_a_switch(tmp_path, settings, monkeypatch):
    """The app under gunicorn (DEBUG off) reaching the test database through a forwarder that can drop
    every new connection (the database away) and forward again (back). One connection per request."""
    database = settings.DATABASES["default"]
    forwarder = TcpForwarder(int(database["PORT"] or 5432))
    forwarder.on.set()
    monkeypatch.setenv("DATABASE_CONN_MAX_AGE", "0")
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "false")
    monkeypatch.setenv("CSRF_COOKIE_SECURE", "false")
    url = f"postgres://{database['USER']}@127.0.0.1:{forwarder.port}/{database['NAME']}"
    try:
        with gunicorn(tmp_path, database_url=url, issuers={}) as server:
            yield server, forwarder
    finally:
        forwarder.close()


def test_wizard_sent_while_the_database_is_away_is_sent_again_by_try_again(page, app_behind_a_switch, settings):
    errors: list[str] = []  # as the watched_page fixture collects them, but the 503 itself is expected
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => "
        "console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));"
    )
    page.set_viewport_size(PHONE)
    server, database = app_behind_a_switch
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS  # the hash gunicorn's settings can check
    UserFactory(username="outage", role="clinician")
    page.goto(f"{server.url}/accounts/login/")
    page.get_by_label("Username").fill("outage")
    page.get_by_label("Password").fill(PASSWORD)
    wizard.submit(page, "Log in")
    wizard.answer_patient_step(page, PATIENT)
    wizard.submit(page)
    wizard.answer_toxicities_step(page, PATIENT)

    database.on.clear()
    wizard.submit(page, "Get recommendations")
    expect(page.get_by_role("heading", level=1)).to_have_text("Service unavailable")
    expect(page.locator("main")).to_contain_text("The database cannot be reached. Nothing was saved.")
    carried = page.locator("form input[type=hidden]")
    sent = dict(
        zip(carried.evaluate_all("els => els.map(e => e.name)"), carried.evaluate_all("els => els.map(e => e.value)"))
    )
    assert {name: sent[name] for name in ("action", "fever", "hypotension", "crs_grade", "icans_grade")} == {
        "action": "next",
        "fever": "true",
        "hypotension": "true",
        "crs_grade": "3",
        "icans_grade": "absent",
    }
    assert axe_violations(page, impacts=ALL_IMPACTS) == []
    assert focus_indicator_problems(page)[1] == []
    assert Assessment.objects.count() == 0

    database.on.set()
    wizard.submit(page, "Try again")
    assessment = Assessment.objects.get()
    assert page.url == f"{server.url}/assessments/{assessment.id}/"
    assert wizard.first_step_shown(page, "cnh")["order"] == CNH_ORDER
    assert errors == ["Failed to load resource: the server responded with a status of 503 (Service Unavailable)"]
