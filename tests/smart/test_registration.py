"""The `smart` key of a CDS_HOOKS_ISSUERS entry: parsed exactly, and anything wrong stops the start."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from cds_hooks.checks import issuers_configured
from cds_hooks.config import issuers
from cds_hooks.smart_config import SmartRegistration, UserMapping, smart_registration

pytestmark = pytest.mark.unit

ISS = "https://ehr.example.org"
FHIR = "https://ehr.example.org/fhir/r4"
PRACTITIONER = f"{FHIR}/Practitioner/123"


def _raw(**changes) -> dict:
    raw = {
        "client_id": "anakinra-cds",
        "client_type": "public",
        "fhir_servers": [FHIR + "/"],
        "ehr_origins": ["https://ehr.example.org"],
        "user_mapping": "create",
    }
    return {key: value for key, value in {**raw, **changes}.items() if value is not None}


def test_smart_registration_public_client_parses_every_key():
    assert smart_registration(ISS, _raw()) == SmartRegistration(
        iss=ISS,
        client_id="anakinra-cds",
        client_secret=None,
        fhir_servers=(FHIR,),
        ehr_origins=("https://ehr.example.org",),
        user_mapping=UserMapping.CREATE,
        users={},
    )


def test_smart_registration_confidential_client_reads_its_secret_from_the_environment(monkeypatch):
    monkeypatch.setenv("EHR_SMART_SECRET", "the-secret")

    registration = smart_registration(
        ISS,
        _raw(
            client_type="confidential",
            client_secret_env="EHR_SMART_SECRET",
            user_mapping="configured",
            users={PRACTITIONER: "drsmith"},
        ),
    )

    assert (registration.client_secret, registration.confidential, registration.users) == (
        "the-secret",
        True,
        {PRACTITIONER: "drsmith"},
    )
    assert "the-secret" not in repr(registration)


def test_smart_registration_secret_may_come_from_a_file(monkeypatch, tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-a-file\n")
    monkeypatch.setenv("EHR_SMART_SECRET_FILE", str(secret_file))

    registration = smart_registration(ISS, _raw(client_type="confidential", client_secret_env="EHR_SMART_SECRET"))

    assert registration.client_secret == "from-a-file"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"client_secret": "x"},
            "issuer 'https://ehr.example.org'.smart must not hold the secret: name its environment variable in "
            "client_secret_env.",
        ),
        ({"scopes": ["x"]}, "issuer 'https://ehr.example.org'.smart has unknown keys ['scopes']."),
        ({"client_id": ""}, "issuer 'https://ehr.example.org'.smart.client_id must be a non-empty string."),
        (
            {"client_type": "secret"},
            "issuer 'https://ehr.example.org'.smart.client_type must be 'public' or 'confidential', not 'secret'.",
        ),
        (
            {"client_type": "confidential"},
            "issuer 'https://ehr.example.org'.smart.client_secret_env must name the environment variable holding the "
            "secret.",
        ),
        (
            {"client_secret_env": "EHR_SMART_SECRET"},
            "issuer 'https://ehr.example.org'.smart.client_secret_env is for confidential clients only (client_type "
            "is 'public').",
        ),
        (
            {"user_mapping": "auto"},
            "issuer 'https://ehr.example.org'.smart.user_mapping must be 'configured' or 'create', not 'auto'.",
        ),
        (
            {"user_mapping": "configured"},
            "issuer 'https://ehr.example.org'.smart.users must map each EHR user's fhirUser URL to a local username.",
        ),
        (
            {"users": {PRACTITIONER: "drsmith"}},
            "issuer 'https://ehr.example.org'.smart.users is only read with user_mapping 'configured'.",
        ),
        (
            {"user_mapping": "configured", "users": {f"{FHIR}/Patient/1": "drsmith"}},
            "issuer 'https://ehr.example.org'.smart.users keys must be absolute Practitioner URLs "
            "(…/Practitioner/<id>), not 'https://ehr.example.org/fhir/r4/Patient/1'.",
        ),
        ({"fhir_servers": None}, "issuer 'https://ehr.example.org'.smart.fhir_servers must be a non-empty list"),
        (
            {"fhir_servers": ["http://ehr.example.org/fhir"]},
            "issuer 'https://ehr.example.org'.smart.fhir_servers must hold https URLs (http only to a loopback "
            "address), not 'http://ehr.example.org/fhir'.",
        ),
        (
            {"ehr_origins": ["https://ehr.example.org/chart"]},
            "issuer 'https://ehr.example.org'.smart.ehr_origins must hold origins such as https://ehr.example.org "
            "(no path), not 'https://ehr.example.org/chart'.",
        ),
    ],
)
def test_smart_registration_malformed_refuses_to_start_with_a_clear_message(changes, message):
    with pytest.raises(ImproperlyConfigured) as error:
        smart_registration(ISS, _raw(**changes))

    assert str(error.value).startswith(f"CDS_HOOKS_ISSUERS: {message}")


def test_smart_registration_confidential_without_its_secret_in_the_environment_refuses_to_start(monkeypatch):
    monkeypatch.delenv("EHR_SMART_SECRET", raising=False)

    with pytest.raises(ImproperlyConfigured) as error:
        smart_registration(ISS, _raw(client_type="confidential", client_secret_env="EHR_SMART_SECRET"))

    assert str(error.value) == (
        "CDS_HOOKS_ISSUERS: issuer 'https://ehr.example.org'.smart.client_secret_env names a secret that cannot be "
        "read: Set EHR_SMART_SECRET (or EHR_SMART_SECRET_FILE); it is required."
    )


def test_smart_registration_loopback_http_is_allowed_for_development():
    registration = smart_registration(
        ISS, _raw(fhir_servers=["http://127.0.0.1:8701/fhir"], ehr_origins=["http://localhost:8702"])
    )

    assert (registration.fhir_servers, registration.ehr_origins) == (
        ("http://127.0.0.1:8701/fhir",),
        ("http://localhost:8702",),
    )


def test_smart_only_registration_needs_no_cds_hooks_keys(settings):
    settings.CDS_HOOKS_ISSUERS = {ISS: {"smart": _raw()}}

    (issuer,) = issuers().values()

    assert (issuer.jwks, issuer.jwks_url, issuer.jku, issuer.smart.client_id) == (None, None, (), "anakinra-cds")


def test_smart_fhir_server_registered_twice_stops_the_start(settings):
    settings.CDS_HOOKS_ISSUERS = {ISS: {"smart": _raw()}, "https://other.example.org": {"smart": _raw(client_id="b")}}

    (error,) = issuers_configured(None)

    assert (error.id, error.msg) == (
        "cds_hooks.E001",
        "CDS_HOOKS_ISSUERS: the SMART FHIR server 'https://ehr.example.org/fhir/r4' is registered by both "
        "'https://ehr.example.org' and 'https://other.example.org'; a launch must name one registration.",
    )
