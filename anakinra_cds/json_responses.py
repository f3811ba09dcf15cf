"""The one JSON response shape of the API and the CDS Hooks services: Decimals written as exact JSON numbers,
never cached (answers are about a patient, and ward computers are shared), errors as {"errors": {field: [...]}}.

Here, below both apps, so that neither imports the other for it (docs/architecture/layers.md).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.utils.cache import add_never_cache_headers

from anakinra_cds import jsonutil


class ApiResponse(HttpResponse):
    def __init__(self, data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> None:
        super().__init__(jsonutil.dumps(data), status=status, content_type="application/json", headers=headers)
        add_never_cache_headers(self)


def error_response(errors: dict[str, list[str]], *, status: int = 400) -> ApiResponse:
    return ApiResponse({"errors": errors}, status=status)
