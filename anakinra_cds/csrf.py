"""The page for a form refused by the CSRF check (settings.CSRF_FAILURE_VIEW): for people, the form has
expired; what it sent comes back under a "Send it again" button when that is safe, so nothing is lost.

Safe means: the form was sent from this site's own pages (the browser's Origin header names this site, as
Chromium, Firefox and Safari send it on every POST) by someone logged in now. Then the check failed because
the page's token was old (logged in again in another tab, or the token cookie was cleared), and the button
sends the same fields with the current token. From anywhere else nothing is offered back: that is what the
check is for. Programs (the API, CDS Hooks) get the API's JSON error for it."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

from anakinra_cds import jsonutil
from anakinra_cds.resubmit import carried_post
from anakinra_cds.service_errors import wants_json

# For programs, as api.auth answers a session write without the token (docs/api.md).
CSRF_FAILED_JSON = {"errors": {"auth": ["CSRF check failed for a session-authenticated request."]}}


def _own_origin(request: HttpRequest) -> bool:
    origin = request.headers.get("Origin")
    return origin is not None and origin == f"{request.scheme}://{request.get_host()}"


def _back(request: HttpRequest) -> str | None:
    """The page the form was on, when it is one of this site's."""
    referer = request.headers.get("Referer", "")
    if referer and url_has_allowed_host_and_scheme(referer, allowed_hosts={request.get_host()}):
        return referer
    return None


def _login_url(request: HttpRequest) -> str:
    """The log-in page, coming back here afterwards (or where the log-in form itself was going)."""
    login = reverse("login")
    after = request.GET.get("next", "") if request.path == login else request.get_full_path()
    return f"{login}?{urlencode({'next': after})}" if after else login


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if wants_json(request):
        response = HttpResponse(jsonutil.dumps(CSRF_FAILED_JSON), status=403, content_type="application/json")
    else:
        logged_in = request.user.is_authenticated
        carried = carried_post(request, keep_csrf_token=False) if _own_origin(request) and logged_in else None
        context = {
            "carried": carried,
            "back": _back(request),
            "logged_in": logged_in,
            "login_url": "" if logged_in else _login_url(request),
        }
        response = render(request, "errors/csrf_failure.html", context, status=403)
    add_never_cache_headers(response)
    return response
