"""CDS Hooks configuration comes only from the environment and refuses malformed values."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from anakinra_cds.env import env_json
from cds_hooks.checks import issuers_configured
from cds_hooks.config import issuers

pytestmark = pytest.mark.unit

JWKS = {"keys": []}


def test_issuers_read_keys_allow_lists_and_institution(settings):
    settings.CDS_HOOKS_ISSUERS = {
        "https://ehr.example.org": {
            "jwks_url": "https://ehr.example.org/jwks",
            "jku": ["https://ehr.example.org/jku"],
            "institution": "cnh",
            "fhir_servers": ["https://ehr.example.org/fhir/"],
        }
    }

    issuer = issuers()["https://ehr.example.org"]

    assert (issuer.jwks, issuer.jwks_url, issuer.jku, issuer.institution, issuer.fhir_servers) == (
        None,
        "https://ehr.example.org/jwks",
        ("https://ehr.example.org/jku",),
        "cnh",
        ("https://ehr.example.org/fhir",),
    )


def test_issuer_fhir_servers_default_to_https_only(settings):
    settings.CDS_HOOKS_ISSUERS = {"https://ehr.example.org": {"jwks": JWKS}}

    issuer = issuers()["https://ehr.example.org"]

    assert issuer.fhir_server_allowed("https://fhir.example.org/r4") is True
    assert issuer.fhir_server_allowed("http://fhir.example.org/r4") is False


def test_issuer_listed_fhir_servers_are_the_only_ones(settings):
    settings.CDS_HOOKS_ISSUERS = {
        "https://ehr.example.org": {"jwks": JWKS, "fhir_servers": ["http://10.0.0.5:8080/fhir"]}
    }

    issuer = issuers()["https://ehr.example.org"]

    assert issuer.fhir_server_allowed("http://10.0.0.5:8080/fhir/") is True
    assert issuer.fhir_server_allowed("https://fhir.example.org/r4") is False


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "CDS_HOOKS_ISSUERS must be a JSON object keyed by issuer (the JWT 'iss')."),
        ({"https://a": {}}, "CDS_HOOKS_ISSUERS: issuer 'https://a' needs jwks, jwks_url or jku."),
        ({"https://a": {"jwks": JWKS, "jwk": 1}}, "CDS_HOOKS_ISSUERS: issuer 'https://a' has unknown keys ['jwk']."),
        (
            {"https://a": {"jwks_url": "ftp://a/jwks"}},
            "CDS_HOOKS_ISSUERS: issuer 'https://a'.jwks_url must be an absolute http(s) URL, not 'ftp://a/jwks'.",
        ),
        (
            {"https://a": {"jwks": {"kty": "EC"}}},
            "CDS_HOOKS_ISSUERS: issuer 'https://a'.jwks must be a JWK Set ({'keys': [...]}).",
        ),
    ],
)
def test_issuers_malformed_refuse_with_a_clear_message(settings, raw, message):
    settings.CDS_HOOKS_ISSUERS = raw

    with pytest.raises(ImproperlyConfigured) as error:
        issuers()

    assert str(error.value) == message
    assert [(e.id, e.msg) for e in issuers_configured(None)] == [("cds_hooks.E001", message)]


def test_env_json_reads_a_value_or_a_file_and_refuses_bad_json(monkeypatch, tmp_path):
    path = tmp_path / "issuers.json"
    path.write_text('{"https://a": {"jku": ["https://a/jwks"]}}', encoding="utf-8")
    monkeypatch.delenv("CDS_TEST_JSON", raising=False)

    assert env_json("CDS_TEST_JSON", {}) == {}
    monkeypatch.setenv("CDS_TEST_JSON_FILE", str(path))
    assert env_json("CDS_TEST_JSON", {}) == {"https://a": {"jku": ["https://a/jwks"]}}
    monkeypatch.delenv("CDS_TEST_JSON_FILE")
    monkeypatch.setenv("CDS_TEST_JSON", "{not json")
    with pytest.raises(ImproperlyConfigured):
        env_json("CDS_TEST_JSON", {})
