"""Reads from the EHR's FHIR server, with the access token the EHR sent in `fhirAuthorization`.

Short timeout, no redirects (the token must not follow one), JSON parsed with Decimals. Any failure
is `FhirUnavailable`; the caller decides whether the data was required (412) or optional. A search
result's `next` link is read only when it is on the same server (`page_url_on_server`): a link is
data from outside, and the token is a credential for patient data.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import requests
from django.conf import settings

from anakinra_cds import jsonutil


class FhirUnavailable(Exception):
    pass


def _get(url: str, *, label: str, params: dict[str, str] | None, access_token: str) -> Any:
    try:
        response = requests.get(
            url,
            params=params,
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/fhir+json"},
            timeout=settings.CDS_HOOKS_HTTP_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.RequestException as error:
        raise FhirUnavailable(f"{label}: {type(error).__name__}") from None
    if response.status_code != 200:
        raise FhirUnavailable(f"{label}: HTTP {response.status_code}")
    try:
        return jsonutil.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        raise FhirUnavailable(f"{label}: not JSON") from None


def fhir_get(*, base_url: str, path: str, params: dict[str, str], access_token: str) -> Any:
    return _get(f"{base_url.rstrip('/')}/{path}", label=path, params=params, access_token=access_token)


def page_url_on_server(url: str, base_url: str) -> str | None:
    """A Bundle `next` link as an absolute URL, when it is on the FHIR server at `base_url` (same scheme,
    host and port, under its path, no credentials, no dot segments); None otherwise. A relative link is
    resolved against the base, as FHIR resolves relative references."""
    base = urlsplit(base_url.rstrip("/") + "/")
    try:
        parts = urlsplit(urljoin(base.geturl(), url))
        same_origin = (parts.scheme, parts.hostname, parts.port) == (base.scheme, base.hostname, base.port)
    except ValueError:
        return None
    segments = unquote(parts.path).split("/")
    if (
        not same_origin
        or parts.username is not None
        or parts.password is not None
        or "." in segments
        or ".." in segments
        or not (parts.path + "/").startswith(base.path)
    ):
        return None
    return parts._replace(fragment="").geturl()


def fhir_get_page(*, url: str, base_url: str, access_token: str, page: int) -> Any:
    """The next page of a search, from `url` only if it is on `base_url`'s server."""
    absolute = page_url_on_server(url, base_url)
    if absolute is None:
        raise FhirUnavailable(f"page {page}: its link is not on the EHR's FHIR server")
    return _get(absolute, label=f"page {page}", params=None, access_token=access_token)
