"""One JSON response shape for the API, with Decimals written as exact JSON numbers, never cached (answers
are about a patient, and ward computers are shared)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers

from anakinra_cds import jsonutil


class ApiResponse(HttpResponse):
    def __init__(self, data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> None:
        super().__init__(jsonutil.dumps(data), status=status, content_type="application/json", headers=headers)
        add_never_cache_headers(self)


def error_response(errors: dict[str, list[str]], *, status: int = 400) -> ApiResponse:
    return ApiResponse({"errors": errors}, status=status)


def api_methods(*methods: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Like Django's require_http_methods, but the 405 is in the API's one error shape (JSON)."""
    allowed = tuple(methods) + (("HEAD",) if "GET" in methods and "HEAD" not in methods else ())

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in allowed:
                response = error_response(
                    {"method": [f"{request.method} is not allowed here; use {' or '.join(methods)}."]}, status=405
                )
                response["Allow"] = ", ".join(allowed)
                return response
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def not_found(request: HttpRequest) -> ApiResponse:
    """Any other path under the API: a JSON 404, not the site's HTML page."""
    return error_response({"path": [f"No API endpoint at {request.path!r}; see /api/v1/openapi.json."]}, status=404)
