"""Reads from the EHR's FHIR server, with the access token the EHR sent in `fhirAuthorization`.

Short timeout, no redirects (the token must not follow one), JSON parsed with Decimals. Any failure
is `FhirUnavailable`; the caller decides whether the data was required (412) or optional. A search
result's `next` link is read only when it is on the same server (`page_url_on_server`): a link is
data from outside, and the token is a credential for patient data. `search_pages` follows them, bounded,
for both the CDS Hooks service and the SMART launch's reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import requests
from django.conf import settings

from anakinra_cds import jsonutil
from cds_hooks.fhir_read import search_page


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


# The most pages of one search read by following `next` links (the first page included): every page is
# another call to the EHR within one hook call or launch. A longer list is reported as not read in full.
MAX_SEARCH_PAGES = 5


@dataclass(frozen=True, slots=True)
class SearchResult:
    resources: list[dict[str, Any]]
    # Why this is not known to be the whole answer ("" when it is).
    problem: str


def _never_enough(resources: list[dict[str, Any]]) -> bool:
    return False


def search_pages(
    first: Any,
    *,
    base_url: str | None,
    access_token: str | None,
    enough: Callable[[list[dict[str, Any]]], bool] = _never_enough,
) -> SearchResult:
    """Every page of a search whose first page is `first` (a prefetch value or a response), following
    `next` links on the FHIR server at `base_url` only (None: no server to read more from), at most
    MAX_SEARCH_PAGES, until `enough` holds. A later failure, an error outcome or a short list is the
    result's `problem`, never an empty answer."""
    page = search_page(first)
    resources, matches, total = list(page.resources), page.matches, page.total
    number = 1
    while not page.problem and page.next_url is not None and not enough(resources):
        if number == MAX_SEARCH_PAGES:
            pages = MAX_SEARCH_PAGES
            return SearchResult(resources, f"it has more than {pages} pages; only the first {pages} were read")
        if base_url is None or access_token is None:
            return SearchResult(resources, "it has more pages, and no allowed FHIR server to read them from")
        number += 1
        try:
            page = search_page(
                fhir_get_page(url=page.next_url, base_url=base_url, access_token=access_token, page=number)
            )
        except FhirUnavailable as error:
            return SearchResult(resources, f"a later page could not be read ({error})")
        resources.extend(page.resources)
        matches += page.matches
    if page.problem:
        return SearchResult(resources, page.problem)
    if enough(resources):
        return SearchResult(resources, "")
    if total is not None and matches < total:
        sent = f"{matches} {'was' if matches == 1 else 'were'} sent"
        return SearchResult(resources, f"its total is {total} entries, but {sent}")
    return SearchResult(resources, "")
