"""A card's corrected order keeps what the draft said besides the dose, and a medication named by reference is read
from an allowed FHIR server.

Every response is checked with the one CDS Hooks validator (tests/cds_hooks_rules.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest

from tests.cds_hooks_rules import conforming_cards, only_card
from tests.ehr_support import (
    ISSUER,
    ORDER_SELECT_PATH,
    anakinra_draft,
    full_prefetch,
    hook_body,
)

pytestmark = pytest.mark.integration


UCUM = "http://unitsofmeasure.org"


def test_corrected_order_keeps_bounds_counts_and_other_dosage_fields(ehr):
    draft = anakinra_draft(Decimal("1000"))
    old = draft["dosageInstruction"][0]
    old["timing"]["repeat"] = {
        "boundsDuration": {"value": 3, "unit": "d", "system": UCUM, "code": "d"},
        "count": 12,
        "countMax": 14,
        "frequency": 1,
        "period": 4,
        "periodUnit": "h",
        "timeOfDay": ["08:00:00"],
    }
    old["sequence"] = 1
    old["site"] = {"text": "left arm"}
    old["method"] = {"text": "slow push"}
    old["additionalInstruction"] = [{"text": "flush the line after"}]
    old["patientInstruction"] = "1000 mg every 4 hours"
    draft["dispenseRequest"] = {
        "quantity": {"value": 30, "unit": "vial"},
        "expectedSupplyDuration": {"value": 3, "unit": "d", "system": UCUM, "code": "d"},
    }

    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(draft, prefetch=full_prefetch())))

    action = card["suggestions"][0]["actions"][0]
    corrected = action["resource"]
    MedicationRequest.model_validate(corrected)
    (dosage,) = corrected["dosageInstruction"]
    assert dosage["timing"] == {
        "repeat": {
            "boundsDuration": {"value": 3, "unit": "d", "system": UCUM, "code": "d"},
            "count": 12,
            "countMax": 14,
            "frequency": 1,
            "period": 6,
            "periodUnit": "h",
        }
    }
    assert (dosage["sequence"], dosage["site"], dosage["method"], dosage["additionalInstruction"]) == (
        1,
        {"text": "left arm"},
        {"text": "slow push"},
        [{"text": "flush the line after"}],
    )
    assert "patientInstruction" not in dosage
    assert corrected["dispenseRequest"] == {
        "expectedSupplyDuration": {"value": 3, "unit": "d", "system": UCUM, "code": "d"}
    }
    assert action["description"].endswith("; the dispense quantity was removed, not recalculated")


def test_corrected_order_without_a_dispense_quantity_says_nothing_about_it(ehr):
    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(anakinra_draft(Decimal("1000")), prefetch=full_prefetch())))

    action = card["suggestions"][0]["actions"][0]
    assert "dispense" not in action["description"]
    assert "dispenseRequest" not in action["resource"]


UNIDENTIFIED_LOG = "CDS Hooks: 1 drafted medication order(s) could not be identified and were not checked"


def _referenced_draft(dose: Decimal) -> dict:
    draft = anakinra_draft(dose)
    del draft["medicationCodeableConcept"]
    draft["medicationReference"] = {"reference": "Medication/kin-1"}
    return draft


def test_medication_reference_is_read_from_the_allowed_fhir_server(ehr, settings, fake_ehr_server):
    settings.CDS_HOOKS_ISSUERS[ISSUER]["fhir_servers"] = [fake_ehr_server.url]
    fake_ehr_server.routes["/Medication/kin-1"] = (200, {"resourceType": "Medication", "code": {"text": "Kineret"}})
    body = hook_body(_referenced_draft(Decimal("1000")), prefetch=full_prefetch(), fhir_server=fake_ehr_server.url)

    card = only_card(ehr.post(ORDER_SELECT_PATH, body))

    assert card["indicator"] == "critical"
    assert fake_ehr_server.requests == [
        {"path": "/Medication/kin-1", "query": {}, "authorization": "Bearer fhir-access-token"}
    ]


def test_medication_reference_to_another_drug_gives_no_card_and_no_log(ehr, settings, fake_ehr_server, caplog):
    settings.CDS_HOOKS_ISSUERS[ISSUER]["fhir_servers"] = [fake_ehr_server.url]
    fake_ehr_server.routes["/Medication/kin-1"] = (200, {"resourceType": "Medication", "code": {"text": "tocilizumab"}})
    body = hook_body(_referenced_draft(Decimal("1000")), prefetch=full_prefetch(), fhir_server=fake_ehr_server.url)

    assert conforming_cards(ehr.post(ORDER_SELECT_PATH, body)) == []
    assert UNIDENTIFIED_LOG not in caplog.text


def test_medication_reference_without_an_allowed_server_is_counted_in_the_log(ehr, fake_ehr_server, caplog):
    body = hook_body(_referenced_draft(Decimal("1000")), prefetch=full_prefetch(), fhir_server=fake_ehr_server.url)

    assert conforming_cards(ehr.post(ORDER_SELECT_PATH, body)) == []
    assert fake_ehr_server.requests == []
    assert UNIDENTIFIED_LOG in caplog.text
    assert "fhir-access-token" not in caplog.text and "pat-123" not in caplog.text


def test_medication_coded_only_is_counted_in_the_log_without_patient_data(ehr, caplog):
    draft = anakinra_draft(Decimal("1000"))
    draft["medicationCodeableConcept"] = {
        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "72435"}]
    }

    assert conforming_cards(ehr.post(ORDER_SELECT_PATH, hook_body(draft, prefetch=full_prefetch()))) == []
    assert UNIDENTIFIED_LOG in caplog.text
    assert "72435" not in caplog.text and "pat-123" not in caplog.text
