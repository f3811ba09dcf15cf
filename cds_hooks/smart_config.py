"""An EHR's SMART App Launch registration: the `smart` key of its entry in CDS_HOOKS_ISSUERS.

    "smart": {
        "client_id": "anakinra-cds",
        "client_type": "confidential",
        "client_secret_env": "EHR_SMART_CLIENT_SECRET",
        "fhir_servers": ["https://ehr.example.org/fhir/r4"],
        "ehr_origins": ["https://ehr.example.org"],
        "user_mapping": "configured",
        "users": {"https://ehr.example.org/fhir/r4/Practitioner/123": "drsmith"}
    }

- `client_id`: what the EHR's authorization server registered this app as;
- `client_type`: `public` (no secret; PKCE alone proves the code is ours) or `confidential` (HTTP Basic
  with a secret, SMART's "confidential-symmetric"). The secret is never written in this JSON:
  `client_secret_env` names the environment variable that holds it (or `<NAME>_FILE`, a file holding it);
- `fhir_servers`: the FHIR base URLs this EHR launches the app from (the launch's `iss`, and the `aud`
  the app asks a token for). Required; a server may belong to one registration only. https, or http to
  a loopback address (the same rule as OAuth for native apps): the token is sent there;
- `ehr_origins`: the EHR pages (scheme://host[:port]) that may show the app in a frame. Absent: none,
  and the app only opens in a window of its own;
- `user_mapping`: how the EHR user (the ID token's `fhirUser`, a Practitioner) becomes a local account.
  `configured`: `users` maps each fhirUser URL to an existing clinician's username, and anyone else is
  refused. `create`: the first launch of an EHR user creates a clinician account for them (no password:
  it can only be used through a launch) and every later launch signs in that account.

Everything is checked at start (`cds_hooks.E001`): an unknown key, a missing secret or a malformed value
stops `manage.py check`/`migrate`, and so the deployment.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from anakinra_cds.env import env_secret

SMART_KEYS = {"client_id", "client_type", "client_secret_env", "fhir_servers", "ehr_origins", "user_mapping", "users"}
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
PRACTITIONER_PATH = re.compile(r"/Practitioner/[A-Za-z0-9\-.]{1,64}$")


class UserMapping(StrEnum):
    CONFIGURED = "configured"
    CREATE = "create"


@dataclass(frozen=True, slots=True)
class SmartRegistration:
    """One EHR's SMART client registration. `iss` is the key of its CDS_HOOKS_ISSUERS entry."""

    iss: str
    client_id: str
    client_secret: str | None = field(repr=False)  # None: a public client
    fhir_servers: tuple[str, ...]
    ehr_origins: tuple[str, ...]
    user_mapping: UserMapping
    # fhirUser URL -> local username (user_mapping "configured" only)
    users: dict[str, str] = field(default_factory=dict)

    @property
    def confidential(self) -> bool:
        return self.client_secret is not None

    def serves(self, fhir_server: str) -> bool:
        return fhir_server.rstrip("/") in self.fhir_servers


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def transport_is_safe(url: str) -> bool:
    """https, or http to this machine's loopback address (nothing on the network can read it)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if not parts.hostname or parts.username is not None or parts.password is not None:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname))


def _fail(where: str, problem: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"CDS_HOOKS_ISSUERS: {where} {problem}")


def _string(raw: dict[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _fail(f"{where}.{key}", "must be a non-empty string.")
    return value


def _servers(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise _fail(where, "must be a non-empty list of FHIR base URLs.")
    for url in value:
        if not isinstance(url, str) or not transport_is_safe(url) or urlsplit(url).query or urlsplit(url).fragment:
            raise _fail(where, f"must hold https URLs (http only to a loopback address), not {url!r}.")
    return tuple(url.rstrip("/") for url in value)


def _origins(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _fail(where, "must be a list of origins (scheme://host[:port]).")
    origins = []
    for origin in value:
        parts = urlsplit(origin) if isinstance(origin, str) else None
        if parts is None or not transport_is_safe(origin) or parts.path not in ("", "/") or parts.query:
            raise _fail(where, f"must hold origins such as https://ehr.example.org (no path), not {origin!r}.")
        origins.append(f"{parts.scheme}://{parts.netloc}")
    return tuple(origins)


def _users(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not value:
        raise _fail(where, "must map each EHR user's fhirUser URL to a local username.")
    users = {}
    for fhir_user, username in value.items():
        parts = urlsplit(fhir_user)
        if parts.scheme not in ("https", "http") or not parts.netloc or not PRACTITIONER_PATH.search(parts.path):
            raise _fail(where, f"keys must be absolute Practitioner URLs (…/Practitioner/<id>), not {fhir_user!r}.")
        if not isinstance(username, str) or not username.strip():
            raise _fail(f"{where}[{fhir_user!r}]", "must be a local username.")
        users[fhir_user] = username
    return users


def smart_registration(iss: str, raw: Any) -> SmartRegistration:
    """Parse and check one `smart` object; ImproperlyConfigured on anything wrong."""
    where = f"issuer {iss!r}.smart"
    if not isinstance(raw, dict):
        raise _fail(where, "must be an object.")
    if "client_secret" in raw:
        raise _fail(where, "must not hold the secret: name its environment variable in client_secret_env.")
    unknown = set(raw) - SMART_KEYS
    if unknown:
        raise _fail(where, f"has unknown keys {sorted(unknown)}.")
    client_id = _string(raw, "client_id", where)
    client_type = raw.get("client_type")
    if client_type not in ("public", "confidential"):
        raise _fail(f"{where}.client_type", f"must be 'public' or 'confidential', not {client_type!r}.")
    secret = None
    if client_type == "confidential":
        secret_env = raw.get("client_secret_env")
        if not isinstance(secret_env, str) or not ENV_NAME.match(secret_env):
            raise _fail(f"{where}.client_secret_env", "must name the environment variable holding the secret.")
        try:
            secret = env_secret(secret_env, required=True)
        except ImproperlyConfigured as error:
            raise _fail(f"{where}.client_secret_env", f"names a secret that cannot be read: {error}") from None
    elif "client_secret_env" in raw:
        raise _fail(f"{where}.client_secret_env", "is for confidential clients only (client_type is 'public').")
    mapping = raw.get("user_mapping")
    if mapping not in tuple(UserMapping):
        raise _fail(f"{where}.user_mapping", f"must be 'configured' or 'create', not {mapping!r}.")
    if mapping == UserMapping.CONFIGURED:
        users = _users(raw.get("users"), f"{where}.users")
    elif "users" in raw:
        raise _fail(f"{where}.users", "is only read with user_mapping 'configured'.")
    else:
        users = {}
    return SmartRegistration(
        iss=iss,
        client_id=client_id,
        client_secret=secret,
        fhir_servers=_servers(raw.get("fhir_servers"), f"{where}.fhir_servers"),
        ehr_origins=_origins(raw.get("ehr_origins", []), f"{where}.ehr_origins"),
        user_mapping=UserMapping(mapping),
        users=users,
    )


def servers_registered_once(registrations: list[SmartRegistration]) -> None:
    """A launch's `iss` must name one registration: refuse a FHIR server listed by two."""
    owner: dict[str, str] = {}
    for registration in registrations:
        for server in registration.fhir_servers:
            if server in owner and owner[server] != registration.iss:
                raise ImproperlyConfigured(
                    f"CDS_HOOKS_ISSUERS: the SMART FHIR server {server!r} is registered by both {owner[server]!r} "
                    f"and {registration.iss!r}; a launch must name one registration."
                )
            owner[server] = registration.iss
