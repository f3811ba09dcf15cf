"""The probes: liveness (/healthz) and readiness (/readyz). ProbeMiddleware answers both before any other
middleware, so a load balancer or container check needs no allowed Host, no https and no session."""

from __future__ import annotations

from django.conf import settings
from django.db import Error as DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers
from django.utils.log import log_response
from django.views.decorators.http import require_safe

from anakinra_cds.health import database_check
from anakinra_cds.service_errors import SERVICE_UNAVAILABLE, first_line


def _probe_response(data: dict, *, status: int = 200) -> HttpResponse:
    response = JsonResponse(data, status=status)
    add_never_cache_headers(response)
    return response


@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers HTTP. Never touches the database (a database outage must not get
    healthy app containers restarted). Also the trivial JSON view the HTTP benchmark compares against."""
    return _probe_response({"status": "ok"})


@require_safe
def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: the database answers within DATABASE_CONNECT_TIMEOUT and READYZ_STATEMENT_TIMEOUT_MS."""
    try:
        database_check(statement_timeout_ms=settings.READYZ_STATEMENT_TIMEOUT_MS)
    except DatabaseError as error:
        response = _probe_response({"status": "unavailable", "errors": {"service": [SERVICE_UNAVAILABLE]}}, status=503)
        response["Retry-After"] = str(settings.SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS)
        log_response("Not ready (database): %s", first_line(error), response=response, request=request)
        return response
    return _probe_response({"status": "ready"})
