"""Saying why the log-in page is shown: a session that ended (expired, or removed) while its page was open."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url

SESSION_ENDED = "session_ended"
# The value says whether the request that met the ended session sent a form (its answers were not saved).
ENDED_ON_A_FORM, ENDED = "form", "1"


class SessionEndedMiddleware:
    """A request that still carries a session cookie whose session is gone, sent to the log-in page (by
    login_required), gets `session_ended` added to that address, so the page can say "your session ended,
    log in again" rather than look like a first visit. Django deletes the dead cookie with this same
    response, so the log-in page itself can no longer tell. Below the session and authentication middleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 302 and self._session_ended(request):
            location = response["Location"]
            if urlsplit(location).path == resolve_url(settings.LOGIN_URL):
                value = ENDED_ON_A_FORM if request.method == "POST" else ENDED
                response["Location"] = f"{location}{'&' if '?' in location else '?'}{SESSION_ENDED}={value}"
        return response

    @staticmethod
    def _session_ended(request: HttpRequest) -> bool:
        session = getattr(request, "session", None)
        return session is not None and bool(request.COOKIES.get(settings.SESSION_COOKIE_NAME)) and session.is_empty()
