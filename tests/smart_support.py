"""Shared by the SMART launch tests: a patient in the test EHR, the app's registration, and walking a launch
through the test EHR's real authorization server (tests/smart_ehr.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import requests

from tests.ehr_support import ISSUER
from tests.smart_ehr import EhrUser, LaunchContext, PatientRecord, TestEhr

CLIENT_ID = "anakinra-cds"
PATIENT_ID = "pat-smart-1"
PRACTITIONER = "Practitioner/prac-7"
SECRET_ENV = "TEST_EHR_SMART_CLIENT_SECRET"


def birth_date_for(age_years: int, *, today: date | None = None) -> str:
    """A birth date that makes the patient `age_years` old today (a month past the birthday)."""
    today = today or date.today()
    born = today.replace(year=today.year - age_years) - timedelta(days=31)
    return born.isoformat()


def instant(days_ago: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def weight_observation(value: Any, *, code: str = "kg", days_ago: int = 1, obs_id: str = "w1") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": obs_id,
        "status": "final",
        "category": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "effectiveDateTime": instant(days_ago),
        "valueQuantity": {"value": value, "unit": code, "system": "http://unitsofmeasure.org", "code": code},
    }


def allergy(name: str, *, status: str = "active") -> dict[str, Any]:
    return {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": status}]
        },
        "code": {"text": name},
        "patient": {"reference": f"Patient/{PATIENT_ID}"},
    }


def patient_record(
    *,
    age: int = 8,
    weight: Any = Decimal("20"),
    weight_code: str = "kg",
    weight_days_ago: int = 1,
    allergies: tuple[str, ...] = ("penicillin",),
) -> PatientRecord:
    resource = {
        "resourceType": "Patient",
        "id": PATIENT_ID,
        "name": [{"use": "official", "given": ["Robin"], "family": "Okafor"}],
        "birthDate": birth_date_for(age),
    }
    observations = [] if weight is None else [weight_observation(weight, code=weight_code, days_ago=weight_days_ago)]
    return PatientRecord(resource=resource, observations=observations, allergies=[allergy(n) for n in allergies])


def ehr_context(
    *, fhir_user: str = PRACTITIONER, app_context: str | None = None, tenant: str | None = None
) -> LaunchContext:
    return LaunchContext(
        user=EhrUser(sub="dreyes", fhir_user=fhir_user), patient=PATIENT_ID, app_context=app_context, tenant=tenant
    )


def registration(
    ehr: TestEhr,
    *,
    client_type: str = "public",
    user_mapping: str = "create",
    users: dict[str, str] | None = None,
    origins: bool = True,
) -> dict[str, Any]:
    smart: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "client_type": client_type,
        "fhir_servers": [ehr.fhir_base],
        "user_mapping": user_mapping,
    }
    if client_type == "confidential":
        smart["client_secret_env"] = SECRET_ENV
    if origins:
        smart["ehr_origins"] = [ehr.origin]
    if users is not None:
        smart["users"] = users
    return {ISSUER: {"institution": "cnh", "fhir_servers": [ehr.fhir_base], "smart": smart}}


def authorize(authorize_url: str) -> str:
    """The EHR's authorization endpoint, as the browser would visit it (the EHR user is signed in there);
    returns where it sends the browser back (the app's redirect URI with code and state, or an error)."""
    answer = requests.get(authorize_url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"
