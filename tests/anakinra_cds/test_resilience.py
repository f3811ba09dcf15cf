"""Hardening in-process: the probes, 413 for oversized bodies, and no caching of patient answers.
(The database outage itself is in tests/anakinra_cds/test_database_outage.py, against a real server.)"""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import RequestDataTooBig
from django.test import Client, RequestFactory

from anakinra_cds.middleware import ServiceErrorsMiddleware
from assessments.models import Assessment
from tests.api.test_endpoints import URL, VALID
from tests.ehr_support import ORDER_SELECT_PATH, body_json, full_prefetch, hook_body

pytestmark = pytest.mark.integration

NEVER_CACHED = "max-age=0, no-cache, no-store, must-revalidate, private"
TOO_LARGE = {"errors": {"body": ["The body is over the size limit of 2.5 MB."]}}


def oversized_json() -> str:
    """A valid request padded past Django's 2.5 MB limit (DATA_UPLOAD_MAX_MEMORY_SIZE) with one long string."""
    body = json.dumps({**VALID, "note": "x" * (2_621_440 + 1)})
    assert len(body) > 2_621_440
    return body


# --- Probes ---------------------------------------------------------------------------------------


def test_healthz_answers_without_touching_the_database(db, client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert (response.status_code, response["Content-Type"], response.json()) == (
        200,
        "application/json",
        {"status": "ok"},
    )


def test_readyz_answers_ready_when_the_database_answers(db, client):
    response = client.get("/readyz")
    assert (response.status_code, response.json(), response["Cache-Control"]) == (
        200,
        {"status": "ready"},
        NEVER_CACHED,
    )


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_need_no_allowed_host_and_no_https(db, settings, path):
    # A container check or load balancer calls by address over plain HTTP: no 400 for the Host, no redirect.
    settings.ALLOWED_HOSTS = ["cds.example.org"]
    settings.SECURE_SSL_REDIRECT = True
    response = Client(HTTP_HOST="10.1.2.3:8000").get(path)
    assert response.status_code == 200


def test_probes_answer_head_and_refuse_writes(db, client):
    statuses = [
        getattr(client, method)(path).status_code for method in ("head", "post") for path in ("/healthz", "/readyz")
    ]
    assert statuses == [200, 200, 405, 405]


# --- 413 --------------------------------------------------------------------------------------------


def test_recommendations_oversized_body_is_a_json_413(token_client):
    # Reproduction: a 2.5 MB body got Django's HTML 400.
    response = token_client.post(URL, oversized_json(), content_type="application/json")
    assert (response.status_code, response["Content-Type"], response.json()) == (413, "application/json", TOO_LARGE)
    assert Assessment.objects.count() == 0


def test_cds_hooks_oversized_body_is_a_json_413(db):
    body = body_json({**hook_body(prefetch=full_prefetch()), "padding": "x" * 2_700_000})
    response = Client().post(ORDER_SELECT_PATH, body, content_type="application/json")
    assert (response.status_code, response["Content-Type"], response.json()) == (413, "application/json", TOO_LARGE)


def test_bedside_oversized_form_is_a_short_413_page(clinician_client):
    response = clinician_client.post("/", {"weight_kg": "20", "padding": "x" * 2_700_000})
    assert (response.status_code, response["Content-Type"]) == (413, "text/html; charset=utf-8")
    assert "The body is over the size limit of 2.5 MB. Nothing was saved." in response.content.decode()


def test_body_found_too_large_while_read_is_a_413_too(rf: RequestFactory):
    # Without a Content-Length (a streamed body), Django finds out while reading: the same answer.
    request = rf.post(URL, "{}", content_type="application/json")
    response = ServiceErrorsMiddleware(lambda r: None).process_exception(request, RequestDataTooBig())
    assert (response.status_code, json.loads(response.content)) == (413, TOO_LARGE)


# --- Caching ----------------------------------------------------------------------------------------


def test_api_answers_are_never_cached(token_client):
    created = token_client.post(URL, json.dumps(VALID), content_type="application/json")
    assessment_id = created.json()["assessment_id"]
    responses = [
        created,
        token_client.get(f"/api/v1/assessments/{assessment_id}"),
        token_client.get(f"/api/v1/assessments/{assessment_id}/fhir"),
        token_client.post(URL, "{}", content_type="application/json"),  # errors echo nothing, but alike
    ]
    assert [(r.status_code, r["Cache-Control"]) for r in responses] == [
        (200, NEVER_CACHED),
        (200, NEVER_CACHED),
        (200, NEVER_CACHED),
        (400, NEVER_CACHED),
    ]


def test_bedside_assessment_pages_are_never_cached(clinician_client, token_client):
    assessment_id = token_client.post(URL, json.dumps(VALID), content_type="application/json").json()["assessment_id"]
    paths = ["/", "/wizard/treatment/", f"/assessments/{assessment_id}/", f"/assessments/{assessment_id}/print/"]
    answers = [clinician_client.get(path) for path in paths]
    assert [(r.status_code, r["Cache-Control"]) for r in answers] == [
        (200, NEVER_CACHED),
        (302, NEVER_CACHED),  # the wizard's later step before the first is answered
        (200, NEVER_CACHED),
        (200, NEVER_CACHED),
    ]
