"""A caller's expected mistakes get a clear answer in the caller's format and one log line, never a traceback:
chunked bodies (read within the size limit under gunicorn, 413 beyond it, 411 where the server cannot end
the input), a Host not allowed, a method not allowed on CDS Hooks, numbers out of range. The transport
cases run against a real gunicorn; the rest in-process."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import requests
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client, RequestFactory

from accounts.services import api_token_create
from anakinra_cds.middleware import ServiceErrorsMiddleware
from anakinra_cds.request_body import LENGTH_REQUIRED, read_chunked_body
from tests.anakinra_cds.test_database_outage import Server, gunicorn
from tests.anakinra_cds.test_resilience import TOO_LARGE
from tests.api.test_endpoints import URL, VALID
from tests.ehr_support import ORDER_SELECT_PATH

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

LIMIT = 2_621_440  # DATA_UPLOAD_MAX_MEMORY_SIZE, Django's default
WRONG_WEIGHT = {**VALID, "weight_kg": 0, "institution": "nowhere"}
WRONG_WEIGHT_ERRORS = {
    "errors": {"weight_kg": ["must be from 1 to 150 kg"], "institution": ["Unknown institution 'nowhere'."]}
}
BAD_HOST = {"errors": {"host": ["This service does not answer to that Host header."]}}


def chunks(body: bytes, size: int = 1000) -> Iterator[bytes]:
    """A generator body: requests sends it with Transfer-Encoding: chunked and no Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


# --- Against gunicorn ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api_key(django_db_setup, django_db_blocker) -> Iterator[str]:
    """A committed user and API token (the server is another process), removed afterwards."""
    with django_db_blocker.unblock():
        user = get_user_model().objects.create_user("chunked-body-check", password=None)
        yield api_token_create(user=user, name="chunked")[1]
        user.delete()


@pytest.fixture(scope="module")
def server(tmp_path_factory, django_db_setup, django_db_blocker, api_key) -> Iterator[Server]:
    with django_db_blocker.unblock():
        settings = connection.settings_dict
    host, port = settings["HOST"] or "127.0.0.1", settings["PORT"] or 5432
    url = f"postgres://{settings['USER']}@{host}:{port}/{settings['NAME']}"
    worker = ("--worker-class", "gthread", "--workers", "1", "--threads", "4")
    with gunicorn(tmp_path_factory.mktemp("gunicorn"), database_url=url, issuers={}, worker_args=worker) as running:
        yield running


def test_chunked_json_body_is_read_like_one_with_a_content_length(server, api_key):
    headers = {"Authorization": f"Token {api_key}", "Content-Type": "application/json"}
    body = json.dumps(WRONG_WEIGHT).encode()
    chunked = requests.post(f"{server.url}{URL}", data=chunks(body, 7), headers=headers, timeout=30)
    sized = requests.post(f"{server.url}{URL}", data=body, headers=headers, timeout=30)
    assert "Content-Length" not in chunked.request.headers
    assert chunked.request.headers["Transfer-Encoding"] == "chunked"
    for response in (chunked, sized):
        assert (response.status_code, response.headers["Content-Type"], response.json()) == (
            400,
            "application/json",
            WRONG_WEIGHT_ERRORS,
        )


def test_chunked_body_over_the_limit_is_a_json_413_with_one_log_line(server, api_key):
    headers = {"Authorization": f"Token {api_key}", "Content-Type": "application/json"}
    body = json.dumps({**VALID, "note": "x" * LIMIT}).encode()
    response = requests.post(f"{server.url}{URL}", data=chunks(body, 65536), headers=headers, timeout=30)
    assert (response.status_code, response.headers["Content-Type"], response.json()) == (
        413,
        "application/json",
        TOO_LARGE,
    )
    lines = [line for line in server.request_log_lines() if "Too Large" in line]
    assert [line.split(" django.request ")[1] for line in lines] == [
        f"Request Entity Too Large: POST {URL}: Content-Length {LIMIT + 1}"
    ]


def test_disallowed_host_is_json_on_api_and_cds_hooks_and_logged_as_one_line(server):
    evil = {"Host": "evil.example"}
    api = requests.get(f"{server.url}/api/v1/institutions", headers=evil, timeout=30)
    cds = requests.post(f"{server.url}{ORDER_SELECT_PATH}", data="{}", headers=evil, timeout=30)
    page = requests.get(f"{server.url}/", headers=evil, timeout=30)
    for response in (api, cds):
        assert (response.status_code, response.headers["Content-Type"], response.json()) == (
            400,
            "application/json",
            BAD_HOST,
        )
    assert (page.status_code, page.headers["Content-Type"]) == (400, "text/html; charset=utf-8")
    lines = [line.split(" django.request ")[1] for line in server.request_log_lines() if "(host)" in line]
    because = (
        "DisallowedHost: Invalid HTTP_HOST header: 'evil.example'. You may need to add 'evil.example' to ALLOWED_HOSTS."
    )
    assert lines == [
        f"Bad Request (host): GET /api/v1/institutions: {because}",
        f"Bad Request (host): POST {ORDER_SELECT_PATH}: {because}",
        f"Bad Request (host): GET /: {because}",
    ]


def test_malformed_json_is_logged_as_one_line_and_no_client_error_writes_a_traceback(server, api_key):
    headers = {"Authorization": f"Token {api_key}", "Content-Type": "application/json"}
    response = requests.post(f"{server.url}{URL}", data="{not json", headers=headers, timeout=30)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["body"]
    assert "WARNING django.request Bad Request: /api/v1/recommendations" in server.log.read_text()
    assert "Traceback" not in server.log.read_text()


# --- In-process -----------------------------------------------------------------------------------------------


def test_chunked_body_where_the_server_does_not_end_the_input_is_marked():
    environ = {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(b"5\r\nhello\r\n0\r\n\r\n")}
    read_chunked_body(environ)
    assert (environ[LENGTH_REQUIRED], "CONTENT_LENGTH" in environ) == (True, False)


def test_chunked_body_under_gunicorn_is_given_its_length():
    environ = {
        "HTTP_TRANSFER_ENCODING": "gzip, chunked",
        "wsgi.input_terminated": True,
        "wsgi.input": io.BytesIO(b"{}"),
    }
    read_chunked_body(environ)
    assert (environ["CONTENT_LENGTH"], environ["wsgi.input"].read(), LENGTH_REQUIRED in environ) == ("2", b"{}", False)


@pytest.mark.parametrize(
    ("path", "content_type", "expected"),
    [
        (
            URL,
            "application/json",
            b'{"errors":{"body":["A body sent in chunks cannot be read by this server: send it '
            b'with a Content-Length."]}}',
        ),
        ("/", "text/html; charset=utf-8", None),
    ],
)
def test_chunked_body_that_cannot_be_read_is_a_411(rf: RequestFactory, path, content_type, expected):
    request = rf.post(path, b"", content_type="application/json")
    request.META[LENGTH_REQUIRED] = True
    response = ServiceErrorsMiddleware(lambda r: None)(request)
    assert (response.status_code, response["Content-Type"]) == (411, content_type)
    if expected is not None:
        assert response.content == expected
    else:
        assert "send it with a Content-Length. Nothing was saved." in response.content.decode()


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("delete", "/cds-services", "GET, OPTIONS"),
        ("post", "/cds-services", "GET, OPTIONS"),
        ("put", ORDER_SELECT_PATH, "POST, OPTIONS"),
        ("get", f"{ORDER_SELECT_PATH}/feedback", "POST, OPTIONS"),
    ],
)
def test_cds_hooks_method_not_allowed_is_json_405(method, path, allow):
    response = getattr(Client(), method)(path)
    verb = method.upper()
    use = allow.split(",")[0]
    assert (response.status_code, response["Content-Type"], response["Allow"], response.json()) == (
        405,
        "application/json",
        allow,
        {"errors": {"method": [f"{verb} is not allowed here; use {use}."]}},
    )


@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_cds_hooks_unknown_path_is_json_404(method):
    response = getattr(Client(), method)("/cds-services/anakinra-order-select/feedback/more")
    assert (response.status_code, response["Content-Type"], response.json()) == (
        404,
        "application/json",
        {
            "errors": {
                "path": [
                    "No CDS Hooks endpoint at '/cds-services/anakinra-order-select/feedback/more'; "
                    "the services are listed at /cds-services."
                ]
            }
        },
    )


def test_disallowed_host_in_process_is_one_warning_without_traceback(settings, caplog):
    settings.ALLOWED_HOSTS = ["cds.example.org"]
    with caplog.at_level(logging.INFO):
        response = Client(HTTP_HOST="evil.example").delete("/cds-services")
    assert (response.status_code, response.json()) == (400, BAD_HOST)
    assert [(r.name, r.levelname, r.exc_info) for r in caplog.records] == [("django.request", "WARNING", None)]


def _with_number(field: str, literal: str) -> str:
    return json.dumps({**VALID, field: "N"}).replace('"N"', literal)


@pytest.mark.parametrize(
    ("field", "literal", "message"),
    [
        ("weight_kg", "1e400", "must be from 1 to 150 kg"),
        ("weight_kg", "1" + "0" * 400, "must be from 1 to 150 kg"),
        ("weight_kg", "1e999999999", "must be from 1 to 150 kg"),  # was a 500 (Decimal overflow)
        ("weight_kg", "-1" + "0" * 5000, "must be from 1 to 150 kg"),  # was Python's int-limit message
        ("age_years", "1" + "0" * 5000, "must be from 0 to 40 years"),
        ("prior_tocilizumab_doses", "1" + "0" * 5000, "must be a whole number"),  # as 1E+999999999 is
    ],
)
def test_recommendations_huge_numbers_are_field_errors(token_client, field, literal, message):
    response = token_client.post(URL, _with_number(field, literal), content_type="application/json")
    assert (response.status_code, response.json()) == (400, {"errors": {field: [message]}})
