"""The standards review's defects (issue 6 review): duplicates, every dosage instruction, no weight,
old weights, no allergy data, feedback on unknown cards, corrected orders, medication references.

Every response is checked with the one CDS Hooks validator (tests/cds_hooks_rules.py)."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest

from tests.cds_hooks_rules import conforming_cards, only_card
from tests.ehr_support import (
    ISSUER,
    ORDER_SELECT_PATH,
    ORDER_SIGN_PATH,
    anakinra_draft,
    full_prefetch,
    hook_body,
    recent,
    weight_bundle,
)

pytestmark = pytest.mark.integration

UCUM = "http://unitsofmeasure.org"


# --- Every dosage instruction, dose ranges and mass units (item 2) ----------------------------------


def test_order_select_second_dosage_instruction_above_the_maximum_is_critical(ehr):
    draft = anakinra_draft(Decimal("40"))
    extra = copy.deepcopy(draft["dosageInstruction"][0])
    extra["doseAndRate"] = [{"doseQuantity": {"value": 2000, "unit": "mg", "system": UCUM, "code": "mg"}}]
    draft["dosageInstruction"].append(extra)

    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(draft, prefetch=full_prefetch())))

    assert card["indicator"] == "critical"
    assert card["summary"].startswith("Anakinra 2000 mg exceeds the Children's National Hospital protocol maximum")
    assert (
        "The most the draft states for one dose (in any dosage instruction or dose range) is 2000 mg." in card["detail"]
    )


def test_order_select_dose_range_high_above_the_maximum_is_critical(ehr):
    draft = anakinra_draft(
        dose_and_rate=[
            {
                "doseRange": {
                    "low": {"value": 100, "unit": "mg", "system": UCUM, "code": "mg"},
                    "high": {"value": 3000, "unit": "mg", "system": UCUM, "code": "mg"},
                }
            }
        ]
    )

    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(draft, prefetch=full_prefetch())))

    assert card["indicator"] == "critical"
    assert "3000 mg exceeds" in card["summary"]


def test_order_select_dose_in_grams_is_converted_and_critical_when_above(ehr):
    card = only_card(
        ehr.post(ORDER_SELECT_PATH, hook_body(anakinra_draft(Decimal("2"), unit="g"), prefetch=full_prefetch()))
    )

    assert card["indicator"] == "critical"
    assert card["summary"].startswith("Anakinra 2000 mg exceeds")


def test_order_select_second_dosage_within_the_maximum_is_never_a_match(ehr):
    draft = anakinra_draft(Decimal("40"))
    draft["dosageInstruction"].append(copy.deepcopy(draft["dosageInstruction"][0]))

    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(draft, prefetch=full_prefetch())))

    assert card["indicator"] == "warning"
    assert "could match" in card["summary"]


# --- More than one anakinra draft (item 1) ------------------------------------------------------------


def test_order_sign_two_protocol_doses_together_above_the_daily_maximum_are_critical(ehr):
    first, second = anakinra_draft(Decimal("40"), draft_id="a1"), anakinra_draft(Decimal("40"), draft_id="a2")

    cards = conforming_cards(
        ehr.post(ORDER_SIGN_PATH, hook_body(first, second, hook="order-sign", prefetch=full_prefetch()))
    )

    assert [c["indicator"] for c in cards] == ["critical", "warning", "warning"]
    assert cards[0]["summary"] == "More than one anakinra order: together 320 mg/day, above the protocol maximum"
    assert [c["summary"].endswith("; more than one anakinra order") for c in cards] == [False, True, True]
    assert "Together they are above the protocol maximum for 20 kg (160 mg/day)." in cards[0]["detail"]


def test_order_select_counts_unselected_anakinra_drafts_too(ehr):
    first, second = anakinra_draft(Decimal("40"), draft_id="a1"), anakinra_draft(Decimal("40"), draft_id="a2")
    body = hook_body(first, second, prefetch=full_prefetch())
    body["context"]["selections"] = ["MedicationRequest/a1"]

    cards = conforming_cards(ehr.post(ORDER_SELECT_PATH, body))

    assert [c["indicator"] for c in cards] == ["critical", "warning"]
    assert "info" not in {c["indicator"] for c in cards}


def test_order_sign_two_small_anakinra_drafts_within_the_maximum_are_a_warning(ehr):
    first = anakinra_draft(Decimal("10"), draft_id="a1", every_hours=24)
    second = anakinra_draft(Decimal("10"), draft_id="a2", every_hours=24)

    cards = conforming_cards(
        ehr.post(ORDER_SIGN_PATH, hook_body(first, second, hook="order-sign", prefetch=full_prefetch()))
    )

    assert cards[0]["indicator"] == "warning"
    assert cards[0]["summary"] == "More than one anakinra order (2): together 20 mg/day; check only one is meant"
    assert "info" not in {c["indicator"] for c in cards}


# --- No usable weight: the stated caps still hold (item 3) ----------------------------------------------


@pytest.mark.parametrize(
    "weight", [None, weight_bundle(Decimal("44"), code="[oz_av]"), weight_bundle(Decimal("400"))], ids=str
)
def test_no_usable_weight_dose_above_the_stated_per_dose_cap_is_critical(ehr, weight):
    prefetch = full_prefetch()
    prefetch["weight"] = weight

    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(anakinra_draft(Decimal("1000")), prefetch=prefetch)))

    assert card["indicator"] == "critical"
    assert card["summary"] == "Anakinra draft is above the protocol's stated cap; weight unavailable"
    assert "- It is above the protocol's stated cap of 100 mg per dose." in card["detail"].splitlines()


def test_no_usable_weight_per_day_cap_comes_from_the_protocol_data(ehr, settings):
    settings.CDS_HOOKS_ISSUERS[ISSUER]["institution"] = "chop"  # a per-day cap (400 mg) and no per-dose cap
    prefetch = full_prefetch()
    prefetch["weight"] = None

    card = only_card(
        ehr.post(ORDER_SELECT_PATH, hook_body(anakinra_draft(Decimal("150"), every_hours=6), prefetch=prefetch))
    )

    assert card["indicator"] == "critical"
    assert "- It is above the protocol's stated cap of 400 mg per day." in card["detail"].splitlines()
    assert "per dose." not in card["detail"]


def test_no_usable_weight_dose_within_the_stated_caps_stays_a_warning(ehr):
    prefetch = full_prefetch()
    prefetch["weight"] = None

    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(anakinra_draft(Decimal("50")), prefetch=prefetch)))

    assert card["indicator"] == "warning"
    assert card["summary"] == "No usable weight in kg from the EHR: the anakinra dose was not checked"


# --- An old, undated or impossible weight (item 4) --------------------------------------------------------


def test_old_weight_raises_a_match_to_a_warning_naming_its_date(ehr):
    prefetch = full_prefetch(weight_bundle(Decimal("20"), when="2019-01-01T08:00:00Z"))

    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(anakinra_draft(Decimal("40")), prefetch=prefetch)))

    assert card["indicator"] == "warning"
    assert card["summary"].endswith("; weight from 2019-01-01")
    assert "matches" in card["summary"]
    assert "The weight may not be current (weight from 2019-01-01)" in card["detail"]


def test_undated_weight_raises_a_match_to_a_warning(ehr):
    prefetch = full_prefetch()
    del prefetch["weight"]["entry"][0]["resource"]["effectiveDateTime"]

    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(anakinra_draft(Decimal("40")), prefetch=prefetch)))

    assert card["indicator"] == "warning"
    assert card["summary"].endswith("; weight undated")


def test_weight_dated_before_birth_is_a_warning(ehr):
    prefetch = full_prefetch(weight_bundle(Decimal("20"), when="2017-06-01"))

    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(anakinra_draft(Decimal("40")), prefetch=prefetch)))

    assert card["indicator"] == "warning"
    assert card["summary"].endswith("; weight dated 2017-06-01, before birth")


def test_weight_within_the_configured_age_stays_a_match(ehr, settings):
    settings.CDS_HOOKS_WEIGHT_MAX_AGE_DAYS = 30
    prefetch = full_prefetch(weight_bundle(Decimal("20"), when=recent(days=10)))

    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(anakinra_draft(Decimal("40")), prefetch=prefetch)))

    assert card["indicator"] == "info"
    assert "weight from" not in card["summary"]


def test_weight_older_than_the_configured_age_is_a_warning(ehr, settings):
    settings.CDS_HOOKS_WEIGHT_MAX_AGE_DAYS = 3
    when = recent(days=10)
    prefetch = full_prefetch(weight_bundle(Decimal("20"), when=when))

    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(anakinra_draft(Decimal("40")), prefetch=prefetch)))

    assert card["indicator"] == "warning"
    assert card["summary"].endswith(f"; weight from {when[:10]}")


# --- No allergy data (item 5) ----------------------------------------------------------------------------


def test_no_allergy_data_turns_a_match_into_a_warning_that_says_so(ehr):
    prefetch = full_prefetch()
    del prefetch["allergies"]

    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(anakinra_draft(Decimal("40")), prefetch=prefetch)))

    assert card["indicator"] == "warning"
    assert card["summary"] == (
        "Anakinra 40 mg matches the protocol for 20 kg; indication not assessed; anakinra allergy not checked"
    )
    assert "| Anakinra allergy | not checked: no allergy data from the EHR | AllergyIntolerance |" in card["detail"]


def test_no_allergy_data_is_named_on_every_card(ehr):
    prefetch = full_prefetch()
    del prefetch["allergies"]
    first, second = anakinra_draft(Decimal("10"), draft_id="a1"), anakinra_draft(Decimal("1000"), draft_id="a2")

    cards = conforming_cards(ehr.post(ORDER_SIGN_PATH, hook_body(first, second, hook="order-sign", prefetch=prefetch)))

    assert all("; anakinra allergy not checked" in c["summary"] for c in cards)
    assert "info" not in {c["indicator"] for c in cards}


def test_allergy_data_with_no_anakinra_allergy_keeps_a_match_info(ehr):
    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(anakinra_draft(Decimal("40")), prefetch=full_prefetch())))

    assert card["indicator"] == "info"
    assert "allergy" not in card["summary"]


# --- The corrected order keeps what does not conflict (item 7) --------------------------------------------


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


# --- Medication named only by reference or code (item 8) -------------------------------------------------

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
