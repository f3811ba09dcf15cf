"""SMART sessions inside the EHR's frame: their cookies and their frame ancestors, in one place.

An EHR shows a SMART app in an iframe of its own page, so the app is a third party there. Browsers that
block third-party cookies (Chrome's phase-out, Safari, Firefox's total cookie protection) still keep a
cookie marked `Partitioned` (CHIPS), in a jar of its own for that EHR's site. So for a **SMART session
only** (a session begun by a launch from a registered EHR, `smart.session.SMART_KEY`), this middleware

- rewrites the session and CSRF cookies as `SameSite=None; Secure; Partitioned` (set or deleted: a
  partitioned cookie is only removed by a deletion that is partitioned too). Neither Django nor Python's
  `http.cookies` (before 3.14) knows the `Partitioned` attribute, so the cookie is written by a Morsel
  that appends it. `Secure` needs https, or localhost, which browsers treat as a secure context;
- replaces the Content-Security-Policy's `frame-ancestors 'none'` by that EHR's registered `ehr_origins`
  (nothing else in the policy changes) and drops `X-Frame-Options`, which has no way to name an origin.
  A registration without `ehr_origins` is never framed: the app opens in a window of its own. The
  launch pages themselves (`/smart/...`) may be framed by every registered EHR even before a session
  names one, so that a launch that fails (an expired or foreign sign-in) says why inside the frame.

Every other response is left exactly as Django made it (SameSite=Lax cookies, `frame-ancestors 'none'`,
`X-Frame-Options: DENY`). It sits above the session, CSRF, clickjacking and CSP middleware in
MIDDLEWARE, so it sees their cookies and headers last.
"""

from __future__ import annotations

from collections.abc import Callable
from http.cookies import Morsel
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.middleware.csp import get_nonce
from django.utils.cache import patch_vary_headers
from django.utils.csp import CSP, build_policy

from smart.selectors import is_smart_session, smart_issuers, smart_session_registration

FRAME_ANCESTORS = "frame-ancestors"
LAUNCH_PAGES = {"smart_launch", "smart_standalone", "smart_callback"}


class PartitionedMorsel(Morsel):
    """A cookie written with the `Partitioned` attribute (CHIPS), which `http.cookies` cannot express."""

    def OutputString(self, attrs: Any = None) -> str:  # Morsel's own method name
        return f"{super().OutputString(attrs)}; Partitioned"


def partitioned(morsel: Morsel) -> PartitionedMorsel:
    """The same cookie as `SameSite=None; Secure; Partitioned`."""
    cookie = PartitionedMorsel()
    cookie.set(morsel.key, morsel.value, morsel.coded_value)
    cookie.update(morsel)
    cookie["samesite"] = "None"
    cookie["secure"] = True
    return cookie


def _frame_policy(request: HttpRequest, response: HttpResponse, origins: tuple[str, ...]) -> None:
    config = getattr(response, "_csp_config", settings.SECURE_CSP)
    if not config or not origins:
        return
    response.headers[str(CSP.HEADER_ENFORCE)] = build_policy(
        {**config, FRAME_ANCESTORS: list(origins)}, get_nonce(request)
    )
    if "X-Frame-Options" in response.headers:
        del response.headers["X-Frame-Options"]


def _may_hold_a_session(request: HttpRequest) -> bool:
    """The request's session has data: it came with a session cookie, or the view used the session."""
    session = getattr(request, "session", None)
    return session is not None and (session.accessed or settings.SESSION_COOKIE_NAME in request.COOKIES)


def _in_smart_session(session: Any) -> bool:
    """Whether the session is a SMART one. With the database away the session cannot be read: the request
    is answered 503 by the view's own read (ServiceErrorsMiddleware), which sets no cookie to partition."""
    try:
        return is_smart_session(session=session)
    except (OperationalError, InterfaceError):
        return False


class SmartEmbeddingMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        session = getattr(request, "session", None)
        smart_now = _may_hold_a_session(request) and _in_smart_session(session)
        launch_page = request.resolver_match is not None and request.resolver_match.url_name in LAUNCH_PAGES
        if not (smart_now or launch_page or getattr(request, "_smart_session_before", False)):
            return response
        for name in (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME):
            if name in response.cookies:
                response.cookies[name] = partitioned(response.cookies[name])
        if smart_now:
            patch_vary_headers(response, ("Cookie",))  # its headers depend on the session
        registration = smart_session_registration(session=session) if smart_now else None
        if registration is not None:
            _frame_policy(request, response, registration.ehr_origins)
        elif launch_page:
            origins = dict.fromkeys(o for i in smart_issuers() if i.smart is not None for o in i.smart.ehr_origins)
            _frame_policy(request, response, tuple(origins))
        return response

    def process_view(self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any) -> None:
        # Whether the request came in a SMART session, before the view (logout) can flush it: the cookie
        # that deletes it must be partitioned too. Only a request with a session cookie can be in one;
        # for any other, looking must not mark the session as used (which would add Vary: Cookie).
        session = getattr(request, "session", None)
        if session is None or settings.SESSION_COOKIE_NAME not in request.COOKIES:
            return
        accessed = session.accessed
        request._smart_session_before = _in_smart_session(session)  # type: ignore[attr-defined]
        session.accessed = accessed or request._smart_session_before  # type: ignore[attr-defined]
