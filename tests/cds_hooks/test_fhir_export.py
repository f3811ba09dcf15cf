"""GET /api/v1/assessments/{id}/fhir: draft MedicationRequests per recommended step, checked with the
fhir.resources R4B models and, for what that library does not enforce, with explicit rules."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.medicationrequest import MedicationRequest

from anakinra_cds import jsonutil

pytestmark = pytest.mark.integration

UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
SNOMED_ROUTES = {"47625008", "34206005"}
UCUM_CODES = {"mg", "mg/kg", "d"}
DOSE_RATE_TYPE = "http://terminology.hl7.org/CodeSystem/dose-rate-type"
CARHLH_GRADE_3 = {
    "weight_kg": 20,
    "age_years": 8,
    "toxicities": [{"type": "carHLH", "grade": 3}],
    "prior_tocilizumab_doses": 0,
    "prior_steroids": False,
}


def _quantities(dosage: dict) -> list[dict]:
    found = []
    for item in dosage.get("doseAndRate", []):
        if "doseQuantity" in item:
            found.append(item["doseQuantity"])
        if "doseRange" in item:
            found.extend([item["doseRange"]["low"], item["doseRange"]["high"]])
    if "maxDosePerAdministration" in dosage:
        found.append(dosage["maxDosePerAdministration"])
    if "maxDosePerPeriod" in dosage:
        found.extend([dosage["maxDosePerPeriod"]["numerator"], dosage["maxDosePerPeriod"]["denominator"]])
    return found


def fhir_rule_problems(resource: dict[str, Any]) -> list[str]:
    """What fhir.resources does not check: status, intent, periodUnit, UCUM units, SNOMED routes."""
    problems = []
    if (resource.get("status"), resource.get("intent")) != ("draft", "proposal"):
        problems.append(f"status/intent must be draft/proposal, not {resource.get('status')}/{resource.get('intent')}")
    for dosage in resource.get("dosageInstruction", []):
        repeat = dosage.get("timing", {}).get("repeat")
        if repeat is not None and repeat.get("periodUnit") != "h":
            problems.append(f"periodUnit must be h, not {repeat.get('periodUnit')!r}")
        codings = dosage.get("route", {}).get("coding", [])
        if [(c["system"], c["code"] in SNOMED_ROUTES) for c in codings] != [(SNOMED, True)]:
            problems.append(f"route must be one SNOMED CT IV or subcutaneous code, not {codings}")
        for quantity in _quantities(dosage):
            if quantity.get("system") != UCUM or quantity.get("code") not in UCUM_CODES:
                problems.append(f"quantity not in UCUM mg, mg/kg or d: {quantity}")
            if quantity.get("unit") != quantity.get("code"):
                problems.append(f"unit and code differ: {quantity}")
        types = [(c["system"], c["code"]) for d in dosage.get("doseAndRate", []) for c in d["type"]["coding"]]
        if types and types != [(DOSE_RATE_TYPE, "calculated"), (DOSE_RATE_TYPE, "ordered")]:
            problems.append(f"doseAndRate types must be calculated (mg, first) then ordered, not {types}")
    return problems


def _bundle(token_client: Client, request: dict) -> dict:
    created = token_client.post("/api/v1/recommendations", json.dumps(request), content_type="application/json")
    assert created.status_code == 200, created.content
    assessment_id = json.loads(created.content)["assessment_id"]
    response = token_client.get(f"/api/v1/assessments/{assessment_id}/fhir")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json"
    bundle = jsonutil.loads(response.content)
    Bundle.model_validate(bundle)
    for entry in bundle.get("entry", []):
        MedicationRequest.model_validate(entry["resource"])
        assert fhir_rule_problems(entry["resource"]) == []
    return bundle


def _by_protocol(bundle: dict) -> list[tuple[str, str]]:
    return [
        (entry["resource"]["instantiatesUri"][0], entry["resource"]["dosageInstruction"][0]["route"]["text"])
        for entry in bundle["entry"]
    ]


def test_assessment_fhir_proposes_only_recommended_steps_one_per_route(token_client):
    bundle = _bundle(token_client, CARHLH_GRADE_3)

    assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "collection")
    assert _by_protocol(bundle) == [
        ("http://testserver/protocols/nih/", "subcut"),
        ("http://testserver/protocols/nih/", "subcut"),
        ("http://testserver/protocols/stjude/", "IV"),
        ("http://testserver/protocols/stjude/", "subcut"),
    ]


def test_assessment_fhir_alternatives_share_no_group_and_each_names_its_choice(token_client):
    # Review finding: one groupIdentifier on every proposal means, in FHIR, orders authorised together.
    bundle = _bundle(token_client, CARHLH_GRADE_3)

    resources = [e["resource"] for e in bundle["entry"]]
    assert ["groupIdentifier" in r for r in resources] == [False, False, False, False]
    assert [r["identifier"] for r in resources] == [
        [{"system": "urn:anakinra-cds:assessment-proposal", "value": f"{bundle['id']}/{where}"}]
        for where in ("nih/step-1/SC", "nih/step-2/SC", "stjude/step-1/IV", "stjude/step-1/SC")
    ]
    assert len({r["id"] for r in resources}) == 4
    assert [r["dosageInstruction"][0]["text"] for r in resources] == [
        "anakinra 160 to 200 mg/day subcut (8 to 10 mg/kg/day); frequency not specified by this protocol - "
        "confirm with pharmacy; regimen 1 of 2 alternatives: choose one regimen",
        "anakinra 100 to 140 mg/day subcut (5 to 7 mg/kg/day); frequency not specified by this protocol - "
        'confirm with pharmacy; taper: give after "Initial dosing, severe carHLH", not together with it; '
        "regimen 1 of 2 alternatives: choose one regimen",
        "anakinra 50 mg IV or subcut every 6 hours (10 mg/kg/day); this order: IV; choose one route (IV or subcut); "
        "regimen 2 of 2 alternatives: choose one regimen",
        "anakinra 50 mg IV or subcut every 6 hours (10 mg/kg/day); this order: subcut; choose one route "
        "(IV or subcut); regimen 2 of 2 alternatives: choose one regimen",
    ]
    assert resources[3]["note"][0]["text"] == (
        "Proposal 4 of 4 from this assessment. The proposals are alternatives, not an order set: order one regimen "
        "by one route, never two proposals together (a taper only after its regimen's dosing). This is regimen 2 "
        "of 2 alternative regimens: choose one regimen. This step is proposed once per route (IV or subcut); this "
        "proposal is subcut: choose one route."
    )
    assert resources[1]["note"][0]["text"].endswith(
        ' Taper: give after "Initial dosing, severe carHLH", not together with it.'
    )


def test_assessment_fhir_single_proposal_has_no_alternatives_note(token_client):
    request = CARHLH_GRADE_3 | {
        "toxicities": [{"type": "CRS", "grade": 3}],
        "prior_tocilizumab_doses": 1,
        "prior_steroids": True,
        "institution": "cnh",
    }

    (entry,) = _bundle(token_client, request)["entry"]

    assert entry["resource"]["note"][0]["text"].startswith("Children's National Hospital protocol, version 1:")
    assert entry["resource"]["dosageInstruction"][0]["text"] == (
        "anakinra 40 mg IV every 6 hours (2 mg/kg/dose; max 100 mg/dose, 400 mg/day)"
    )


def test_assessment_fhir_per_day_basis_with_an_interval_orders_per_dose(token_client):
    bundle = _bundle(token_client, CARHLH_GRADE_3)

    stjude_iv = bundle["entry"][2]["resource"]
    assert stjude_iv["medicationCodeableConcept"] == {"text": "anakinra"}
    assert stjude_iv["dosageInstruction"] == [
        {
            "text": (
                "anakinra 50 mg IV or subcut every 6 hours (10 mg/kg/day); this order: IV; choose one route "
                "(IV or subcut); regimen 2 of 2 alternatives: choose one regimen"
            ),
            "timing": {"repeat": {"frequency": 1, "period": 6, "periodUnit": "h"}},
            "route": {
                "coding": [{"system": SNOMED, "code": "47625008", "display": "Intravenous route"}],
                "text": "IV",
            },
            "doseAndRate": [
                {
                    "type": {"coding": [{"system": DOSE_RATE_TYPE, "code": "calculated", "display": "Calculated"}]},
                    "doseQuantity": {"value": 50, "unit": "mg", "system": UCUM, "code": "mg"},
                },
                {
                    "type": {"coding": [{"system": DOSE_RATE_TYPE, "code": "ordered", "display": "Ordered"}]},
                    "doseQuantity": {"value": Decimal("2.5"), "unit": "mg/kg", "system": UCUM, "code": "mg/kg"},
                },
            ],
            "maxDosePerAdministration": {"value": 50, "unit": "mg", "system": UCUM, "code": "mg"},
            "maxDosePerPeriod": {
                "numerator": {"value": 200, "unit": "mg", "system": UCUM, "code": "mg"},
                "denominator": {"value": 1, "unit": "d", "system": UCUM, "code": "d"},
            },
        }
    ]


def test_assessment_fhir_protocol_without_interval_invents_no_frequency(token_client):
    bundle = _bundle(token_client, CARHLH_GRADE_3)

    (dosage,) = bundle["entry"][0]["resource"]["dosageInstruction"]
    assert dosage == {
        "text": (
            "anakinra 160 to 200 mg/day subcut (8 to 10 mg/kg/day); frequency not specified by this protocol - "
            "confirm with pharmacy; regimen 1 of 2 alternatives: choose one regimen"
        ),
        "route": {
            "coding": [{"system": SNOMED, "code": "34206005", "display": "Subcutaneous route"}],
            "text": "subcut",
        },
        "maxDosePerPeriod": {
            "numerator": {"value": 200, "unit": "mg", "system": UCUM, "code": "mg"},
            "denominator": {"value": 1, "unit": "d", "system": UCUM, "code": "d"},
        },
    }


def test_assessment_fhir_capped_dose_keeps_ordered_and_calculated_apart(token_client):
    request = {
        **CARHLH_GRADE_3,
        "weight_kg": 60,
        "toxicities": [{"type": "CRS", "grade": 3}],
        "prior_tocilizumab_doses": 1,
        "prior_steroids": True,
        "institution": "cnh",
    }

    bundle = _bundle(token_client, request)

    (entry,) = bundle["entry"]
    (dosage,) = entry["resource"]["dosageInstruction"]
    assert [d["doseQuantity"]["value"] for d in dosage["doseAndRate"]] == [100, 2]
    assert dosage["maxDosePerAdministration"]["value"] == 100
    assert dosage["maxDosePerPeriod"]["numerator"]["value"] == 400
    notes = [n["text"] for n in entry["resource"]["note"]]
    assert "120 mg per dose is above the 100 mg/dose maximum" in notes


def test_assessment_fhir_decimals_are_exact_json_numbers(token_client):
    created = token_client.post(
        "/api/v1/recommendations",
        json.dumps(CARHLH_GRADE_3 | {"institution": "stjude"}),
        content_type="application/json",
    )
    assessment_id = json.loads(created.content)["assessment_id"]

    text = token_client.get(f"/api/v1/assessments/{assessment_id}/fhir").content.decode()

    assert '"doseQuantity":{"value":2.5,"unit":"mg/kg"' in text


def test_assessment_fhir_without_recommended_steps_is_an_empty_collection(token_client):
    bundle = _bundle(token_client, CARHLH_GRADE_3 | {"institution": "cnh"})

    assert "entry" not in bundle


def test_assessment_fhir_needs_authentication_and_a_known_id(token_client, client):
    created = token_client.post("/api/v1/recommendations", json.dumps(CARHLH_GRADE_3), content_type="application/json")
    assessment_id = json.loads(created.content)["assessment_id"]

    assert client.get(f"/api/v1/assessments/{assessment_id}/fhir").status_code == 401
    assert token_client.get("/api/v1/assessments/00000000-0000-0000-0000-000000000000/fhir").status_code == 404
    assert token_client.get("/api/v1/assessments/not-a-uuid/fhir").status_code == 404


def test_assessment_fhir_query_count(token_client, django_assert_num_queries):
    created = token_client.post("/api/v1/recommendations", json.dumps(CARHLH_GRADE_3), content_type="application/json")
    assessment_id = json.loads(created.content)["assessment_id"]

    with django_assert_num_queries(2):
        response = token_client.get(f"/api/v1/assessments/{assessment_id}/fhir")

    assert response.status_code == 200


def test_assessment_fhir_up_to_interval_is_a_most_often_not_a_fixed_schedule(token_client):
    request = CARHLH_GRADE_3 | {
        "toxicities": [{"type": "ICANS", "grade": 3}],
        "prior_steroids": True,
        "institution": "seattle",
    }

    (entry,) = _bundle(token_client, request)["entry"]

    (dosage,) = entry["resource"]["dosageInstruction"]
    assert dosage["text"] == (
        "anakinra 40 mg IV no more often than every 6 hours, at most 4 doses a day "
        "(2 mg/kg/dose; max 100 mg/dose, 400 mg/day)"
    )
    assert dosage["timing"] == {"repeat": {"frequency": 1, "period": 6, "periodUnit": "h"}}
    assert dosage["asNeededBoolean"] is True
    assert dosage["maxDosePerPeriod"]["numerator"]["value"] == 160


def test_assessment_fhir_fixed_interval_is_not_as_needed(token_client):
    request = CARHLH_GRADE_3 | {
        "toxicities": [{"type": "CRS", "grade": 3}],
        "prior_tocilizumab_doses": 1,
        "prior_steroids": True,
        "institution": "cnh",
    }

    (entry,) = _bundle(token_client, request)["entry"]

    assert "asNeededBoolean" not in entry["resource"]["dosageInstruction"][0]
