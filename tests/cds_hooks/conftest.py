"""Fixtures for the CDS Hooks tests: a trusted EHR (its keys configured as issuer) and a local server
standing in for the EHR's FHIR server and JWK Set URL."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.test import Client

from cds_hooks.auth import jwks_cache_clear
from tests.ehr_support import ISSUER, SigningKey, bearer, body_json, claims, ec_key, rsa_key, sign, start_server

TEST_HOST = "http://testserver"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Test users (the API token's owner) need no slow, secure hash here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def ec_signing_key() -> SigningKey:
    return ec_key()


@pytest.fixture(scope="session")
def rsa_signing_key() -> SigningKey:
    return rsa_key()


@dataclass
class Ehr:
    """Plays the EHR against the Django test client: signs a fresh JWT for every call."""

    client: Client
    key: SigningKey

    def token(self, path: str, *, key: SigningKey | None = None, **claim_args) -> str:
        return sign(key or self.key, claims(aud=f"{TEST_HOST}{path}", **claim_args))

    def post(self, path: str, body, *, token: str | None = None, **headers):
        headers = {**bearer(token or self.token(path)), **headers}
        return self.client.post(path, body_json(body), content_type="application/json", headers=headers)

    def get(self, path: str, *, token: str | None = None, **headers):
        return self.client.get(path, headers={**bearer(token or self.token(path)), **headers})


@pytest.fixture
def ehr(db, settings, ec_signing_key, rsa_signing_key) -> Ehr:
    settings.SITE_URL = ""
    settings.CDS_HOOKS_CORS_ORIGINS = []
    settings.CDS_HOOKS_ISSUERS = {
        ISSUER: {
            "jwks": {"keys": [ec_signing_key.public_jwk(), rsa_signing_key.public_jwk()]},
            "institution": "cnh",
        }
    }
    jwks_cache_clear()
    yield Ehr(client=Client(), key=ec_signing_key)
    jwks_cache_clear()


@pytest.fixture
def fake_ehr_server():
    fake, httpd = start_server()
    yield fake
    httpd.shutdown()
    httpd.server_close()
