"""The EHRs this service trusts, read from settings.CDS_HOOKS_ISSUERS (env var of the same name).

    CDS_HOOKS_ISSUERS='{"https://ehr.example.org": {
        "jwks_url": "https://ehr.example.org/.well-known/jwks.json",
        "jku": ["https://ehr.example.org/jwks"],
        "institution": "cnh",
        "tenants": {"east-campus": {"institution": "chop"}},
        "fhir_servers": ["https://ehr.example.org/fhir/r4"],
        "medication_codes": [{"system": "https://formulary.example.org", "code": "ANAK-100"}]}}'

One registration per EHR, keyed by the JWT `iss` (compared exactly); every key is optional unless said.
New kinds of setting (a SMART App Launch client, say) are new keys of this object, each checked here
and listed in ALLOWED_KEYS, so an unknown or misspelt key always stops the start.

- `jwks` (an inline JWK Set) or `jwks_url` (fetched and cached): where its public keys are;
- `jku`: the JWK Set URLs this issuer may name in a token header. The allow-list is per issuer, so a
  key source trusted for one EHR can never sign for another. A token naming any other `jku` is refused;
- `institution`: the slug of the protocol its orders are checked against (absent: none is checked);
- `tenants`: for an EHR serving several hospitals, which send the JWT `tenant` claim: an object keyed by
  tenant id, each an object with its own `institution` (absent or null: none is checked for that tenant).
  A tenant not listed (or no tenant claim) gets the issuer's `institution`; leave that out so that an
  unlisted tenant gets no protocol at all;
- `fhir_servers`: the only FHIR base URLs the service may call with the access token the EHR sends.
  Absent or empty: none. The token is a bearer credential for patient data, so it is never sent to a
  server no one listed (a `fhirServer` in a request is the caller's claim, not a trusted setting);
  without a listed server the service answers as when no server is given (412 without a weight).
  A search result's `next` page is read only from the same server;
- `medication_codes`: the codes (`system` and `code`, as in a FHIR Coding) this EHR's formulary uses for
  anakinra. An order (or allergy) carrying one is anakinra even without a name. None is built in: no
  medication code has been verified for this service, so each site lists the ones it has checked.

- `smart`: its SMART App Launch client registration (cds_hooks/smart_config.py). An entry may hold only
  this (no keys): that EHR launches the app but makes no CDS Hooks calls (any it made would be refused).

SITE_URL (settings; empty, or an absolute http(s) URL with no path, query or fragment, https unless
DEBUG) is checked here too: it is the JWT audience and the base of every link sent to an EHR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from cds_hooks.smart_config import SmartRegistration, servers_registered_once, smart_registration

ALLOWED_KEYS = {"jwks", "jwks_url", "jku", "institution", "tenants", "fhir_servers", "medication_codes", "smart"}
TENANT_KEYS = {"institution"}
CODE_KEYS = {"system", "code", "display"}


@dataclass(frozen=True, slots=True)
class Tenant:
    institution: str | None


@dataclass(frozen=True, slots=True)
class Issuer:
    iss: str
    jwks: dict[str, Any] | None
    jwks_url: str | None
    jku: tuple[str, ...]
    institution: str | None
    fhir_servers: tuple[str, ...]
    tenants: dict[str, Tenant] = field(default_factory=dict)
    # (system, code) pairs this EHR's formulary uses for anakinra.
    medication_codes: frozenset[tuple[str, str]] = frozenset()
    smart: SmartRegistration | None = None

    def fhir_server_allowed(self, url: str) -> bool:
        return url.rstrip("/") in self.fhir_servers

    def institution_for(self, tenant: str) -> str | None:
        """The protocol slug for a call from `tenant` (the JWT claim; "" when absent)."""
        listed = self.tenants.get(tenant) if tenant else None
        return listed.institution if listed is not None else self.institution


def _url(value: Any, where: str) -> str:
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("https", "http") or not parts.netloc:
        raise ImproperlyConfigured(f"CDS_HOOKS_ISSUERS: {where} must be an absolute http(s) URL, not {value!r}.")
    return value


def _url_list(value: Any, where: str, *, strip_slash: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ImproperlyConfigured(f"CDS_HOOKS_ISSUERS: {where} must be a list of URLs.")
    urls = (_url(item, where) for item in value)
    return tuple(url.rstrip("/") if strip_slash else url for url in urls)


def _slug(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ImproperlyConfigured(f"CDS_HOOKS_ISSUERS: {where} must be an institution slug.")
    return value


def _object(value: Any, where: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ImproperlyConfigured(f"CDS_HOOKS_ISSUERS: {where} must be an object.")
    unknown = set(value) - allowed
    if unknown:
        raise ImproperlyConfigured(f"CDS_HOOKS_ISSUERS: {where} has unknown keys {sorted(unknown)}.")
    return value


def _tenants(value: Any, where: str) -> dict[str, Tenant]:
    if not isinstance(value, dict):
        raise ImproperlyConfigured(f"CDS_HOOKS_ISSUERS: {where} must be an object keyed by tenant id.")
    tenants = {}
    for tenant_id, raw in value.items():
        at = f"{where}[{tenant_id!r}]"
        if not tenant_id:
            raise ImproperlyConfigured(f"CDS_HOOKS_ISSUERS: {where} has an empty tenant id.")
        raw = _object(raw, at, TENANT_KEYS)
        institution = _slug(raw["institution"], f"{at}.institution") if raw.get("institution") is not None else None
        tenants[tenant_id] = Tenant(institution=institution)
    return tenants


def _medication_codes(value: Any, where: str) -> frozenset[tuple[str, str]]:
    if not isinstance(value, list):
        raise ImproperlyConfigured(f"CDS_HOOKS_ISSUERS: {where} must be a list of {{system, code}} objects.")
    codes = set()
    for index, raw in enumerate(value):
        at = f"{where}[{index}]"
        raw = _object(raw, at, CODE_KEYS)
        system, code = raw.get("system"), raw.get("code")
        if not (isinstance(system, str) and ":" in system and isinstance(code, str) and code.strip()):
            raise ImproperlyConfigured(
                f"CDS_HOOKS_ISSUERS: {at} needs a `system` (a URI, as in a FHIR Coding) and a non-empty `code`."
            )
        codes.add((system, code))
    return frozenset(codes)


def _issuer(iss: str, raw: Any) -> Issuer:
    where = f"issuer {iss!r}"
    if not isinstance(raw, dict):
        raise ImproperlyConfigured(f"CDS_HOOKS_ISSUERS: {where} must map to an object.")
    unknown = set(raw) - ALLOWED_KEYS
    if unknown:
        raise ImproperlyConfigured(f"CDS_HOOKS_ISSUERS: {where} has unknown keys {sorted(unknown)}.")
    jwks = raw.get("jwks")
    if jwks is not None and not (isinstance(jwks, dict) and isinstance(jwks.get("keys"), list)):
        raise ImproperlyConfigured(f"CDS_HOOKS_ISSUERS: {where}.jwks must be a JWK Set ({{'keys': [...]}}).")
    jwks_url = _url(raw["jwks_url"], f"{where}.jwks_url") if "jwks_url" in raw else None
    jku = _url_list(raw.get("jku", []), f"{where}.jku")
    if jwks is None and jwks_url is None and not jku and "smart" not in raw:
        raise ImproperlyConfigured(f"CDS_HOOKS_ISSUERS: {where} needs jwks, jwks_url or jku.")
    institution = _slug(raw["institution"], f"{where}.institution") if raw.get("institution") is not None else None
    return Issuer(
        iss=iss,
        jwks=jwks,
        jwks_url=jwks_url,
        jku=jku,
        institution=institution,
        fhir_servers=_url_list(raw.get("fhir_servers", []), f"{where}.fhir_servers", strip_slash=True),
        tenants=_tenants(raw.get("tenants", {}), f"{where}.tenants"),
        medication_codes=_medication_codes(raw.get("medication_codes", []), f"{where}.medication_codes"),
        smart=smart_registration(iss, raw["smart"]) if "smart" in raw else None,
    )


def issuers() -> dict[str, Issuer]:
    """Every trusted issuer; ImproperlyConfigured on a malformed setting."""
    raw = settings.CDS_HOOKS_ISSUERS
    if not isinstance(raw, dict):
        raise ImproperlyConfigured("CDS_HOOKS_ISSUERS must be a JSON object keyed by issuer (the JWT 'iss').")
    parsed = {iss: _issuer(iss, value) for iss, value in raw.items()}
    servers_registered_once([issuer.smart for issuer in parsed.values() if issuer.smart is not None])
    return parsed


def issuer_get(iss: str) -> Issuer | None:
    return issuers().get(iss)


def site_url_problem(site_url: str, *, debug: bool) -> str | None:
    """Why SITE_URL is unusable, or None. Empty is allowed: the request's own base URL is used."""
    if not site_url:
        return None
    try:
        parts = urlsplit(site_url)
        parts.port  # noqa: B018  (raises ValueError on a malformed port)
    except ValueError:
        return f"SITE_URL is not a valid URL: {site_url!r}."
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"SITE_URL must be an absolute http(s) URL such as https://cds.example.org, not {site_url!r}."
    if parts.username is not None or parts.password is not None:
        return f"SITE_URL must not contain credentials: {parts.scheme}://...@{parts.hostname}."
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return (
            f"SITE_URL must be scheme://host[:port] with no path, query or fragment (the service is served at the "
            f"root), not {site_url!r}."
        )
    if parts.scheme != "https" and not debug:
        return f"SITE_URL must use https when DEBUG is false, not {site_url!r}."
    return None
