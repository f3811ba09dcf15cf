"""The answers for what is not the caller's fault, or must not cost a worker: 503 when the database cannot be
reached, 413 for a body over the size limit; and for a caller's expected mistakes that Django would answer in
HTML or log with a traceback: 400 for a Host not allowed, 411 for a chunked body that cannot be read. JSON in
the API's one error shape for machine callers (the API and CDS Hooks), a short page for people. Each failure
is logged as one line, never a traceback."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.exception import get_exception_response
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.urls import get_resolver, get_urlconf
from django.utils.cache import add_never_cache_headers
from django.utils.log import log_response

from anakinra_cds import jsonutil
from anakinra_cds.resubmit import carried_post, same_site_path

# Paths whose callers are programs: the JSON API and the CDS Hooks services (docs/api.md).
JSON_PATH_PREFIXES = ("/api/", "/cds-services")

SERVICE_UNAVAILABLE = "The database cannot be reached, so nothing was stored. Try again shortly."


def first_line(error: BaseException) -> str:
    """The exception's class and the first line of its message (psycopg's run over several lines)."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:300]


def wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(JSON_PATH_PREFIXES)


def _json_errors(field: str, message: str, *, status: int) -> HttpResponse:
    return HttpResponse(jsonutil.dumps({"errors": {field: [message]}}), status=status, content_type="application/json")


def _page(template: str, context: dict, *, status: int) -> HttpResponse:
    # Rendered without the request: no context processor, so no session, user or message read (they need
    # the database this page may be about).
    return HttpResponse(render_to_string(template, context), status=status)


def service_unavailable(request: HttpRequest, error: BaseException) -> HttpResponse:
    retry_after = settings.SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS
    if wants_json(request):
        response = _json_errors("service", SERVICE_UNAVAILABLE, status=503)
    else:
        # What was sent comes back in the page, under "Try again": nothing typed is lost (anakinra_cds.resubmit).
        context = {
            "retry_after_seconds": retry_after,
            "carried": carried_post(request),
            "again": same_site_path(request),
        }
        response = _page("errors/service_unavailable.html", context, status=503)
    response["Retry-After"] = str(retry_after)
    add_never_cache_headers(response)
    log_response(
        "Service Unavailable (database): %s %s: %s",
        request.method,
        request.path,
        first_line(error),
        response=response,
        request=request,
    )
    return response


def request_too_large(request: HttpRequest) -> HttpResponse:
    limit_mb = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / (1024 * 1024)
    message = f"The body is over the size limit of {limit_mb:g} MB."
    if wants_json(request):
        response = _json_errors("body", message, status=413)
    else:
        response = _page("errors/request_too_large.html", {"message": message}, status=413)
    declared = request.META.get("CONTENT_LENGTH") or "unknown"
    return _client_error_logged(response, request, "Request Entity Too Large", f"Content-Length {declared}")


def _client_error_logged(response: HttpResponse, request: HttpRequest, what: str, detail: str) -> HttpResponse:
    """A caller's mistake, expected at any time: one warning line, never a traceback."""
    add_never_cache_headers(response)
    response["X-Content-Type-Options"] = "nosniff"  # answered before SecurityMiddleware, which would add it
    log_response("%s: %s %s: %s", what, request.method, request.path, detail, response=response, request=request)
    return response


def bad_host(request: HttpRequest, error: DisallowedHost) -> HttpResponse:
    """A Host header not in ALLOWED_HOSTS: 400, in JSON for machine callers, the site's 400 page otherwise."""
    if wants_json(request):
        response = _json_errors("host", "This service does not answer to that Host header.", status=400)
    else:
        response = get_exception_response(request, get_resolver(get_urlconf()), 400, error)
    return _client_error_logged(response, request, "Bad Request (host)", first_line(error))


def length_required(request: HttpRequest) -> HttpResponse:
    message = "A body sent in chunks cannot be read by this server: send it with a Content-Length."
    if wants_json(request):
        response = _json_errors("body", message, status=411)
    else:
        response = _page("errors/request_too_large.html", {"message": message}, status=411)
    return _client_error_logged(response, request, "Length Required", "chunked body, no Content-Length")
