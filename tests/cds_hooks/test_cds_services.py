"""Discovery and the order-select / order-sign services: cards, suggestions, links, 412.

Every response is checked with the one CDS Hooks validator (tests/cds_hooks_rules.py)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest

from audit.models import AuditEvent
from cds_hooks.catalog import PREFETCH
from tests.cds_hooks_rules import assert_discovery_conforms, conforming_cards, only_card
from tests.ehr_support import (
    DRAFT_ID,
    ISSUER,
    ORDER_SELECT_PATH,
    ORDER_SIGN_PATH,
    PATIENT_ID,
    SC,
    allergy_bundle,
    anakinra_draft,
    dose_rate,
    full_prefetch,
    hook_body,
    other_draft,
    patient,
    recent,
    weight_bundle,
)

pytestmark = pytest.mark.integration

CNH_SOURCE = {
    "label": "Children's National Hospital anakinra protocol, version 1",
    "url": "http://testserver/protocols/cnh/",
}
WIZARD_20_KG = "http://testserver/start/?weight_kg=20&age_years=8&institution=cnh"


def _resource(suggestion: dict) -> dict:
    (action,) = suggestion["actions"]
    assert action["type"] == "update"
    return action["resource"]


def _dosage(resource: dict) -> dict:
    (dosage,) = resource["dosageInstruction"]
    return dosage


# --- Discovery -------------------------------------------------------------------------------------------


def test_discovery_lists_both_order_services_with_their_prefetch(ehr):
    response = ehr.get("/cds-services")

    assert response.status_code == 200
    document = json.loads(response.content)
    assert_discovery_conforms(document)
    assert [(s["id"], s["hook"], s["title"]) for s in document["services"]] == [
        ("anakinra-order-select", "order-select", "Anakinra dose check"),
        ("anakinra-order-sign", "order-sign", "Anakinra dose check before signing"),
    ]
    assert document["services"][0]["prefetch"] == {
        "patient": "Patient/{{context.patientId}}",
        "weight": "Observation?patient={{context.patientId}}&code=http://loinc.org|29463-7&_sort=-date&_count=5",
        "allergies": "AllergyIntolerance?patient={{context.patientId}}",
    }
    assert document["services"][1]["prefetch"] == PREFETCH
    assert document["services"][0]["usageRequirements"] == (
        "Anakinra MedicationRequests (named anakinra or Kineret, or carrying a medication code listed in the EHR's "
        "registration) in FHIR R4. Needs the patient's body weight (LOINC 29463-7) in kg, g or [lb_av], "
        "prefetched or readable with fhirAuthorization (otherwise HTTP 412). The EHR is registered by its JWT "
        "issuer, with the institution protocol its orders are checked against (per tenant, when it sends one)."
    )


# --- Dose checks ----------------------------------------------------------------------------------------


def test_order_select_dose_above_protocol_maximum_is_critical_with_a_corrected_order(ehr):
    body = hook_body(anakinra_draft(Decimal("100")), prefetch=full_prefetch())

    card = only_card(ehr.post(ORDER_SELECT_PATH, body))

    assert card["indicator"] == "critical"
    assert card["summary"] == (
        "Anakinra 100 mg exceeds the Children's National Hospital protocol maximum for 20 kg (40 mg per dose)"
    )
    assert card["source"] == CNH_SOURCE
    assert card["selectionBehavior"] == "at-most-one"
    (suggestion,) = card["suggestions"]
    assert suggestion["label"] == "Use 40 mg IV every 6 hours (Initial dosing)"
    assert suggestion["actions"][0]["description"] == (
        "Change the drafted anakinra to 40 mg IV every 6 hours: Children's National Hospital anakinra "
        "protocol, version 1, Initial dosing, for 20 kg"
    )
    resource = _resource(suggestion)
    MedicationRequest.model_validate(resource)
    assert (resource["id"], resource["status"], resource["intent"]) == (DRAFT_ID, "draft", "order")
    assert "text" not in resource  # the draft's narrative described the old dose
    dosage = _dosage(resource)
    assert dosage["timing"]["repeat"] == {
        "frequency": 1,
        "period": 6,
        "periodUnit": "h",
        "boundsPeriod": {"start": "2026-11-23"},
    }
    assert [
        (d["type"]["coding"][0]["code"], d["doseQuantity"]["value"], d["doseQuantity"]["code"])
        for d in dosage["doseAndRate"]
    ] == [
        ("calculated", Decimal("40"), "mg"),
        ("ordered", Decimal("2"), "mg/kg"),
    ]
    assert dosage["route"]["coding"] == [
        {"system": "http://snomed.info/sct", "code": "47625008", "display": "Intravenous route"}
    ]


def test_order_select_dose_card_detail_shows_inputs_arithmetic_caps_and_citations(ehr):
    when = recent()
    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(prefetch=full_prefetch(weight_bundle(when=when)))))

    detail = card["detail"]
    for expected in (
        "**Indication not assessed.** The EHR does not send the toxicity, its grade, or prior tocilizumab and "
        "steroids, so this card only checks the dose arithmetic. Open the bedside wizard (link below) to enter "
        "them and see the protocol's recommendation.",
        f"| Weight | 20 kg | Observation LOINC 29463-7, {when} |",
        "| Age | 8 years | Patient.birthDate |",
        "| Drafted order | anakinra 100 mg IV every 6 hours | MedicationRequest/draft-anakinra-1 |",
        "| Anakinra allergy | none recorded for anakinra | AllergyIntolerance |",
        "| Toxicity and grade | not sent by the EHR | enter in the bedside wizard |",
        "- 2 mg/kg/dose x 20 kg = 40 mg per dose",
        "- 4 doses a day x 40 mg = 160 mg/day",
        "- Initial dosing: 100 mg per dose, 400 mg per day",
        "- [Diorio C, Vatsayan A, et al. Blood Adv 2022 (Table 1)](https://doi.org/10.1182/bloodadvances.2022006983)",
        "- 100 mg per dose is above the most any step of this protocol gives per dose at 20 kg (40 mg).",
    ):
        assert expected in detail.splitlines(), expected


def test_order_select_protocol_dose_is_info_without_suggestions(ehr):
    body = hook_body(anakinra_draft(Decimal("40")), prefetch=full_prefetch())

    card = only_card(ehr.post(ORDER_SELECT_PATH, body))

    assert card["indicator"] == "info"
    assert card["summary"] == (
        "Anakinra 40 mg matches the Children's National Hospital protocol (Initial dosing) for 20 kg; "
        "indication not assessed"
    )
    assert "suggestions" not in card
    assert "selectionBehavior" not in card
    assert "overrideReasons" not in card


def test_order_select_lower_dose_is_warning_with_the_protocol_dose_suggested(ehr):
    body = hook_body(anakinra_draft(Decimal("30")), prefetch=full_prefetch())

    card = only_card(ehr.post(ORDER_SELECT_PATH, body))

    assert card["indicator"] == "warning"
    assert card["summary"] == (
        "Anakinra 30 mg differs from the Children's National Hospital protocol dose for 20 kg; indication not assessed"
    )
    (suggestion,) = card["suggestions"]
    assert _dosage(_resource(suggestion))["doseAndRate"][0]["doseQuantity"]["value"] == Decimal("40")
    assert [r["code"] for r in card["overrideReasons"]] == [
        "clinical-judgement",
        "other-protocol",
        "weight-not-current",
        "escalation-or-taper",
    ]


def test_order_select_link_opens_the_wizard_with_the_ehr_inputs(ehr):
    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(prefetch=full_prefetch())))

    assert card["links"] == [
        {
            "label": "Open the bedside wizard with these inputs (enter toxicity and grade there)",
            "url": WIZARD_20_KG,
            "type": "absolute",
        }
    ]


def test_order_select_checks_the_selected_anakinra_orders_and_adds_up_every_one(ehr):
    selected, unselected = anakinra_draft(Decimal("40"), draft_id="sel"), anakinra_draft(draft_id="unsel")
    body = hook_body(
        selected, unselected, other_draft(), prefetch=full_prefetch(), selections=["MedicationRequest/sel"]
    )

    duplicates, card = conforming_cards(ehr.post(ORDER_SELECT_PATH, body))

    assert "MedicationRequest/sel" in card["detail"]
    assert "MedicationRequest/unsel" not in card["detail"]
    assert "MedicationRequest/unsel" in duplicates["detail"]


def test_order_select_without_anakinra_gives_no_cards_and_needs_no_weight(ehr):
    body = hook_body(other_draft(), prefetch={})

    assert conforming_cards(ehr.post(ORDER_SELECT_PATH, body)) == []


def test_order_sign_checks_every_anakinra_draft(ehr):
    body = hook_body(
        anakinra_draft(Decimal("40"), draft_id="a"),
        anakinra_draft(Decimal("100"), draft_id="b"),
        hook="order-sign",
        prefetch=full_prefetch(),
    )

    cards = conforming_cards(ehr.post(ORDER_SIGN_PATH, body))

    # The first card adds both up; a protocol dose beside another anakinra order is no longer `info`.
    assert [c["indicator"] for c in cards] == ["critical", "warning", "critical"]
    assert [_resource(s)["id"] for s in cards[2]["suggestions"]] == ["b"]


def test_hook_not_answered_by_this_service_is_400(ehr):
    response = ehr.post(ORDER_SELECT_PATH, hook_body(hook="order-sign", prefetch=full_prefetch()))

    assert response.status_code == 400
    assert json.loads(response.content) == {"errors": {"hook": ["This service answers 'order-select'."]}}


def test_malformed_request_body_is_400_with_every_error(ehr):
    body = hook_body(prefetch=full_prefetch())
    del body["hookInstance"]
    body["context"]["draftOrders"] = {"resourceType": "MedicationRequest"}

    response = ehr.post(ORDER_SELECT_PATH, body)

    assert response.status_code == 400
    assert json.loads(response.content) == {
        "errors": {"hookInstance": ["Field required"], "context.draftOrders": ["must be a FHIR Bundle"]}
    }


def test_unknown_service_is_404(ehr):
    response = ehr.post("/cds-services/unknown", hook_body(prefetch=full_prefetch()))

    assert response.status_code == 404


def test_multiple_protocol_steps_are_each_offered_as_a_correction(ehr, settings):
    settings.CDS_HOOKS_ISSUERS[ISSUER]["institution"] = "musc"
    body = hook_body(anakinra_draft(Decimal("100"), route=SC, every_hours=12), prefetch=full_prefetch())

    card = only_card(ehr.post(ORDER_SELECT_PATH, body))

    assert card["indicator"] == "critical"
    assert card["summary"] == (
        "Anakinra 100 mg exceeds the Medical University of South Carolina protocol maximum for 20 kg (160 mg per day)"
    )
    assert [s["label"] for s in card["suggestions"]] == [
        "Use 80 mg subcut every 12 hours (Initial dosing (CRS))",
        "Use 40 mg subcut every 12 hours (Taper (CRS))",
        "Use 100 mg subcut every 24 hours (Alternative: fixed dose)",
        "Use 50 mg subcut every 24 hours (Taper after the fixed-dose alternative)",
    ]
    assert [_dosage(_resource(s))["text"] for s in card["suggestions"]] == [
        "anakinra 80 mg subcut every 12 hours (4 mg/kg/dose)",
        'anakinra 40 mg subcut every 12 hours (2 mg/kg/dose); taper: give after "Initial dosing (CRS)", '
        "not together with it",
        "anakinra 100 mg subcut every 24 hours (100 mg/dose)",
        'anakinra 50 mg subcut every 24 hours (50 mg/dose); taper: give after "Alternative: fixed dose", '
        "not together with it",
    ]


def test_protocol_without_interval_flags_the_daily_maximum_and_offers_no_correction(ehr, settings):
    settings.CDS_HOOKS_ISSUERS[ISSUER]["institution"] = "chop"
    body = hook_body(anakinra_draft(Decimal("150"), every_hours=12), prefetch=full_prefetch())

    card = only_card(ehr.post(ORDER_SELECT_PATH, body))

    assert card["indicator"] == "critical"
    assert "suggestions" not in card
    assert (
        "- 300 mg/day is above the most any step of this protocol gives per day at 20 kg (200 mg/day)."
        in card["detail"].splitlines()
    )


def test_order_select_mg_dose_is_read_not_the_mg_per_kg_listed_before_it(ehr):
    # Review finding: ordered 2 mg/kg + calculated 400 mg every 6 hours at 20 kg was read as 40 mg (info).
    draft = anakinra_draft(
        dose_and_rate=[dose_rate(Decimal("2"), "mg/kg", "ordered"), dose_rate(400, "mg", "calculated")]
    )

    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(draft, prefetch=full_prefetch())))

    assert card["indicator"] == "critical"
    assert card["summary"] == (
        "Anakinra 400 mg exceeds the Children's National Hospital protocol maximum for 20 kg (40 mg per dose)"
    )
    assert (
        "- The draft states 400 mg and 2 mg/kg (40 mg at 20 kg): they differ by more than 0.1 mg and no step of "
        "this protocol gives that pair, so which dose is meant is not guessed and the dose was not compared. "
        "Correct the order so that both state one dose."
    ) in card["detail"].splitlines()
    assert (
        "| Drafted order | anakinra 400 mg (and 2 mg/kg) IV every 6 hours | MedicationRequest/draft-anakinra-1 |"
        in (card["detail"].splitlines())
    )


def test_order_select_mg_and_mg_per_kg_doses_that_disagree_are_a_warning_not_a_match(ehr):
    # 40 mg is the protocol dose at 20 kg, but 1.5 mg/kg is 30 mg.
    draft = anakinra_draft(
        dose_and_rate=[dose_rate(40, "mg", "calculated"), dose_rate(Decimal("1.5"), "mg/kg", "ordered")]
    )

    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(draft, prefetch=full_prefetch())))

    assert (card["indicator"], card["summary"]) == (
        "warning",
        "Anakinra draft states 40 mg and 1.5 mg/kg, which disagree at 20 kg: the dose was not checked",
    )
    assert [s["label"] for s in card["suggestions"]] == ["Use 40 mg IV every 6 hours (Initial dosing)"]


def test_order_select_the_apps_own_capped_correction_reads_back_as_a_match(ehr):
    # At 60 kg, 2 mg/kg is 120 mg, capped at 100 mg: the suggestion carries both; sent back, it matches.
    prefetch = full_prefetch(weight_bundle(Decimal("60")))
    first = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(anakinra_draft(Decimal("150")), prefetch=prefetch)))
    corrected = _resource(first["suggestions"][0])

    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(corrected, prefetch=prefetch)))

    assert [
        (d["type"]["coding"][0]["code"], d["doseQuantity"]["value"]) for d in _dosage(corrected)["doseAndRate"]
    ] == [
        ("calculated", Decimal("100")),
        ("ordered", Decimal("2")),
    ]
    assert (card["indicator"], card["summary"]) == (
        "info",
        "Anakinra 100 mg matches the Children's National Hospital protocol (Initial dosing) for 60 kg; "
        "indication not assessed",
    )


def test_order_select_protocol_dose_with_an_unreadable_frequency_is_a_warning_with_the_full_dosage(ehr):
    # Review finding: 100 mg with timing "Q1H" (2400 mg/day) was shown as a match.
    draft = anakinra_draft(Decimal("100"), every_hours=None)
    draft["dosageInstruction"][0]["timing"] = {"code": {"text": "Q1H"}}

    card = only_card(
        ehr.post(ORDER_SELECT_PATH, hook_body(draft, prefetch=full_prefetch(weight_bundle(Decimal("60")))))
    )

    assert card["indicator"] == "warning"
    assert card["summary"] == (
        "Anakinra 100 mg could match the Children's National Hospital protocol for 60 kg, but its frequency "
        "could not be read"
    )
    lines = card["detail"].splitlines()
    assert (
        "- The draft states no frequency that can be read: the frequency and the per-day amount were not checked."
        in lines
    )
    assert (
        "| Drafted order | anakinra 100 mg, IV, frequency not readable (timing: Q1H) "
        "| MedicationRequest/draft-anakinra-1 |" in lines
    )
    (suggestion,) = card["suggestions"]
    assert suggestion["label"] == "Use 100 mg IV every 6 hours (Initial dosing)"
    assert _dosage(_resource(suggestion))["timing"]["repeat"] == {"frequency": 1, "period": 6, "periodUnit": "h"}


def test_order_select_protocol_dose_without_a_route_is_a_warning(ehr):
    card = only_card(
        ehr.post(ORDER_SELECT_PATH, hook_body(anakinra_draft(Decimal("40"), route=None), prefetch=full_prefetch()))
    )

    assert (card["indicator"], card["summary"]) == (
        "warning",
        "Anakinra 40 mg could match the Children's National Hospital protocol for 20 kg, "
        "but its route could not be read",
    )


def test_order_select_weight_of_100_kg_or_more_asks_to_confirm_the_weight_is_in_kg(ehr):
    body = hook_body(anakinra_draft(Decimal("100")), prefetch=full_prefetch(weight_bundle(Decimal("120"))))

    card = only_card(ehr.post(ORDER_SELECT_PATH, body))

    assert (card["indicator"], card["summary"]) == (
        "warning",
        "Anakinra 100 mg matches the protocol for 120 kg; indication not assessed; confirm the weight is in kg",
    )
    check = card["detail"].split("#### Check\n\n")[1].split("\n\n")[0].splitlines()
    assert check[:2] == [
        "- Weight of 100 kg or more: confirm the weight is in kg.",
        "- The draft matches what this protocol gives for this weight: Initial dosing.",
    ]


def test_order_select_weight_below_100_kg_is_not_questioned(ehr):
    body = hook_body(anakinra_draft(Decimal("100")), prefetch=full_prefetch(weight_bundle(Decimal("99.999"))))

    card = only_card(ehr.post(ORDER_SELECT_PATH, body))

    assert card["indicator"] == "info"
    assert "confirm the weight is in kg" not in card["detail"]


def test_up_to_interval_is_suggested_as_needed_and_reads_back_as_a_match(ehr, settings):
    # Seattle: 2 mg/kg/dose IV up to every 6 hours. The corrected order keeps "up to" (asNeeded).
    settings.CDS_HOOKS_ISSUERS[ISSUER]["institution"] = "seattle"
    first = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(anakinra_draft(Decimal("100")), prefetch=full_prefetch())))
    corrected = _resource(first["suggestions"][0])

    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(corrected, prefetch=full_prefetch())))

    dosage = _dosage(corrected)
    assert dosage["text"] == (
        "anakinra 40 mg IV no more often than every 6 hours, at most 4 doses a day "
        "(2 mg/kg/dose; max 100 mg/dose, 400 mg/day)"
    )
    assert (dosage["timing"]["repeat"]["period"], dosage["asNeededBoolean"]) == (6, True)
    assert first["suggestions"][0]["label"] == (
        "Use 40 mg IV no more often than every 6 hours, at most 4 doses a day (Initial dosing)"
    )
    assert card["indicator"] == "info"
    assert "| Drafted order | anakinra 40 mg (and 2 mg/kg) IV up to every 6 hours (as needed) |" in card["detail"]


@pytest.mark.parametrize("amount", ["1E+9", "1E+120"])
def test_order_select_dose_too_large_to_be_read_is_critical_and_far_above_any_protocol_dose(ehr, amount):
    # Review round 3: a billion mg or more is not read as a dose (it could not be shown), and is far above
    # cnh's most at 20 kg (2 mg/kg/dose x 20 kg = 40 mg every 6 hours; 160 mg/day): never "no readable dose".
    body = hook_body(anakinra_draft(Decimal(amount)), prefetch=full_prefetch())

    card = only_card(ehr.post(ORDER_SELECT_PATH, body))

    assert (card["indicator"], card["summary"]) == (
        "critical",
        "Anakinra draft states an amount far above any Children's National Hospital protocol dose for 20 kg: "
        "correct it",
    )
    assert (
        "- The draft states an amount of 1000000000 or more in its unit: far above any dose of this protocol "
        "(the most any step gives at 20 kg: 40 mg per dose and 160 mg/day). It was not read as a dose: correct "
        "the order.\n"
    ) in card["detail"]


# --- Missing or unusable data ----------------------------------------------------------------------------


def test_weight_neither_prefetched_nor_fetchable_is_412(ehr):
    body = hook_body(prefetch={"patient": patient(), "allergies": allergy_bundle()})

    response = ehr.post(ORDER_SELECT_PATH, body)

    assert response.status_code == 412
    assert json.loads(response.content) == {
        "errors": {"prefetch": ["The patient's weight is needed: weight not prefetched and no FHIR server access."]}
    }


def test_weight_fetched_from_the_ehr_fhir_server_with_its_token(ehr, settings, fake_ehr_server):
    settings.CDS_HOOKS_ISSUERS[ISSUER]["fhir_servers"] = [fake_ehr_server.url]
    fake_ehr_server.routes.update(
        {
            "/Observation": (200, weight_bundle(Decimal("20"))),
            f"/Patient/{PATIENT_ID}": (200, patient()),
            "/AllergyIntolerance": (200, allergy_bundle()),
        }
    )

    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(fhir_server=fake_ehr_server.url)))

    assert card["indicator"] == "critical"
    assert card["links"][0]["url"] == WIZARD_20_KG
    assert [r["path"] for r in fake_ehr_server.requests] == [
        "/AllergyIntolerance",
        f"/Patient/{PATIENT_ID}",
        "/Observation",
    ]
    assert fake_ehr_server.requests[2] == {
        "path": "/Observation",
        "query": {"patient": PATIENT_ID, "code": "http://loinc.org|29463-7", "_sort": "-date", "_count": "5"},
        "authorization": "Bearer fhir-access-token",
    }


def test_fhir_server_failure_for_the_weight_is_412(ehr, settings, fake_ehr_server):
    settings.CDS_HOOKS_ISSUERS[ISSUER]["fhir_servers"] = [fake_ehr_server.url]
    fake_ehr_server.routes["/Observation"] = (500, {"resourceType": "OperationOutcome"})

    response = ehr.post(ORDER_SELECT_PATH, hook_body(fhir_server=fake_ehr_server.url))

    assert response.status_code == 412


def test_fhir_server_without_a_configured_list_gets_no_request_and_no_token(ehr, fake_ehr_server):
    # No fhir_servers configured: the access token goes to no server at all.
    fake_ehr_server.routes["/Observation"] = (200, weight_bundle(Decimal("20")))

    response = ehr.post(ORDER_SELECT_PATH, hook_body(fhir_server=fake_ehr_server.url))

    assert response.status_code == 412
    assert json.loads(response.content) == {
        "errors": {"prefetch": ["The patient's weight is needed: weight not prefetched and no FHIR server access."]}
    }
    assert fake_ehr_server.requests == []


def test_fhir_server_not_in_the_issuers_list_gets_no_request(ehr, settings, fake_ehr_server):
    settings.CDS_HOOKS_ISSUERS[ISSUER]["fhir_servers"] = ["https://ehr.example.org/fhir/r4"]
    fake_ehr_server.routes["/Observation"] = (200, weight_bundle(Decimal("20")))

    response = ehr.post(ORDER_SELECT_PATH, hook_body(fhir_server=fake_ehr_server.url))

    assert response.status_code == 412
    assert fake_ehr_server.requests == []


def test_weight_in_a_unit_outside_the_body_weight_units_is_not_converted_and_the_dose_is_not_checked(ehr):
    body = hook_body(prefetch=full_prefetch(weight_bundle(Decimal("705"), code="[oz_av]")))

    card = only_card(ehr.post(ORDER_SELECT_PATH, body))

    assert card["indicator"] == "warning"
    assert card["summary"] == "No usable weight in kg from the EHR: the anakinra dose was not checked"
    assert "suggestions" not in card
    assert card["links"][0]["url"] == "http://testserver/start/?age_years=8&institution=cnh"
    assert (
        "The latest body weight is not in a UCUM body-weight unit (kg, g, \\[lb\\_av\\]; unit: \\[oz\\_av\\])."
        in card["detail"]
    )


def test_weight_prefetched_as_null_means_no_weight_recorded_not_412(ehr):
    body = hook_body(prefetch={"patient": patient(), "weight": None, "allergies": None})

    card = only_card(ehr.post(ORDER_SELECT_PATH, body))

    assert card["summary"] == "No usable weight in kg from the EHR: the anakinra dose was not checked"
    assert "| Anakinra allergy | none recorded for anakinra | AllergyIntolerance |" in card["detail"].splitlines()


def test_weight_outside_1_to_150_kg_is_not_used(ehr):
    body = hook_body(prefetch=full_prefetch(weight_bundle(Decimal("180"))))

    card = only_card(ehr.post(ORDER_SELECT_PATH, body))

    assert card["summary"] == "The weight from the EHR is outside 1 to 150 kg: the anakinra dose was not checked"
    assert card["links"][0]["url"] == "http://testserver/start/?age_years=8&institution=cnh"


def test_no_institution_protocol_configured_says_the_dose_was_not_checked(ehr, settings):
    del settings.CDS_HOOKS_ISSUERS[ISSUER]["institution"]

    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(prefetch=full_prefetch())))

    assert card["indicator"] == "warning"
    assert card["summary"] == "No institution protocol is configured for this EHR: the anakinra dose was not checked"
    assert card["source"] == {"label": "Anakinra CDS", "url": "http://testserver/"}
    assert card["links"][0]["url"] == "http://testserver/start/?weight_kg=20&age_years=8"


# --- Contraindication -----------------------------------------------------------------------------------


def test_recorded_anakinra_allergy_is_a_critical_contraindication(ehr):
    prefetch = full_prefetch() | {"allergies": allergy_bundle("Anakinra")}

    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(anakinra_draft(Decimal("40")), prefetch=prefetch)))

    assert card["indicator"] == "critical"
    assert card["summary"] == "Anakinra allergy recorded: anakinra is contraindicated. Do not give."
    assert "suggestions" not in card
    assert card["detail"].splitlines()[0] == (
        "**Known hypersensitivity to E. coli-derived proteins or to any component of anakinra: anakinra is "
        "contraindicated (Kineret US label). Do not give.**"
    )
    # The label (the letter's reference 8) is cited for the rule it gives.
    assert (
        "- [FDA Package Insert: Kineret: E. coli-derived proteins]"
        "(https://www.accessdata.fda.gov/drugsatfda_docs/label/2012/103950s51361bl.pdf)"
    ) in card["detail"].splitlines()
    assert card["links"][0]["url"] == (
        "http://testserver/start/?weight_kg=20&age_years=8&ecoli_protein_hypersensitivity=true&institution=cnh"
    )


def test_recorded_anakinra_allergy_is_answered_even_without_a_weight(ehr):
    body = hook_body(prefetch={"allergies": allergy_bundle("anakinra")})

    card = only_card(ehr.post(ORDER_SELECT_PATH, body))

    assert (card["indicator"], card["summary"]) == (
        "critical",
        "Anakinra allergy recorded: anakinra is contraindicated. Do not give.",
    )
    assert "| Weight | not available | no prefetch and no FHIR server access |" in card["detail"].splitlines()


def test_configured_institution_without_a_published_protocol_says_the_dose_was_not_checked(ehr, settings):
    settings.CDS_HOOKS_ISSUERS[ISSUER]["institution"] = "nowhere"

    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(prefetch=full_prefetch())))

    assert (card["indicator"], card["summary"]) == (
        "warning",
        "The configured institution has no published protocol: the anakinra dose was not checked",
    )


# --- Audit -------------------------------------------------------------------------------------------------


def test_issued_cards_are_recorded_without_patient_identifiers(ehr):
    body = hook_body(prefetch=full_prefetch())

    card = only_card(ehr.post(ORDER_SELECT_PATH, body))

    event = AuditEvent.objects.get(action="cds_card.issued")
    assert (event.subject_type, event.subject_id, event.actor_label) == ("cds_card", card["uuid"], ISSUER)
    assert event.details == {
        "service": "anakinra-order-select",
        "hook_instance": body["hookInstance"],
        "indicator": "critical",
        "summary": card["summary"],
        "source": CNH_SOURCE["label"],
        "suggestions": [{"uuid": card["suggestions"][0]["uuid"], "label": card["suggestions"][0]["label"]}],
    }
    assert PATIENT_ID not in json.dumps(event.details)
