"""CDS Hooks configuration comes only from the environment and refuses malformed values."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from anakinra_cds.env import env_json
from cds_hooks.checks import issuers_configured, site_url_configured
from cds_hooks.config import issuers, site_url_problem

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


def test_issuer_without_fhir_servers_may_call_none(settings):
    # The EHR's access token goes only to a FHIR server someone listed, never to one a request names.
    settings.CDS_HOOKS_ISSUERS = {"https://ehr.example.org": {"jwks": JWKS}}

    issuer = issuers()["https://ehr.example.org"]

    assert issuer.fhir_server_allowed("https://fhir.example.org/r4") is False
    assert issuer.fhir_server_allowed("http://fhir.example.org/r4") is False


def test_issuer_listed_fhir_servers_are_the_only_ones(settings):
    settings.CDS_HOOKS_ISSUERS = {
        "https://ehr.example.org": {"jwks": JWKS, "fhir_servers": ["http://10.0.0.5:8080/fhir"]}
    }

    issuer = issuers()["https://ehr.example.org"]

    assert issuer.fhir_server_allowed("http://10.0.0.5:8080/fhir/") is True
    assert issuer.fhir_server_allowed("https://fhir.example.org/r4") is False


def test_issuer_medication_codes_are_read_as_system_and_code_pairs(settings):
    settings.CDS_HOOKS_ISSUERS = {
        "https://ehr.example.org": {
            "jwks": JWKS,
            "medication_codes": [
                {"system": "https://formulary.example.org", "code": "ANAK-100", "display": "anakinra 100 mg"},
                {"system": "urn:oid:1.2.3.4", "code": "77"},
            ],
        }
    }

    issuer = issuers()["https://ehr.example.org"]

    assert issuer.medication_codes == frozenset(
        {("https://formulary.example.org", "ANAK-100"), ("urn:oid:1.2.3.4", "77")}
    )


def test_issuer_without_medication_codes_recognises_none(settings):
    settings.CDS_HOOKS_ISSUERS = {"https://ehr.example.org": {"jwks": JWKS}}

    assert issuers()["https://ehr.example.org"].medication_codes == frozenset()


def test_issuer_tenants_map_to_institutions_with_the_issuer_institution_for_the_rest(settings):
    settings.CDS_HOOKS_ISSUERS = {
        "https://ehr.example.org": {
            "jwks": JWKS,
            "institution": "cnh",
            "tenants": {"east": {"institution": "chop"}, "closed-ward": {}, "paused": {"institution": None}},
        }
    }

    issuer = issuers()["https://ehr.example.org"]

    assert [issuer.institution_for(t) for t in ("east", "closed-ward", "paused", "west", "")] == [
        "chop",
        None,
        None,
        "cnh",
        "cnh",
    ]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"medication_codes": {"system": "https://f", "code": "1"}},
            "CDS_HOOKS_ISSUERS: issuer 'https://a'.medication_codes must be a list of {system, code} objects.",
        ),
        (
            {"medication_codes": [{"system": "https://f", "code": ""}]},
            "CDS_HOOKS_ISSUERS: issuer 'https://a'.medication_codes[0] needs a `system` (a URI, as in a FHIR Coding) "
            "and a non-empty `code`.",
        ),
        (
            {"medication_codes": [{"code": "1"}]},
            "CDS_HOOKS_ISSUERS: issuer 'https://a'.medication_codes[0] needs a `system` (a URI, as in a FHIR Coding) "
            "and a non-empty `code`.",
        ),
        (
            {"medication_codes": [{"system": "https://f", "code": "1", "version": "2"}]},
            "CDS_HOOKS_ISSUERS: issuer 'https://a'.medication_codes[0] has unknown keys ['version'].",
        ),
        (
            {"tenants": ["east"]},
            "CDS_HOOKS_ISSUERS: issuer 'https://a'.tenants must be an object keyed by tenant id.",
        ),
        (
            {"tenants": {"east": "chop"}},
            "CDS_HOOKS_ISSUERS: issuer 'https://a'.tenants['east'] must be an object.",
        ),
        (
            {"tenants": {"east": {"institution": ""}}},
            "CDS_HOOKS_ISSUERS: issuer 'https://a'.tenants['east'].institution must be an institution slug.",
        ),
        (
            {"tenants": {"east": {"instituton": "chop"}}},
            "CDS_HOOKS_ISSUERS: issuer 'https://a'.tenants['east'] has unknown keys ['instituton'].",
        ),
        (
            {"tenants": {"": {"institution": "chop"}}},
            "CDS_HOOKS_ISSUERS: issuer 'https://a'.tenants has an empty tenant id.",
        ),
    ],
)
def test_issuer_codes_and_tenants_malformed_refuse_with_a_clear_message(settings, raw, message):
    settings.CDS_HOOKS_ISSUERS = {"https://a": {"jwks": JWKS, **raw}}

    with pytest.raises(ImproperlyConfigured) as error:
        issuers()

    assert str(error.value) == message


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


@pytest.mark.parametrize(
    ("site_url", "debug"),
    [
        ("", False),
        ("https://cds.example.org", False),
        ("https://cds.example.org:8443/", False),
        ("http://127.0.0.1:8000", True),
    ],
)
def test_site_url_empty_or_a_base_url_is_accepted(site_url, debug):
    assert site_url_problem(site_url, debug=debug) is None


@pytest.mark.parametrize(
    ("site_url", "debug", "message"),
    [
        (
            "cds.example.org",
            True,
            "SITE_URL must be an absolute http(s) URL such as https://cds.example.org, not 'cds.example.org'.",
        ),
        (
            "ftp://cds.example.org",
            True,
            "SITE_URL must be an absolute http(s) URL such as https://cds.example.org, not 'ftp://cds.example.org'.",
        ),
        (
            "https://cds.example.org/anakinra",
            False,
            "SITE_URL must be scheme://host[:port] with no path, query or fragment (the service is served at the "
            "root), not 'https://cds.example.org/anakinra'.",
        ),
        (
            "https://cds.example.org?x=1",
            False,
            "SITE_URL must be scheme://host[:port] with no path, query or fragment (the service is served at the "
            "root), not 'https://cds.example.org?x=1'.",
        ),
        ("http://cds.example.org", False, "SITE_URL must use https when DEBUG is false, not 'http://cds.example.org'."),
        ("https://cds.example.org:port", False, "SITE_URL is not a valid URL: 'https://cds.example.org:port'."),
        (
            "https://user:pw@cds.example.org",
            False,
            "SITE_URL must not contain credentials: https://...@cds.example.org.",
        ),
    ],
)
def test_site_url_malformed_fails_the_system_check(settings, site_url, debug, message):
    settings.SITE_URL = site_url
    settings.DEBUG = debug

    assert [(e.id, e.msg) for e in site_url_configured(None)] == [("cds_hooks.E002", message)]


def test_site_url_check_runs_with_manage_py_check(settings):
    settings.SITE_URL = "http://cds.example.org"
    settings.DEBUG = False

    with pytest.raises(SystemCheckError) as error:
        call_command("check")

    assert "cds_hooks.E002" in str(error.value)
