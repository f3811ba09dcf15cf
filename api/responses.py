"""One JSON response shape for the API, with Decimals written as exact JSON numbers."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse

from anakinra_cds import jsonutil


class ApiResponse(HttpResponse):
    def __init__(self, data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> None:
        super().__init__(jsonutil.dumps(data), status=status, content_type="application/json", headers=headers)


def error_response(errors: dict[str, list[str]], *, status: int = 400) -> ApiResponse:
    return ApiResponse({"errors": errors}, status=status)
