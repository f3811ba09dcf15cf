"""Who is calling: the EHR's signed JWT (CDS Hooks 2.0, "Trusting CDS Clients").

Every call carries `Authorization: Bearer <JWT>`. It is accepted only when all of these hold:
- the header names ES384 or RS384 (never `none`, never an HMAC algorithm), a `kid`, and `typ` "JWT";
- `iss` is a configured issuer, and the key comes from that issuer's configured JWK Set, its
  configured JWK Set URL, or a `jku` on that issuer's own allow-list;
- the signature verifies with that key;
- `aud` is exactly this endpoint's URL (that string, or an array holding only it); `exp` and `iat` are JSON
  numbers; `exp` is in the future, `iat` not in the future, and the lifetime (`exp - iat`) no longer than
  CDS_HOOKS_JWT_MAX_LIFETIME_SECONDS;
- `jti` has not been seen before from this issuer (the replay store, shared by every process).

Any failure raises `InvalidToken`, which the views turn into a bare 401. Tokens are never logged.

Fetched JWK Sets cannot starve the service: a `kid` is looked up in the keys already held for the issuer
before anything is fetched; a failed fetch is remembered for JWKS_FAILURE_SECONDS; at most one fetch per URL
is in flight (in a background thread, whatever the number of requests waiting for it); and no request waits
longer than CDS_HOOKS_HTTP_TIMEOUT_SECONDS for it, even from a server that sends one byte at a time.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt
import requests
from django.conf import settings
from jwt.exceptions import PyJWTError

from cds_hooks.config import Issuer, issuer_get
from cds_hooks.replay import jwt_id_claim

ALLOWED_ALGORITHMS = ("ES384", "RS384")
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]
MIN_RSA_KEY_BITS = 2048
# An unknown `kid` triggers a refetch of a cached JWK Set (key rotation), at most this often.
JWKS_REFETCH_MIN_SECONDS = 30
# A failed JWK Set fetch (error, timeout) is not tried again for this long: each call is refused at once.
JWKS_FAILURE_SECONDS = 30
JWKS_MAX_BYTES = 256 * 1024
MAX_JTI_LENGTH = 255


class InvalidToken(Exception):
    """The request is not from a trusted EHR. The message is for tests and debugging, never for the caller."""


@dataclass(frozen=True, slots=True)
class CdsClient:
    issuer: Issuer
    subject: str
    tenant: str


@dataclass(frozen=True, slots=True)
class _CachedSet:
    fetched_at: float
    jwks: dict[str, Any]


@dataclass(slots=True)
class _Fetch:
    """One fetch in flight: every request that needs the URL meanwhile waits on `done` (each for at most the
    timeout), and the background thread leaves the set or the error here."""

    done: threading.Event = field(default_factory=threading.Event)
    jwks: dict[str, Any] | None = None
    error: str = ""


_jwks_cache: dict[str, _CachedSet] = {}
_jwks_failed_until: dict[str, float] = {}
_jwks_fetches: dict[str, _Fetch] = {}
_jwks_lock = threading.Lock()


def jwks_cache_clear() -> None:
    with _jwks_lock:
        _jwks_cache.clear()
        _jwks_failed_until.clear()
        _jwks_fetches.clear()


def _kids(jwks: dict[str, Any]) -> set[str]:
    return {k.get("kid") for k in jwks.get("keys", []) if isinstance(k, dict)}


def _fetch_jwks(url: str, *, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    try:
        with requests.get(
            url, timeout=timeout, allow_redirects=False, headers={"Accept": "application/json"}, stream=True
        ) as response:
            response.raise_for_status()
            body = bytearray()
            for chunk in response.iter_content(chunk_size=8192):
                body += chunk
                if len(body) > JWKS_MAX_BYTES:
                    raise InvalidToken(f"JWK Set at {url} is larger than {JWKS_MAX_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise InvalidToken(f"JWK Set at {url} took longer than {timeout} s")
        jwks = json.loads(body)
    except (requests.RequestException, ValueError) as error:
        raise InvalidToken(f"JWK Set at {url} could not be fetched: {error}") from None
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise InvalidToken(f"{url} did not return a JWK Set")
    return jwks


def _fetch_in_background(url: str, fetch: _Fetch, timeout: float) -> None:
    try:
        fetch.jwks = _fetch_jwks(url, timeout=timeout)
    except InvalidToken as error:
        fetch.error = str(error)
    except Exception as error:  # a background thread: whatever happens ends as a failed fetch
        fetch.error = f"JWK Set at {url} could not be fetched: {type(error).__name__}"
    with _jwks_lock:
        if _jwks_fetches.get(url) is fetch:
            del _jwks_fetches[url]
        if fetch.jwks is not None:
            _jwks_cache[url] = _CachedSet(fetched_at=time.monotonic(), jwks=fetch.jwks)
            _jwks_failed_until.pop(url, None)
        else:
            _jwks_failed_until[url] = time.monotonic() + JWKS_FAILURE_SECONDS
    fetch.done.set()


def _held_set(url: str, kid: str, now: float) -> dict[str, Any] | None:
    """The cached set for `url` if it may be used for `kid` without fetching (caller holds the lock)."""
    cached = _jwks_cache.get(url)
    if cached is None:
        return None
    age = now - cached.fetched_at
    if age < settings.CDS_HOOKS_JWKS_CACHE_SECONDS and (kid in _kids(cached.jwks) or age < JWKS_REFETCH_MIN_SECONDS):
        return cached.jwks
    return None


def _jwks_from_url(url: str, kid: str) -> dict[str, Any]:
    """A fetched JWK Set, cached for CDS_HOOKS_JWKS_CACHE_SECONDS and refetched (at most every
    JWKS_REFETCH_MIN_SECONDS) for an unknown kid; after a failed fetch, refused for JWKS_FAILURE_SECONDS."""
    timeout = settings.CDS_HOOKS_HTTP_TIMEOUT_SECONDS
    with _jwks_lock:
        now = time.monotonic()
        held = _held_set(url, kid, now)
        if held is not None:
            return held
        if _jwks_failed_until.get(url, 0) > now:
            raise InvalidToken(f"JWK Set at {url} failed recently; not fetched again yet")
        fetch = _jwks_fetches.get(url)
        if fetch is None:
            fetch = _jwks_fetches[url] = _Fetch()
            threading.Thread(target=_fetch_in_background, args=(url, fetch, timeout), daemon=True).start()
    if not fetch.done.wait(timeout):
        with _jwks_lock:
            # Later requests fail at once rather than each waiting: the fetch counts as failed until it ends.
            _jwks_failed_until[url] = max(_jwks_failed_until.get(url, 0), time.monotonic() + JWKS_FAILURE_SECONDS)
        raise InvalidToken(f"JWK Set at {url} did not arrive within {timeout} s")
    if fetch.jwks is None:
        raise InvalidToken(fetch.error)
    return fetch.jwks


def _held_elsewhere(issuer: Issuer, kid: str) -> dict[str, Any] | None:
    """A set of this issuer's already held (inline, or fetched and still fresh) that has `kid`: every one of
    the issuer's key sources is trusted for it alike, so no fetch is needed."""
    if issuer.jwks is not None and kid in _kids(issuer.jwks):
        return issuer.jwks
    now = time.monotonic()
    with _jwks_lock:
        for url in (issuer.jwks_url, *issuer.jku):
            cached = _jwks_cache.get(url) if url is not None else None
            fresh = cached is not None and now - cached.fetched_at < settings.CDS_HOOKS_JWKS_CACHE_SECONDS
            if fresh and kid in _kids(cached.jwks):
                return cached.jwks
    return None


def _key_set(issuer: Issuer, header: dict[str, Any], kid: str) -> dict[str, Any]:
    jku = header.get("jku")
    if jku is not None and jku not in issuer.jku:
        raise InvalidToken("jku is not on this issuer's allow-list")
    held = _held_elsewhere(issuer, kid)
    if held is not None:
        return held
    if jku is not None:
        return _jwks_from_url(jku, kid)
    if issuer.jwks is not None:
        return issuer.jwks
    if issuer.jwks_url is not None:
        return _jwks_from_url(issuer.jwks_url, kid)
    raise InvalidToken("this issuer's keys are only reachable through jku, and the token names none")


def _signing_key(jwks: dict[str, Any], kid: str, algorithm: str) -> Any:
    matches = [k for k in jwks.get("keys", []) if isinstance(k, dict) and k.get("kid") == kid]
    if len(matches) != 1:
        raise InvalidToken("no single key with this kid in the issuer's JWK Set")
    jwk = matches[0]
    if jwk.get("use", "sig") != "sig" or jwk.get("alg", algorithm) != algorithm:
        raise InvalidToken("the key is not for signing with this algorithm")
    if algorithm == "ES384" and (jwk.get("kty") != "EC" or jwk.get("crv") != "P-384"):
        raise InvalidToken("ES384 needs an EC P-384 key")
    if algorithm == "RS384" and jwk.get("kty") != "RSA":
        raise InvalidToken("RS384 needs an RSA key")
    try:
        key = jwt.PyJWK(jwk, algorithm=algorithm).key
    except PyJWTError as error:
        raise InvalidToken(f"unusable key: {error}") from None
    if algorithm == "RS384" and key.key_size < MIN_RSA_KEY_BITS:
        raise InvalidToken("RSA key shorter than 2048 bits")
    return key


def _bearer(authorization: str) -> str:
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise InvalidToken("no bearer token")
    return token


def _is_numeric_date(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def cds_client_verify(*, authorization: str, audience: str) -> CdsClient:
    """The verified caller of one request to `audience` (this endpoint's exact URL)."""
    token = _bearer(authorization)
    try:
        # One parse for the header and the issuer that pick the key; the claims are verified below.
        # (PyJWT checks the base64url alphabet byte by byte: each parse costs about 0.1 ms.)
        unverified_token = jwt.decode_complete(token, options={"verify_signature": False})
    except PyJWTError:
        raise InvalidToken("not a JWT") from None
    header, unverified = unverified_token["header"], unverified_token["payload"]
    algorithm = header.get("alg")
    if algorithm not in ALLOWED_ALGORITHMS:
        raise InvalidToken("algorithm not allowed")
    # CDS Hooks 2.0: `typ` is REQUIRED and fixed to "JWT" (compared case-insensitively, as a media type).
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.upper() != "JWT":
        raise InvalidToken("typ is not JWT")
    kid = header.get("kid")
    iss = unverified.get("iss")
    if not isinstance(kid, str) or not kid or not isinstance(iss, str):
        raise InvalidToken("kid or iss missing")
    issuer = issuer_get(iss)
    if issuer is None:
        raise InvalidToken("unknown issuer")

    key = _signing_key(_key_set(issuer, header, kid), kid, algorithm)
    leeway = settings.CDS_HOOKS_JWT_LEEWAY_SECONDS
    try:
        claims = jwt.decode(
            token,
            key=key,
            algorithms=[algorithm],
            audience=audience,
            issuer=iss,
            leeway=leeway,
            options={"require": REQUIRED_CLAIMS},
        )
    except PyJWTError as error:
        raise InvalidToken(f"rejected: {type(error).__name__}") from None

    # PyJWT accepts any array holding the audience; the endpoint's URL alone is accepted here.
    if claims["aud"] != audience and claims["aud"] != [audience]:
        raise InvalidToken("aud names more than this endpoint")
    # PyJWT accepts numeric strings for exp and iat; the JWT spec says NumericDate, a JSON number.
    if not all(_is_numeric_date(claims[name]) for name in ("exp", "iat")):
        raise InvalidToken("exp and iat must be JSON numbers")
    jti = claims["jti"]
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise InvalidToken("jti must be a non-empty string")
    exp, iat = int(claims["exp"]), int(claims["iat"])
    if exp - iat > settings.CDS_HOOKS_JWT_MAX_LIFETIME_SECONDS:
        raise InvalidToken("token lifetime too long")
    expires_at = datetime.fromtimestamp(exp + leeway, tz=UTC)
    if not jwt_id_claim(issuer=iss, jti=jti, expires_at=expires_at):
        raise InvalidToken("jti already used")
    return CdsClient(issuer=issuer, subject=str(claims.get("sub", "")), tenant=str(claims.get("tenant", "")))
