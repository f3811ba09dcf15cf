"""Error pages in real Chromium on a 360 x 740 phone, DEBUG off: no axe violation at any impact, a focus
ring on everything reachable by Tab, nothing wider than the screen; the expired form sent again by its
button; the log-in page after a session ended mid-form."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.sessions.models import Session
from playwright.sync_api import expect

from tests.e2e import wizard
from tests.e2e.bedside_checks import ALL_IMPACTS, focus_indicator_problems, overflowing
from tests.e2e.conftest import axe_violations, e2e_db, login
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, e2e_db]

PHONE = {"width": 360, "height": 740}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _checked(page) -> None:
    assert axe_violations(page, impacts=ALL_IMPACTS) == [], page.url
    assert focus_indicator_problems(page)[1] == [], page.url
    assert overflowing(page) == [], page.url


def test_404_and_403_pages_on_a_phone(page, live_server):
    # Chromium reports each error status as a console error: this test watches nothing else.
    page.set_viewport_size(PHONE)
    UserFactory(username="lost", role="clinician")
    login(page, live_server, username="lost")
    for path, heading in (
        (f"/assessments/{uuid.uuid4()}/", "Page not found"),
        ("/protocols/nih/versions/1/preview/", "This page is not open to your account"),
    ):
        page.goto(f"{live_server.url}{path}")
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        _checked(page)


def test_expired_form_is_sent_again_with_nothing_lost(page, live_server):
    page.set_viewport_size(PHONE)
    UserFactory(username="expired", role="clinician")
    login(page, live_server, username="expired")
    wizard.answer_patient_step(
        page,
        {
            "weight_kg": "20",
            "age_years": "8",
            "prior_tocilizumab_doses": 1,
            "prior_steroids": True,
            "institution": "cnh",
        },
    )
    # Another tab logged in again meanwhile: the browser holds a new token, this page the old one.
    page.context.add_cookies([{"name": "csrftoken", "value": "y" * 32, "url": live_server.url}])
    wizard.submit(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("The form expired")
    _checked(page)
    wizard.submit(page, "Send it again")
    assert page.url == f"{live_server.url}/wizard/toxicities/"
    wizard.submit(page, "1 Patient and treatment (done)")
    expect(page.get_by_label("Weight (kg)")).to_have_value("20")


def test_log_in_page_says_the_session_ended_mid_form(watched_page, live_server):
    page = watched_page
    page.set_viewport_size(PHONE)
    UserFactory(username="ended", role="clinician")
    login(page, live_server, username="ended")
    page.get_by_label("Weight (kg)").fill("20")
    Session.objects.all().delete()  # the session expired while the page was open
    wizard.submit(page)
    expect(page.locator("[role=status]")).to_have_text(
        "Your session ended, so you were logged out. Log in again to go back to the page you were on. "
        "What that page had just sent was not saved, nor were answers in progress: enter them again."
    )
    _checked(page)
    page.get_by_label("Username").fill("ended")
    page.get_by_label("Password").fill("a-long-test-password")
    wizard.submit(page, "Log in")
    assert page.url == f"{live_server.url}/"
