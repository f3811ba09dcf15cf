"""The 503 page people get while the database is away carries back what their form sent, under a "Try again"
button (the app under gunicorn against a closed port, as tests/anakinra_cds/test_database_outage.py runs it)."""

from __future__ import annotations

import re
from html import unescape

import pytest
import requests

from anakinra_cds.resubmit import carried_post, same_site_path
from tests.anakinra_cds.test_database_outage import CSRF, SESSION_COOKIE, free_port, gunicorn

pytestmark = pytest.mark.integration


def _hidden_fields(html: str) -> list[tuple[str, str]]:
    return [
        (unescape(name), unescape(value))
        for name, value in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', html)
    ]


def test_service_unavailable_page_carries_back_what_was_sent_and_never_a_password(tmp_path):
    closed = f"postgres://anakinra@127.0.0.1:{free_port()}/anakinra"
    cookies = {**SESSION_COOKIE, "csrftoken": CSRF}
    sent = [
        ("csrfmiddlewaretoken", CSRF),
        ("weight_kg", "44 lb"),
        ("age_years", '8 "and a half" <b>'),
        ("car_target", "CD19"),
        ("car_target", "CD22"),
        ("action", "next"),
    ]
    with gunicorn(tmp_path, database_url=closed, issuers={}) as server:
        wizard = requests.post(f"{server.url}/wizard/toxicities/?x=1", data=sent, cookies=cookies, timeout=10)
        login = requests.post(
            f"{server.url}/accounts/login/?next=/",
            data={"csrfmiddlewaretoken": CSRF, "username": "nurse", "password": "secret-typed"},
            cookies=cookies,
            timeout=10,
        )
        page = requests.get(f"{server.url}/wizard/toxicities/?from=ehr", cookies=SESSION_COOKIE, timeout=10)

    assert wizard.status_code == 503
    assert '<form method="post" action="/wizard/toxicities/?x=1" class="mb-3">' in wizard.text
    assert _hidden_fields(wizard.text) == sent
    assert '<button type="submit" class="btn btn-primary">Try again</button>' in wizard.text
    assert "What you entered is kept in this page." in wizard.text
    assert "Your password is not kept" not in wizard.text

    assert login.status_code == 503
    assert _hidden_fields(login.text) == [("csrfmiddlewaretoken", CSRF), ("username", "nurse")]
    assert "secret-typed" not in login.text
    assert "Your password is not kept: type it again." in login.text

    assert page.status_code == 503
    assert _hidden_fields(page.text) == []
    assert '<a class="btn btn-primary" href="/wizard/toxicities/?from=ehr">Try again</a>' in page.text


@pytest.mark.unit
@pytest.mark.parametrize(
    ("path", "kept"),
    [
        ("/wizard/", "/wizard/?a=1"),
        ("//elsewhere.example/x", "/elsewhere.example/x?a=1"),
        ("/\\evil/", "/%5Cevil/?a=1"),
    ],
)
def test_carried_form_is_sent_back_to_this_site_only(rf, path, kept):
    request = rf.post("/wizard/?a=1", {"weight_kg": "20"})
    request.path = path  # as a server may pass it on (the test client would read "//host" as a host)
    assert (same_site_path(request), carried_post(request).action) == (kept, kept)
