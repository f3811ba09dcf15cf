"""End to end over real HTTP: a test plays the EHR against the live server.

It signs its own JWTs (an EC P-384 key made here), reads discovery, calls order-select with a drafted
dose that is too high, takes the suggested corrected MedicationRequest and checks it against the app's
own answer for the same patient."""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests
from fhir.resources.R4B.medicationrequest import MedicationRequest

from accounts.services import api_token_create
from anakinra_cds import jsonutil
from tests.cds_hooks_rules import assert_conforms, assert_discovery_conforms
from tests.e2e.conftest import e2e_db
from tests.ehr_support import (
    ISSUER,
    anakinra_draft,
    bearer,
    body_json,
    claims,
    ec_key,
    full_prefetch,
    hook_body,
    sign,
    weight_bundle,
)
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, e2e_db]

ROUTE_CODES = {"IV": "47625008", "SC": "34206005"}


def bedside_result_for(live_server, patient: dict) -> dict:
    """The app's own recommendation for this patient, as the clinician sees it after the EHR's link.

    Read through the JSON API (the same engine and published protocol the bedside result page shows).
    After the bedside result page is merged, switch this helper to read that page instead."""
    user = UserFactory(username="bedside-e2e", role="clinician")
    _, key = api_token_create(user=user, name="e2e")
    response = requests.post(
        f"{live_server.url}/api/v1/recommendations",
        data=body_json(patient),
        headers={"Authorization": f"Token {key}", "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    (recommendation,) = jsonutil.loads(response.content)["recommendations"]
    return recommendation


def test_ehr_too_high_anakinra_dose_is_corrected_to_the_apps_own_result(live_server, settings):
    # Arrange: this EHR is trusted, with its key, and checks orders against the cnh protocol.
    key = ec_key(kid="ehr-e2e")
    settings.SITE_URL = ""
    settings.CDS_HOOKS_ISSUERS = {ISSUER: {"jwks": key.jwks(), "institution": "cnh"}}
    discovery_url = f"{live_server.url}/cds-services"

    # Act: discovery, then order-select with 100 mg IV every 6 hours for a 20 kg child.
    discovery = requests.get(discovery_url, headers=bearer(sign(key, claims(aud=discovery_url))), timeout=10)
    assert discovery.status_code == 200
    document = discovery.json()
    assert_discovery_conforms(document)
    service = next(s for s in document["services"] if s["hook"] == "order-select")
    service_url = f"{live_server.url}/cds-services/{service['id']}"
    body = hook_body(anakinra_draft(Decimal("100")), prefetch=full_prefetch(weight_bundle(Decimal("20"))))
    answer = requests.post(
        service_url,
        data=body_json(body),
        headers={**bearer(sign(key, claims(aud=service_url))), "Content-Type": "application/json"},
        timeout=10,
    )

    # Assert: a conforming critical card whose suggestion is the app's own dose for this patient.
    assert answer.status_code == 200
    response = jsonutil.loads(answer.content)
    assert_conforms(response)
    (card,) = response["cards"]
    assert card["indicator"] == "critical"
    corrected = card["suggestions"][0]["actions"][0]["resource"]
    MedicationRequest.model_validate(corrected)
    (dosage,) = corrected["dosageInstruction"]
    ordered, calculated = dosage["doseAndRate"]

    bedside = bedside_result_for(
        live_server,
        {
            "weight_kg": 20,
            "age_years": 8,
            "toxicities": [{"type": "CRS", "grade": 3}],
            "prior_tocilizumab_doses": 1,
            "prior_steroids": True,
            "institution": "cnh",
        },
    )
    (step,) = bedside["steps"]
    assert bedside["status"] == "indicated"
    assert (
        card["source"]["label"]
        == f"Children's National Hospital anakinra protocol, version {bedside['protocol']['version']}"
    )
    assert calculated["doseQuantity"]["value"] == step["per_dose_mg"]["low"] == step["per_dose_mg"]["high"]
    assert (ordered["doseQuantity"]["value"], ordered["doseQuantity"]["code"]) == (step["amount"]["low"], "mg/kg")
    assert dosage["timing"]["repeat"]["period"] == step["interval_hours"]
    assert [c["code"] for c in dosage["route"]["coding"]] == [ROUTE_CODES[r] for r in step["routes"]]
    assert dosage["maxDosePerPeriod"]["numerator"]["value"] == step["per_day_mg"]["high"]
    assert dosage["text"] == step["order_text"]
    assert corrected["id"] == body["context"]["draftOrders"]["entry"][0]["resource"]["id"]
