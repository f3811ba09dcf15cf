"""API authentication: a session (the browser, with CSRF) or `Authorization: Token <key>`.

Anonymous calls get a JSON 401, never a redirect to the login page.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from accounts.selectors import user_for_api_key
from api.responses import error_response

UNAUTHENTICATED = {"auth": ["Authentication required: log in, or send 'Authorization: Token <key>'."]}


def _token_from_header(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "token":
        return None
    return key.strip()


def _csrf_failure(request: HttpRequest) -> HttpResponse | None:
    # Cookie-authenticated writes need the CSRF token, exactly as for a form.
    check = CsrfViewMiddleware(lambda r: HttpResponse())
    check.process_request(request)
    return check.process_view(request, None, (), {})


def api_login_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        key = _token_from_header(request)
        if key is not None:
            user = user_for_api_key(key=key)
            if user is None:
                return error_response({"auth": ["Invalid or revoked token."]}, status=401)
            request.user = user
        elif request.user.is_authenticated and request.user.is_active:
            if request.method not in ("GET", "HEAD", "OPTIONS") and _csrf_failure(request) is not None:
                return error_response({"auth": ["CSRF check failed for a session-authenticated request."]}, status=403)
        else:
            response = error_response(UNAUTHENTICATED, status=401)
            response["WWW-Authenticate"] = 'Token realm="api"'
            return response
        return view(request, *args, **kwargs)

    return wrapper
