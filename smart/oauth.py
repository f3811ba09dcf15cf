"""The SMART App Launch 2 client protocol: discovery, the authorization request (PKCE S256), the token
exchange and the ID token. Network calls and the checks on what comes back; no session, no database.

Every URL called must be https, or http to a loopback address (`transport_is_safe`): the code, the
secret and the tokens travel on them. Calls have a short timeout and never follow a redirect. The
endpoints come from the discovery document of a *registered* FHIR server, never from the launch URL
(a launch's `iss` is only looked up among the registrations), and the ID token is checked against the
keys named there (`jwks_uri`), never against an issuer the token itself names.

Any failure is `LaunchFailed`, whose message is shown to the clinician (it names no token or secret).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import jwt
import requests
from django.conf import settings

from anakinra_cds import jsonutil
from cds_hooks.fhir_read import is_fhir_id
from cds_hooks.smart_config import PRACTITIONER_PATH, SmartRegistration, transport_is_safe

# What the app reads, as SMART v2 scopes (granular: Observation only in the vital-signs category, where
# body weight is) or, for a server that only knows them, v1 scopes.
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
VITAL_SIGNS_CATEGORY = f"{OBSERVATION_CATEGORY}|vital-signs"
READ_SCOPES_V2 = (
    "patient/Patient.r",
    f"patient/Observation.rs?category={VITAL_SIGNS_CATEGORY}",
    "patient/AllergyIntolerance.rs",
)
READ_SCOPES_V1 = ("patient/Patient.read", "patient/Observation.read", "patient/AllergyIntolerance.read")
IDENTITY_SCOPES = ("openid", "fhirUser")
# ID tokens are accepted signed with these only (SMART requires RS256 support; never "none" or HMAC).
ID_TOKEN_ALGORITHMS = ("RS256", "RS384", "ES256", "ES384")


class LaunchFailed(Exception):
    """The launch cannot go on; the message says why, in words a clinician can pass on."""


@dataclass(frozen=True, slots=True)
class SmartConfiguration:
    """The parts of a FHIR server's `.well-known/smart-configuration` the app uses."""

    authorization_endpoint: str
    token_endpoint: str
    issuer: str | None
    jwks_uri: str | None
    capabilities: tuple[str, ...]

    @property
    def scope_version(self) -> int:
        """2 when the server says it takes SMART v2 scopes, else 1."""
        return 2 if "permission-v2" in self.capabilities else 1


@dataclass(frozen=True, slots=True)
class TokenResponse:
    access_token: str
    scope: str
    expires_in: int | None
    patient: str
    id_token: str
    app_context: str | None
    tenant: str
    need_patient_banner: bool


@dataclass(frozen=True, slots=True)
class Pkce:
    verifier: str
    challenge: str


def pkce_pair() -> Pkce:
    """RFC 7636: a 43-character verifier from 32 random bytes, and its S256 challenge."""
    verifier = secrets.token_urlsafe(32)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return Pkce(verifier=verifier, challenge=base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii"))


def requested_scope(*, configuration: SmartConfiguration, ehr_launch: bool) -> str:
    """`launch` for an EHR launch (context comes with it), `launch/patient` for a standalone one."""
    reads = READ_SCOPES_V2 if configuration.scope_version == 2 else READ_SCOPES_V1
    return " ".join(("launch" if ehr_launch else "launch/patient", *IDENTITY_SCOPES, *reads))


def _get_json(url: str, *, what: str) -> Any:
    if not transport_is_safe(url):
        raise LaunchFailed(f"The EHR's {what} is not on https ({urlsplit(url).scheme}): it was not called.")
    try:
        response = requests.get(
            url,
            headers={"Accept": "application/json"},
            timeout=settings.CDS_HOOKS_HTTP_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.RequestException as error:
        raise LaunchFailed(f"The EHR's {what} could not be reached ({type(error).__name__}).") from None
    if response.status_code != 200:
        raise LaunchFailed(f"The EHR's {what} answered HTTP {response.status_code}.")
    try:
        return jsonutil.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        raise LaunchFailed(f"The EHR's {what} did not answer with JSON.") from None


def _endpoint(document: dict[str, Any], key: str) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not transport_is_safe(value):
        raise LaunchFailed(f"The EHR's SMART configuration has no usable {key} (https required).")
    return value


def discover(*, fhir_server: str) -> SmartConfiguration:
    """GET {fhir_server}/.well-known/smart-configuration, and check what the launch needs."""
    document = _get_json(f"{fhir_server.rstrip('/')}/.well-known/smart-configuration", what="SMART configuration")
    if not isinstance(document, dict):
        raise LaunchFailed("The EHR's SMART configuration is not a JSON object.")
    methods = document.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        raise LaunchFailed("The EHR does not offer PKCE with S256, which this app requires.")
    capabilities = document.get("capabilities")
    issuer, jwks_uri = document.get("issuer"), document.get("jwks_uri")
    return SmartConfiguration(
        authorization_endpoint=_endpoint(document, "authorization_endpoint"),
        token_endpoint=_endpoint(document, "token_endpoint"),
        issuer=issuer if isinstance(issuer, str) and issuer else None,
        jwks_uri=jwks_uri if isinstance(jwks_uri, str) and transport_is_safe(jwks_uri) else None,
        capabilities=tuple(c for c in capabilities if isinstance(c, str)) if isinstance(capabilities, list) else (),
    )


def authorize_url(
    *,
    configuration: SmartConfiguration,
    registration: SmartRegistration,
    fhir_server: str,
    redirect_uri: str,
    scope: str,
    state: str,
    nonce: str,
    code_challenge: str,
    launch: str | None,
) -> str:
    """The authorization request (SMART App Launch, "Obtain authorization code"), sent as a GET."""
    params = {
        "response_type": "code",
        "client_id": registration.client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "aud": fhir_server,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
        "nonce": nonce,
    }
    if launch is not None:
        params["launch"] = launch
    endpoint = configuration.authorization_endpoint
    return f"{endpoint}{'&' if urlsplit(endpoint).query else '?'}{urlencode(params)}"


def _token_response(payload: Any) -> TokenResponse:
    if not isinstance(payload, dict):
        raise LaunchFailed("The EHR's token endpoint did not answer with a JSON object.")
    access_token, token_type = payload.get("access_token"), payload.get("token_type")
    if not isinstance(access_token, str) or not access_token or not isinstance(token_type, str):
        raise LaunchFailed("The EHR's token response has no access token.")
    if token_type.lower() != "bearer":
        raise LaunchFailed(f"The EHR's token is of type {token_type!r}, not Bearer.")
    patient = payload.get("patient")
    if not is_fhir_id(patient):
        raise LaunchFailed("The EHR did not say which patient this launch is for.")
    id_token = payload.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        raise LaunchFailed("The EHR did not say who the user is (no ID token).")
    expires_in = payload.get("expires_in")
    scope = payload.get("scope")
    app_context = payload.get("appContext")
    tenant = payload.get("tenant")
    return TokenResponse(
        access_token=access_token,
        scope=scope if isinstance(scope, str) else "",
        expires_in=expires_in if isinstance(expires_in, int) and not isinstance(expires_in, bool) else None,
        patient=patient,
        id_token=id_token,
        app_context=app_context if isinstance(app_context, str) else None,
        tenant=tenant if isinstance(tenant, str) else "",
        need_patient_banner=payload.get("need_patient_banner") is not False,
    )


def token_exchange(
    *,
    configuration: SmartConfiguration,
    registration: SmartRegistration,
    code: str,
    redirect_uri: str,
    code_verifier: str,
) -> TokenResponse:
    """POST the code to the token endpoint: a public client names itself (`client_id`), a confidential
    one authenticates with HTTP Basic (client_secret_basic, SMART's confidential-symmetric)."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    auth = None
    if registration.client_secret is None:
        form["client_id"] = registration.client_id
    else:
        # RFC 6749 2.3.1: each part form-urlencoded before the Basic encoding.
        auth = requests.auth.HTTPBasicAuth(
            quote(registration.client_id, safe=""), quote(registration.client_secret, safe="")
        )
    try:
        response = requests.post(
            configuration.token_endpoint,
            data=form,
            auth=auth,
            headers={"Accept": "application/json"},
            timeout=settings.CDS_HOOKS_HTTP_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.RequestException as error:
        raise LaunchFailed(f"The EHR's token endpoint could not be reached ({type(error).__name__}).") from None
    try:
        payload = jsonutil.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        payload = None
    if response.status_code != 200:
        error = payload.get("error") if isinstance(payload, dict) else None
        said = f" ({error})" if isinstance(error, str) and error.replace("_", "").isalpha() else ""
        raise LaunchFailed(f"The EHR refused to give this app a token: HTTP {response.status_code}{said}.")
    return _token_response(payload)


def _signing_key(*, configuration: SmartConfiguration, id_token: str) -> tuple[Any, str]:
    if configuration.issuer is None or configuration.jwks_uri is None:
        raise LaunchFailed("The EHR's SMART configuration names no issuer and keys for ID tokens (OpenID Connect).")
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError:
        raise LaunchFailed("The EHR's ID token is not a JWT.") from None
    algorithm = header.get("alg")
    if algorithm not in ID_TOKEN_ALGORITHMS:
        raise LaunchFailed(f"The EHR's ID token is signed with {algorithm!r}, which is not accepted.")
    key_set = _get_json(configuration.jwks_uri, what="key set (jwks_uri)")
    keys = key_set.get("keys") if isinstance(key_set, dict) else None
    if not isinstance(keys, list):
        raise LaunchFailed("The EHR's key set (jwks_uri) is not a JWK Set.")
    kid = header.get("kid")
    matches = [k for k in keys if isinstance(k, dict) and (kid is None or k.get("kid") == kid)]
    matches = [k for k in matches if k.get("use", "sig") == "sig"]
    if len(matches) != 1:
        raise LaunchFailed("The EHR's key set has no single key for its ID token.")
    try:
        return jwt.PyJWK(matches[0], algorithm=algorithm).key, algorithm
    except jwt.PyJWTError:
        raise LaunchFailed("The EHR's key for its ID token cannot be used.") from None


def id_token_claims(
    *, configuration: SmartConfiguration, registration: SmartRegistration, id_token: str, nonce: str
) -> dict[str, Any]:
    """The ID token's claims after the OpenID Connect checks: signature by the EHR's published key,
    `iss` the EHR's issuer, `aud` this client, `exp`/`iat`, and the `nonce` sent with this launch."""
    key, algorithm = _signing_key(configuration=configuration, id_token=id_token)
    try:
        claims = jwt.decode(
            id_token,
            key,
            algorithms=[algorithm],
            audience=registration.client_id,
            issuer=configuration.issuer,
            leeway=settings.CDS_HOOKS_JWT_LEEWAY_SECONDS,
            options={"require": ["iss", "sub", "aud", "exp", "iat"]},
        )
    except jwt.PyJWTError as error:
        raise LaunchFailed(f"The EHR's ID token was refused: {error}.") from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != registration.client_id:
        raise LaunchFailed("The EHR's ID token names other audiences and is not authorized for this app.")
    if not isinstance(claims.get("nonce"), str) or not secrets.compare_digest(claims["nonce"], nonce):
        raise LaunchFailed("The EHR's ID token does not answer this launch (nonce).")
    return claims


def practitioner_url(*, claims: dict[str, Any], fhir_server: str) -> str:
    """The ID token's `fhirUser` as an absolute URL (a relative one is relative to the FHIR server, the
    `aud` of the request), which must name a Practitioner: this app is for clinicians."""
    fhir_user = claims.get("fhirUser")
    if not isinstance(fhir_user, str) or not fhir_user:
        raise LaunchFailed("The EHR did not say which user launched the app (no fhirUser in the ID token).")
    parts = urlsplit(fhir_user)
    absolute = fhir_user if parts.scheme else f"{fhir_server.rstrip('/')}/{fhir_user.lstrip('/')}"
    if not PRACTITIONER_PATH.search(urlsplit(absolute).path):
        kind = urlsplit(absolute).path.rstrip("/").split("/")[-2:-1] or ["unknown"]
        raise LaunchFailed(f"This app is for clinicians: the EHR user is a {kind[0]}, not a Practitioner.")
    return absolute
