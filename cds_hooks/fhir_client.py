"""Reads from the EHR's FHIR server, with the access token the EHR sent in `fhirAuthorization`.

Short timeout, no redirects (the token must not follow one), JSON parsed with Decimals. Any failure
is `FhirUnavailable`; the caller decides whether the data was required (412) or optional.
"""

from __future__ import annotations

from typing import Any

import requests
from django.conf import settings

from anakinra_cds import jsonutil


class FhirUnavailable(Exception):
    pass


def fhir_get(*, base_url: str, path: str, params: dict[str, str], access_token: str) -> Any:
    try:
        response = requests.get(
            f"{base_url.rstrip('/')}/{path}",
            params=params,
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/fhir+json"},
            timeout=settings.CDS_HOOKS_HTTP_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.RequestException as error:
        raise FhirUnavailable(f"{path}: {type(error).__name__}") from None
    if response.status_code != 200:
        raise FhirUnavailable(f"{path}: HTTP {response.status_code}")
    try:
        return jsonutil.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        raise FhirUnavailable(f"{path}: not JSON") from None
