"""Error pages people meet, with DEBUG off: 400, 403, 404 and 500 in the house template, the CSRF failure
page ("the form expired", what it sent offered back when that is safe), and the log-in page saying that a
session ended."""

from __future__ import annotations

import re
import uuid
from html import unescape

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import path

from anakinra_cds import jsonutil
from anakinra_cds.csrf import csrf_failure
from anakinra_cds.urls import urlpatterns as site_urlpatterns

pytestmark = pytest.mark.integration


def _boom(request):
    raise RuntimeError("a bug")


# A URLconf with one view that fails, for the 500 page (ROOT_URLCONF points here in that test).
urlpatterns = [path("boom/", _boom), *site_urlpatterns]


@pytest.fixture(autouse=True)
def _debug_off(settings):
    settings.DEBUG = False


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()


def _title(html: str) -> str:
    return re.search(r"<title>(.*?)</title>", html, re.S).group(1)


def _house_page(response) -> str:
    html = response.content.decode()
    assert ('name="viewport" content="width=device-width, initial-scale=1"' in html, "style=" in html) == (True, False)
    assert re.findall(r"<script", html) == []
    assert '<a class="site-brand" href="/">Anakinra CDS</a>' in html
    return html


def _hidden(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', html)


def test_404_page_is_the_house_page_with_ways_on(clinician_client):
    response = clinician_client.get(f"/assessments/{uuid.uuid4()}/")
    html = _house_page(response)
    assert (response.status_code, _title(html)) == (404, "Error: page not found - Anakinra CDS")
    assert re.findall(r'<li><a href="([^"]*)">', html) == ["/", "/protocols/", "/evidence/"]


def test_403_page_says_the_account_lacks_the_role(clinician_client):
    response = clinician_client.get("/protocols/nih/versions/1/preview/")
    html = _house_page(response)
    assert (response.status_code, _title(html)) == (403, "Error: not allowed - Anakinra CDS")
    assert "Your account's role does not allow this page or action. Nothing was changed." in _text(html)


def test_400_page_for_a_request_the_app_cannot_read(client, db):
    response = client.get("/", HTTP_HOST="not-allowed.example")
    html = _house_page(response)
    assert (response.status_code, _title(html)) == (400, "Error: the request could not be read - Anakinra CDS")
    assert "Nothing was saved." in _text(html)


def test_500_page_says_what_may_not_have_been_saved(settings, db):
    settings.ROOT_URLCONF = __name__
    response = Client(raise_request_exception=False).get("/boom/")
    html = _house_page(response)
    assert (response.status_code, _title(html)) == (500, "Error: something went wrong - Anakinra CDS")
    assert "What you last sent may not have been saved." in _text(html)


# --- The form expired (CSRF) -----------------------------------------------------------------------

TYPED = {"weight_kg": "20", "age_years": "8", "prior_tocilizumab_doses": "1", "prior_steroids": "true"}
ANSWERS = {**TYPED, "safety_screen": "none", "institution": "cnh", "action": "next"}


@pytest.fixture
def strict_client(clinician) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(clinician)
    client.get("/")  # the page sets the CSRF cookie
    return client


def _stale_post(client: Client, **headers):
    """The first step sent with a token from before (another tab logged in again since)."""
    return client.post("/", {**ANSWERS, "csrfmiddlewaretoken": "x" * 32}, headers=headers)


def test_csrf_failure_from_this_site_offers_the_answers_back_with_a_fresh_token(strict_client):
    response = _stale_post(strict_client, Origin="http://testserver", Referer="http://testserver/")
    html = _house_page(response)
    assert (response.status_code, _title(html)) == (403, "Error: the form expired - Anakinra CDS")
    assert "This one had expired (for example, you logged in again in another tab). Nothing was saved." in _text(html)
    fresh = strict_client.cookies["csrftoken"].value
    hidden = _hidden(html)
    assert hidden[0][0] == "csrfmiddlewaretoken" and hidden[0][1] != "x" * 32
    assert hidden[1:] == list(ANSWERS.items())
    assert '<a href="http://testserver/">Go back to the page instead</a>' in html
    # "Send it again" sends the same fields with the token the page holds now: the step is saved.
    again = strict_client.post("/", dict(hidden), headers={"Origin": "http://testserver"})
    assert (again.status_code, again["Location"], fresh) == (302, "/wizard/toxicities/", fresh)


def test_csrf_failure_from_another_site_offers_nothing_back(strict_client):
    response = _stale_post(strict_client, Origin="http://elsewhere.example")
    html = response.content.decode()
    assert (response.status_code, _hidden(html), "Send it again" in html) == (403, [], False)
    assert '<a class="btn btn-primary" href="/">Go back</a>' in html


def test_csrf_failure_without_an_origin_offers_nothing_back(strict_client):
    response = _stale_post(strict_client)
    assert (response.status_code, _hidden(response.content.decode())) == (403, [])


def test_csrf_failure_when_logged_out_offers_the_log_in_page(db):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/?next=/wizard/toxicities/", {"username": "a", "password": "b"})
    html = response.content.decode()
    assert (response.status_code, _hidden(html)) == (403, [])
    assert '<a class="btn btn-primary" href="/accounts/login/?next=%2Fwizard%2Ftoxicities%2F">Log in</a>' in html


def test_csrf_failure_for_a_program_is_the_api_error_shape(rf):
    response = csrf_failure(rf.post("/api/v1/recommendations"), reason="CSRF cookie not set.")
    assert (response.status_code, response["Content-Type"], jsonutil.loads(response.content)) == (
        403,
        "application/json",
        {"errors": {"auth": ["CSRF check failed for a session-authenticated request."]}},
    )


# --- Session ended ---------------------------------------------------------------------------------

ENDED = "Your session ended, so you were logged out. Log in again to go back to the page you were on."
NOT_SAVED = "What that page had just sent was not saved, nor were answers in progress: enter them again."


def test_session_that_ended_mid_form_says_so_on_the_log_in_page(clinician_client):
    Session.objects.all().delete()  # the session expired (or was removed) while the step was open
    response = clinician_client.post("/wizard/toxicities/", {"crs_grade": "3"})
    assert response["Location"] == "/accounts/login/?next=/wizard/toxicities/&session_ended=form"
    page = _text(clinician_client.get(response["Location"]).content.decode())
    assert f"{ENDED} {NOT_SAVED}" in page


def test_session_that_ended_between_pages_says_so_without_the_form_sentence(clinician_client):
    Session.objects.all().delete()
    response = clinician_client.get("/protocols/")
    assert response["Location"] == "/accounts/login/?next=/protocols/&session_ended=1"
    page = _text(clinician_client.get(response["Location"]).content.decode())
    assert (ENDED in page, NOT_SAVED in page) == (True, False)


def test_first_visit_and_log_out_do_not_say_a_session_ended(client, clinician_client):
    assert client.get("/")["Location"] == "/accounts/login/?next=/"
    clinician_client.post("/accounts/logout/")
    assert clinician_client.get("/")["Location"] == "/accounts/login/?next=/"
    assert ENDED not in _text(client.get("/accounts/login/?next=/").content.decode())
