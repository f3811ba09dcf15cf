"""End to end over real HTTP: a test plays the EHR against the live server.

It signs its own JWTs (an EC P-384 key made here), reads discovery, calls order-select with a drafted
dose that is too high, takes the suggested corrected MedicationRequest and checks it against the app's
own answer for the same patient."""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests
from fhir.resources.R4B.medicationrequest import MedicationRequest

from anakinra_cds import jsonutil
from tests.cds_hooks_rules import assert_conforms, assert_discovery_conforms
from tests.e2e import wizard
from tests.e2e.conftest import e2e_db, login
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


def bedside_result_from_card_link(page, live_server, link_url: str) -> dict[str, str]:
    """Follow the card's link as the clinician would: the wizard opens with what the EHR sent (weight,
    age, center); the clinician adds what the EHR cannot send (the grade, prior treatment, safety
    answers) and finishes. Returns what the bedside result page shows for the EHR's center."""
    UserFactory(username="ehr-clinician", role="clinician")
    login(page, live_server, username="ehr-clinician")
    wizard.start_from_link(page, link_url)
    assert (page.get_by_label("Weight (kg)").input_value(), page.get_by_label("Age (years)").input_value()) == (
        "20",
        "8",
    )
    patient = {
        "car_target": "CD19",
        "fever": True,
        "hypotension": True,
        "prior_tocilizumab_doses": 1,
        "prior_steroids": True,
        "toxicities": [{"type": "CRS", "grade": 3}],
        "institution": "cnh",
    }
    wizard.walk(page, patient, fill_patient_step=False)
    return wizard.first_step_shown(page, "cnh")


def test_ehr_too_high_anakinra_dose_is_corrected_to_the_apps_own_result(watched_page, live_server, settings):
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
    calculated, ordered = dosage["doseAndRate"]

    # The card's link opens the bedside wizard with the EHR's inputs; the bedside result for the same
    # patient (CRS grade 3 after tocilizumab and steroids) must give the dose the suggestion ordered.
    (link,) = card["links"]
    assert link["type"] == "absolute"
    shown = bedside_result_from_card_link(watched_page, live_server, link["url"])
    # 2 mg/kg x 20 kg = 40 mg IV every 6 hours (CNH)
    assert shown["order"] == "anakinra 40 mg IV every 6 hours (2 mg/kg/dose; max 100 mg/dose, 400 mg/day)"
    assert shown["per_dose"] == f"{calculated['doseQuantity']['value']} mg" == "40 mg"
    assert (ordered["doseQuantity"]["value"], ordered["doseQuantity"]["code"]) == (2, "mg/kg")
    assert dosage["timing"]["repeat"]["period"] == 6
    assert [c["code"] for c in dosage["route"]["coding"]] == [ROUTE_CODES["IV"]]
    assert dosage["text"] == shown["order"]
    assert corrected["id"] == body["context"]["draftOrders"]["entry"][0]["resource"]["id"]
