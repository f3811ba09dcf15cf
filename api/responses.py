"""The API's method check and JSON 404, in the one JSON response shape (anakinra_cds.json_responses, shared
with the CDS Hooks services)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse

from anakinra_cds.json_responses import ApiResponse, error_response

__all__ = ["ApiResponse", "api_methods", "error_response", "not_found"]


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
