"""schemathesis over the OpenAPI document as served: generated requests, valid and invalid, against the real
views and database, with every built-in check on each response (none is turned off: the one rule that
looked beyond JSON Schema, each toxicity type at most once, is stated with `contains`/`maxContains`, which
the generator honours)."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks

from api.openapi import _document

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 30

load_all_checks()
ALL_CHECKS = CHECKS.get_all()


def _cases() -> list[tuple[str, str, GenerationMode]]:
    """Every operation with valid requests; those that take input also with invalid ones."""
    cases = []
    for path, item in _document()["paths"].items():
        for method, operation in item.items():
            cases.append((method.upper(), path, GenerationMode.POSITIVE))
            if "parameters" in operation or "requestBody" in operation:
                cases.append((method.upper(), path, GenerationMode.NEGATIVE))
    return cases


@pytest.fixture
def api_schema(db, settings):
    settings.ALLOWED_HOSTS = ["localhost"]  # schemathesis's WSGI client calls http://localhost
    # The views run in this thread, inside the test's transaction: as Django's test client does, keep the
    # request signals from closing that connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/v1/openapi.json", WSGIHandler())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.mark.parametrize(("method", "path", "mode"), _cases(), ids=str)
def test_api_schemathesis_every_check_passes(api_schema, api_key, method, path, mode):
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    def check(case):
        case.call_and_validate(headers={"Authorization": f"Token {api_key}"}, checks=ALL_CHECKS)

    check()
