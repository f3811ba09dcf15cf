"""smart.prefill and smart.oauth's pure parts: what is filled in and what each value says, the PKCE pair,
the scopes asked for, and whose fhirUser is accepted."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, date, datetime
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from cds_hooks.fhir_read import AllergyFindings, Weight
from cds_hooks.smart_config import SmartRegistration, UserMapping
from smart import oauth
from smart.oauth import LaunchFailed, SmartConfiguration
from smart.prefill import Reading, Status, age_reading, allergy_reading, patient_name, weight_reading

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
QUESTION = "Known hypersensitivity to E. coli-derived proteins or any component of anakinra"
FHIR = "https://ehr.example.org/fhir/r4"


def _weight(effective: str, kg: str = "20") -> Weight:
    return Weight(kg=Decimal(kg), effective=effective, problem="")


def test_weight_reading_recorded_today_is_filled_with_its_date():
    reading = weight_reading(
        weight=_weight("2026-11-24T06:00:00Z", "20.5"), born=date(2018, 3, 1), now=NOW, max_age_days=7
    )

    assert reading == Reading(
        "weight_kg",
        "Weight (kg)",
        "20.5",
        "20.5 kg",
        "From the EHR, dated 2026-11-24 (today): the latest body weight.",
        Status.FILLED,
    )


@pytest.mark.parametrize(
    ("effective", "why"),
    [
        ("", "has no date"),
        ("2017-01-05", "is dated 2017-01-05, before the birth date"),
        ("2026-11-10T08:00:00Z", "is dated 2026-11-10 (14 days ago), older than 7 days"),
    ],
)
def test_weight_reading_that_may_not_be_current_is_shown_not_filled(effective, why):
    reading = weight_reading(weight=_weight(effective), born=date(2018, 3, 1), now=NOW, max_age_days=7)

    assert (reading.status, reading.answer, reading.shown) == (Status.ASK, "", "20 kg")
    assert reading.note == f"From the EHR: the latest body weight, 20 kg, {why}. Enter a current weight."


def test_age_reading_from_a_full_birth_date_and_a_partial_one():
    filled = age_reading(patient={"resourceType": "Patient", "birthDate": "2025-10-01"}, problem="", age=1)
    partial = age_reading(patient={"resourceType": "Patient", "birthDate": "2018"}, problem="", age=None)

    assert (filled.answer, filled.shown, filled.note) == (
        "1",
        "1 year",
        "From the EHR, birth date 2025-10-01: 1 year old today.",
    )
    assert (partial.status, partial.note) == (
        Status.NONE,
        "The EHR's patient record has only a partial birth date (2018). Enter the age.",
    )


@pytest.mark.parametrize(
    ("findings", "status", "answer", "note"),
    [
        (
            AllergyFindings(recorded=[], unidentified=0, others=()),
            Status.FILLED,
            "false",
            "From the EHR's allergy list, read 2026-11-24 09:30 UTC: no anakinra or E. coli allergy recorded "
            "(no current allergies at all).",
        ),
        (
            AllergyFindings(recorded=[], unidentified=1, others=("peanut",)),
            Status.ASK,
            "",
            "The EHR's allergy list (read 2026-11-24 09:30 UTC) has 1 current record naming no substance that can "
            "be read: any could be anakinra. Answer it yourself.",
        ),
        (
            AllergyFindings(recorded=[], unidentified=0, others=("Escherichia coli L-asparaginase",)),
            Status.ASK,
            "",
            "The EHR's allergy list (read 2026-11-24 09:30 UTC) records “Escherichia coli L-asparaginase”: whether "
            "that is a hypersensitivity to E. coli-derived proteins is yours to judge. Answer it yourself.",
        ),
        (
            AllergyFindings(recorded=["anakinra"], unidentified=2, others=()),
            Status.FILLED,
            "true",
            "From the EHR's allergy list, read 2026-11-24 09:30 UTC: current anakinra allergy recorded (“anakinra”).",
        ),
    ],
)
def test_allergy_reading_answers_only_from_a_whole_readable_list(findings, status, answer, note):
    reading = allergy_reading(findings=findings, problem="", read_at=NOW)

    assert (reading.question, reading.status, reading.answer, reading.note) == (QUESTION, status, answer, note)


def test_allergy_reading_of_a_list_read_in_part_is_left_to_the_clinician():
    findings = AllergyFindings(recorded=[], unidentified=0, others=())

    reading = allergy_reading(findings=findings, problem="its total is 3 entries, but 1 was sent", read_at=NOW)

    assert (reading.status, reading.answer, reading.note) == (
        Status.UNREADABLE,
        "",
        "The EHR's allergy list could not be read in full (its total is 3 entries, but 1 was sent). "
        "Answer it yourself.",
    )


def test_patient_name_prefers_the_official_name():
    patient = {
        "resourceType": "Patient",
        "name": [
            {"use": "nickname", "text": "Robbie"},
            {"use": "official", "given": ["Robin", "A."], "family": "Okafor"},
        ],
    }

    assert (patient_name(patient), patient_name({"resourceType": "Patient"})) == ("Robin A. Okafor", "")


# --- smart.oauth -------------------------------------------------------------------------------------------


def _configuration(*capabilities: str) -> SmartConfiguration:
    return SmartConfiguration(
        authorization_endpoint="https://ehr.example.org/auth/authorize?tenant=east",
        token_endpoint="https://ehr.example.org/auth/token",
        issuer="https://ehr.example.org/auth",
        jwks_uri="https://ehr.example.org/auth/jwks",
        capabilities=capabilities,
    )


def test_pkce_pair_is_a_43_character_verifier_and_its_s256_challenge():
    first, second = oauth.pkce_pair(), oauth.pkce_pair()

    digest = hashlib.sha256(first.verifier.encode()).digest()
    assert first.challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert (len(first.verifier), first.verifier == second.verifier) == (43, False)


def test_requested_scope_for_each_launch_and_scope_version():
    assert oauth.requested_scope(configuration=_configuration("permission-v1"), ehr_launch=False) == (
        "launch/patient openid fhirUser patient/Patient.read patient/Observation.read patient/AllergyIntolerance.read"
    )
    assert oauth.requested_scope(configuration=_configuration("permission-v2"), ehr_launch=True).split()[:4] == [
        "launch",
        "openid",
        "fhirUser",
        "patient/Patient.r",
    ]


def test_authorize_url_keeps_the_endpoints_own_query():
    registration = SmartRegistration(
        iss="https://ehr.example.org",
        client_id="anakinra-cds",
        client_secret=None,
        fhir_servers=(FHIR,),
        ehr_origins=(),
        user_mapping=UserMapping.CREATE,
    )

    url = oauth.authorize_url(
        configuration=_configuration(),
        registration=registration,
        fhir_server=FHIR,
        redirect_uri="https://cds.example.org/smart/callback",
        scope="launch openid",
        state="s",
        nonce="n",
        code_challenge="c",
        launch="L",
    )

    assert url.startswith("https://ehr.example.org/auth/authorize?tenant=east&response_type=code&")
    assert parse_qs(urlsplit(url).query)["aud"] == [FHIR]


@pytest.mark.parametrize(
    ("fhir_user", "expected"),
    [
        ("Practitioner/123", f"{FHIR}/Practitioner/123"),
        ("https://idp.example.org/fhir/Practitioner/abc", "https://idp.example.org/fhir/Practitioner/abc"),
    ],
)
def test_practitioner_url_resolves_a_relative_fhir_user_against_the_fhir_server(fhir_user, expected):
    assert oauth.practitioner_url(claims={"fhirUser": fhir_user}, fhir_server=FHIR) == expected


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({}, "The EHR did not say which user launched the app (no fhirUser in the ID token)."),
        (
            {"fhirUser": "RelatedPerson/9"},
            "This app is for clinicians: the EHR user is a RelatedPerson, not a Practitioner.",
        ),
    ],
)
def test_practitioner_url_refuses_anyone_but_a_practitioner(claims, message):
    with pytest.raises(LaunchFailed) as error:
        oauth.practitioner_url(claims=claims, fhir_server=FHIR)

    assert str(error.value) == message


def test_discovery_of_a_server_on_plain_http_is_not_called():
    with pytest.raises(LaunchFailed) as error:
        oauth.discover(fhir_server="http://ehr.example.org/fhir")

    assert str(error.value) == "The EHR's SMART configuration is not on https (http): it was not called."
