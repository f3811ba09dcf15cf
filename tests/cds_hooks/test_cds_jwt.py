"""The EHR's JWT: every failure is a bare 401 (no body, nothing said about why)."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.utils import timezone

from cds_hooks.models import SeenJwtId
from cds_hooks.replay import jwt_id_claim
from tests.cds_hooks.conftest import TEST_HOST
from tests.ehr_support import (
    ISSUER,
    ORDER_SELECT_PATH,
    claims,
    ec_key,
    full_prefetch,
    hook_body,
    sign,
    unsigned_token,
)
from tests.factories import SeenJwtIdFactory

pytestmark = pytest.mark.integration

DISCOVERY = "/cds-services"
DISCOVERY_AUD = f"{TEST_HOST}{DISCOVERY}"


def _assert_bare_401(response) -> None:
    assert (response.status_code, response.content, response["WWW-Authenticate"]) == (401, b"", "Bearer")


def test_jwt_es384_from_a_trusted_issuer_is_accepted(ehr):
    assert ehr.get(DISCOVERY).status_code == 200


def test_jwt_rs384_from_a_trusted_issuer_is_accepted(ehr, rsa_signing_key):
    assert ehr.get(DISCOVERY, token=ehr.token(DISCOVERY, key=rsa_signing_key)).status_code == 200


def test_jwt_missing_is_401(ehr):
    _assert_bare_401(ehr.client.get(DISCOVERY))


def test_jwt_wrong_audience_is_401(ehr):
    token = sign(ehr.key, claims(aud="https://other.example.org/cds-services"))

    _assert_bare_401(ehr.get(DISCOVERY, token=token))


def test_jwt_for_another_endpoint_is_401(ehr):
    token = ehr.token(DISCOVERY)

    _assert_bare_401(ehr.post(ORDER_SELECT_PATH, hook_body(prefetch=full_prefetch()), token=token))


def test_jwt_audience_is_built_from_site_url_when_set(ehr, settings):
    settings.SITE_URL = "https://cds.example.org"

    accepted = ehr.get(DISCOVERY, token=sign(ehr.key, claims(aud="https://cds.example.org/cds-services")))
    refused = ehr.get(DISCOVERY, token=sign(ehr.key, claims(aud=DISCOVERY_AUD)))

    assert accepted.status_code == 200
    _assert_bare_401(refused)


def test_jwt_expired_is_401(ehr):
    token = sign(ehr.key, claims(aud=DISCOVERY_AUD, iat=int(time.time()) - 600, lifetime=120))

    _assert_bare_401(ehr.get(DISCOVERY, token=token))


def test_jwt_issued_in_the_future_is_401(ehr):
    token = sign(ehr.key, claims(aud=DISCOVERY_AUD, iat=int(time.time()) + 600))

    _assert_bare_401(ehr.get(DISCOVERY, token=token))


def test_jwt_lifetime_longer_than_allowed_is_401(ehr, settings):
    settings.CDS_HOOKS_JWT_MAX_LIFETIME_SECONDS = 300

    _assert_bare_401(ehr.get(DISCOVERY, token=sign(ehr.key, claims(aud=DISCOVERY_AUD, lifetime=301))))


def test_jwt_alg_none_is_401(ehr):
    _assert_bare_401(ehr.get(DISCOVERY, token=unsigned_token(claims(aud=DISCOVERY_AUD), ehr.key.kid)))


def test_jwt_hs256_is_401(ehr):
    token = jwt.encode(
        claims(aud=DISCOVERY_AUD),
        "a-shared-secret-that-is-long-enough-for-hs256",
        algorithm="HS256",
        headers={"kid": ehr.key.kid},
    )

    _assert_bare_401(ehr.get(DISCOVERY, token=token))


def test_jwt_es256_is_401_even_under_a_known_kid(ehr):
    p256 = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(claims(aud=DISCOVERY_AUD), p256, algorithm="ES256", headers={"kid": ehr.key.kid})

    _assert_bare_401(ehr.get(DISCOVERY, token=token))


def test_jwt_unknown_issuer_is_401(ehr):
    _assert_bare_401(ehr.get(DISCOVERY, token=sign(ehr.key, claims(aud=DISCOVERY_AUD, iss="https://evil.example"))))


def test_jwt_bad_signature_is_401(ehr):
    impostor = ec_key(kid=ehr.key.kid)  # same kid, different private key

    _assert_bare_401(ehr.get(DISCOVERY, token=sign(impostor, claims(aud=DISCOVERY_AUD))))


def test_jwt_tampered_payload_is_401(ehr):
    header, _, signature = sign(ehr.key, claims(aud=DISCOVERY_AUD)).split(".")
    other_payload = sign(ehr.key, claims(aud=DISCOVERY_AUD, iss=ISSUER)).split(".")[1]

    _assert_bare_401(ehr.get(DISCOVERY, token=f"{header}.{other_payload}.{signature}"))


def test_jwt_replayed_jti_is_401(ehr):
    token = ehr.token(DISCOVERY)

    first = ehr.get(DISCOVERY, token=token)
    second = ehr.get(DISCOVERY, token=token)

    assert first.status_code == 200
    _assert_bare_401(second)


def test_jwt_unknown_kid_is_401(ehr):
    stranger = ec_key(kid="not-configured")

    _assert_bare_401(ehr.get(DISCOVERY, token=sign(stranger, claims(aud=DISCOVERY_AUD))))


def test_jwt_key_from_an_allow_listed_jku_is_fetched_once_and_cached(ehr, settings, fake_ehr_server):
    key = ec_key(kid="jku-key")
    jku = f"{fake_ehr_server.url}/jwks"
    fake_ehr_server.routes["/jwks"] = (200, key.jwks())
    settings.CDS_HOOKS_ISSUERS[ISSUER] = {"jku": [jku], "institution": "cnh"}

    first = ehr.get(DISCOVERY, token=sign(key, claims(aud=DISCOVERY_AUD), jku=jku))
    second = ehr.get(DISCOVERY, token=sign(key, claims(aud=DISCOVERY_AUD), jku=jku))

    assert (first.status_code, second.status_code) == (200, 200)
    assert [r["path"] for r in fake_ehr_server.requests] == ["/jwks"]


def test_jwt_jku_not_on_the_issuers_allow_list_is_401_and_never_fetched(ehr, fake_ehr_server):
    key = ec_key(kid="jku-key")
    fake_ehr_server.routes["/jwks"] = (200, key.jwks())

    response = ehr.get(DISCOVERY, token=sign(key, claims(aud=DISCOVERY_AUD), jku=f"{fake_ehr_server.url}/jwks"))

    _assert_bare_401(response)
    assert fake_ehr_server.requests == []


def test_jwt_key_from_the_issuers_configured_jwks_url(ehr, settings, fake_ehr_server):
    key = ec_key(kid="rotated")
    fake_ehr_server.routes["/.well-known/jwks.json"] = (200, key.jwks())
    settings.CDS_HOOKS_ISSUERS[ISSUER] = {"jwks_url": f"{fake_ehr_server.url}/.well-known/jwks.json"}

    assert ehr.get(DISCOVERY, token=sign(key, claims(aud=DISCOVERY_AUD))).status_code == 200


def test_jwt_tokens_are_never_logged(ehr, caplog):
    good = ehr.token(DISCOVERY)
    bad = sign(ehr.key, claims(aud="https://other.example.org/"))

    with caplog.at_level(logging.DEBUG):
        ehr.get(DISCOVERY, token=good)
        ehr.get(DISCOVERY, token=bad)

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert good not in logged
    assert bad not in logged


def test_jwt_id_claim_refuses_a_second_use_and_purges_expired_ids(db):
    expired = SeenJwtIdFactory(expires_at=timezone.now() - timedelta(seconds=1))
    expires_at = timezone.now() + timedelta(minutes=5)

    first = jwt_id_claim(issuer=ISSUER, jti="abc", expires_at=expires_at)
    again = jwt_id_claim(issuer=ISSUER, jti="abc", expires_at=expires_at)
    other_issuer = jwt_id_claim(issuer="https://other.example.org", jti="abc", expires_at=expires_at)

    assert (first, again, other_issuer) == (True, False, True)
    assert not SeenJwtId.objects.filter(pk=expired.pk).exists()
    assert SeenJwtId.objects.count() == 2


def test_jwt_bearer_header_with_another_scheme_is_401(ehr):
    token = ehr.token(DISCOVERY)

    _assert_bare_401(ehr.client.get(DISCOVERY, headers={"Authorization": f"Token {token}"}))


def test_jwt_accepted_request_records_its_id(ehr):
    ehr.get(DISCOVERY)

    assert SeenJwtId.objects.count() == 1


def test_jwt_malformed_header_values_are_401_not_errors(ehr):
    _assert_bare_401(ehr.get(DISCOVERY, token=sign(ehr.key, claims(aud=DISCOVERY_AUD), typ=123)))
    _assert_bare_401(ehr.get(DISCOVERY, token=sign(ehr.key, claims(aud=DISCOVERY_AUD), typ="at+jwt")))


def test_jwt_unusable_configured_key_is_401_not_an_error(ehr, settings):
    broken = ehr.key.public_jwk() | {"x": "AAAA"}
    settings.CDS_HOOKS_ISSUERS[ISSUER]["jwks"] = {"keys": [broken]}

    _assert_bare_401(ehr.get(DISCOVERY))


def test_jwt_without_typ_is_401(ehr):
    key = ehr.key
    # PyJWT adds typ "JWT" unless told None.
    token = jwt.encode(claims(aud=DISCOVERY_AUD), key.private, algorithm=key.alg, headers={"kid": key.kid, "typ": None})
    assert "typ" not in jwt.get_unverified_header(token)

    _assert_bare_401(ehr.get(DISCOVERY, token=token))


@pytest.mark.parametrize("claim", ["exp", "iat"])
def test_jwt_exp_or_iat_as_a_string_is_401(ehr, claim):
    payload = claims(aud=DISCOVERY_AUD)
    payload[claim] = str(payload[claim])

    _assert_bare_401(ehr.get(DISCOVERY, token=sign(ehr.key, payload)))
    assert not SeenJwtId.objects.exists()


def test_jwt_exp_and_iat_as_json_fractions_are_accepted(ehr):
    payload = claims(aud=DISCOVERY_AUD)
    payload["exp"] += 0.5
    payload["iat"] += 0.25

    assert ehr.get(DISCOVERY, token=sign(ehr.key, payload)).status_code == 200


def test_jwt_aud_array_naming_another_audience_too_is_401(ehr):
    # Reproduction: ["https://evil.example", <this URL>] was accepted (PyJWT accepts any array holding it).
    token = sign(ehr.key, claims(aud=["https://evil.example", DISCOVERY_AUD]))

    _assert_bare_401(ehr.get(DISCOVERY, token=token))
    assert not SeenJwtId.objects.exists()


def test_jwt_aud_array_holding_only_this_url_is_accepted(ehr):
    assert ehr.get(DISCOVERY, token=sign(ehr.key, claims(aud=[DISCOVERY_AUD]))).status_code == 200
