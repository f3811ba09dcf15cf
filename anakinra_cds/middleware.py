"""Site-wide middleware: the probes, answered first; the Host check's 400; and the 411, 413 and 503 answers
(anakinra_cds/service_errors.py)."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import DisallowedHost, RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from anakinra_cds import views
from anakinra_cds.request_body import LENGTH_REQUIRED
from anakinra_cds.service_errors import bad_host, length_required, request_too_large, service_unavailable


class ProbeMiddleware:
    """First in MIDDLEWARE: /healthz and /readyz are answered before the Host check and the https redirect,
    so a load balancer or container check can call them over plain HTTP by address, and with no session."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.probes: dict[str, Callable[[HttpRequest], HttpResponse]] | None = None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.probes is None:
            self.probes = {reverse("healthz"): views.healthz, reverse("readyz"): views.readyz}
        probe = self.probes.get(request.path)
        return probe(request) if probe is not None else self.get_response(request)


class HostCheckMiddleware:
    """Second in MIDDLEWARE, before the https redirect and CommonMiddleware, which both read the Host: a Host
    not in ALLOWED_HOSTS gets its 400 here, in JSON for the API and CDS Hooks (Django's answer is the HTML
    page), and is logged as one line, not a traceback. (Probes, answered before, need no allowed Host.)"""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            request.get_host()
        except DisallowedHost as error:
            return bad_host(request, error)
        return self.get_response(request)


class ServiceErrorsMiddleware:
    """413 for a body over DATA_UPLOAD_MAX_MEMORY_SIZE, refused by its Content-Length before anything reads it
    (the app takes no file uploads, so the limit is the whole body's; a chunked body was given its length by
    anakinra_cds/request_body.py); 411 for a chunked body the server could not end; 503 when the database
    cannot be reached (connection refused, lost or timed out, or no answer within DATABASE_WAIT_TIMEOUT_SECONDS)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _declared_too_large(request):
            return request_too_large(request)
        if request.META.get(LENGTH_REQUIRED):
            return length_required(request)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, RequestDataTooBig):
            return request_too_large(request)
        if isinstance(exception, OperationalError | InterfaceError):
            return service_unavailable(request, exception)
        return None


def _declared_too_large(request: HttpRequest) -> bool:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is None:
        return False
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) > limit
    except ValueError:
        return False
