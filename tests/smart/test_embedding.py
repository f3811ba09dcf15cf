"""smart.middleware: SMART sessions get SameSite=None; Secure; Partitioned cookies and the EHR as their only
frame ancestor; every other response keeps Django's Lax cookies, frame-ancestors 'none' and X-Frame-Options."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client
from django.utils.csp import CSP, build_policy

from tests.factories import UserFactory
from tests.smart_support import authorize, ehr_context, path_and_query, registration

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def _attributes(cookie) -> set[str]:
    """The attributes a Set-Cookie header carries, without the value and the dates."""
    return {
        part.split("=")[0] if part.split("=")[0] in ("expires", "Max-Age") else part
        for part in cookie.OutputString().split("; ")[1:]
    }


def _smart_client(smart_ehr) -> tuple[Client, object]:
    client = Client()
    launch = smart_ehr.launch_create(ehr_context())
    started = client.get("/smart/launch", {"iss": smart_ehr.fhir_base, "launch": launch})
    done = client.get(path_and_query(authorize(started["Location"])))
    return client, done


def _policy(frame_ancestors: list[str]) -> str:
    return build_policy({**settings.SECURE_CSP, "frame-ancestors": frame_ancestors})


def test_smart_session_cookie_is_samesite_none_secure_and_partitioned(smart_ehr):
    client, done = _smart_client(smart_ehr)
    page = client.get("/")

    assert _attributes(done.cookies["sessionid"]) == {
        "HttpOnly",
        "Max-Age",
        "Path=/",
        "SameSite=None",
        "Secure",
        "expires",
        "Partitioned",
    }
    assert _attributes(page.cookies["csrftoken"]) == {
        "Max-Age",
        "Path=/",
        "SameSite=None",
        "Secure",
        "expires",
        "Partitioned",
    }
    assert done.cookies["sessionid"].OutputString().endswith("; Partitioned")


def test_smart_launch_sets_the_partitioned_cookie_before_leaving_for_the_ehr(smart_ehr):
    launch = smart_ehr.launch_create(ehr_context())

    started = Client().get("/smart/launch", {"iss": smart_ehr.fhir_base, "launch": launch})

    assert started.status_code == 302
    assert {"SameSite=None", "Secure", "Partitioned"} <= _attributes(started.cookies["sessionid"])


def test_ordinary_session_cookies_stay_lax_and_unpartitioned(db):
    UserFactory(username="clin-lax", role="clinician")
    client = Client()

    logged_in = client.post("/accounts/login/", {"username": "clin-lax", "password": "a-long-test-password"})
    page = client.get("/")

    assert logged_in.status_code == 302
    # Secure because these tests run with production settings (DEBUG false); Lax and unpartitioned as Django makes them.
    assert _attributes(logged_in.cookies["sessionid"]) == {
        "HttpOnly",
        "Max-Age",
        "Path=/",
        "SameSite=Lax",
        "Secure",
        "expires",
    }
    assert _attributes(logged_in.cookies["csrftoken"]) == {"Max-Age", "Path=/", "SameSite=Lax", "Secure", "expires"}
    assert page.headers["Content-Security-Policy"] == _policy([CSP.NONE])
    assert page.headers["X-Frame-Options"] == "DENY"


def test_smart_session_pages_may_be_framed_by_the_registered_ehr_only(smart_ehr):
    client, _ = _smart_client(smart_ehr)

    page = client.get("/")
    protocols = client.get("/protocols/")

    assert page.status_code == 200
    assert page.headers["Content-Security-Policy"] == _policy([smart_ehr.origin])
    assert protocols.headers["Content-Security-Policy"] == _policy([smart_ehr.origin])
    assert ("X-Frame-Options" in page.headers, "X-Frame-Options" in protocols.headers) == (False, False)


def test_smart_session_of_an_ehr_without_origins_is_never_framed(smart_ehr, settings):
    settings.CDS_HOOKS_ISSUERS = registration(smart_ehr, origins=False)
    client, done = _smart_client(smart_ehr)

    page = client.get("/")

    assert page.headers["Content-Security-Policy"] == _policy([CSP.NONE])
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "Partitioned" in _attributes(done.cookies["sessionid"])


def test_smart_launch_refusal_may_be_framed_by_registered_ehrs(smart_ehr):
    response = Client().get("/smart/callback", {"state": "unknown", "code": "x"})

    assert response.status_code == 400
    assert response.headers["Content-Security-Policy"] == _policy([smart_ehr.origin])


def test_smart_logout_deletes_the_partitioned_cookie_with_a_partitioned_deletion(smart_ehr):
    client, _ = _smart_client(smart_ehr)

    out = client.post("/accounts/logout/")

    deletion = out.cookies["sessionid"]
    assert (deletion.value, deletion["max-age"]) == ("", 0)
    assert {"SameSite=None", "Secure", "Partitioned"} <= _attributes(deletion)
