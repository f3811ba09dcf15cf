"""The EHR review's safety defects (issue 15): messy real FHIR is never read as an absence, weights in any
body-weight unit, duplicate drafts, coded-only orders, feedback batches and multi-hospital issuers.

Each test sends the request from the review. Every response is checked with the one CDS Hooks validator
(tests/cds_hooks_rules.py); FHIR reads go to a real local HTTP server standing in for the EHR's."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest

from anakinra_cds import jsonutil
from audit.models import AuditEvent
from tests.cds_hooks_rules import conforming_cards, only_card
from tests.ehr_support import (
    ISSUER,
    ORDER_SELECT_PATH,
    ORDER_SIGN_PATH,
    PATIENT_ID,
    SC,
    allergy_bundle,
    anakinra_draft,
    full_prefetch,
    hook_body,
    patient,
    weight_bundle,
)

pytestmark = pytest.mark.integration

FEEDBACK_PATH = f"{ORDER_SELECT_PATH}/feedback"
CNH_MATCH_40_MG = "Anakinra 40 mg matches the protocol for 20 kg; indication not assessed"
CNH_MATCH_40_MG_INFO = (
    "Anakinra 40 mg matches the Children's National Hospital protocol (Initial dosing) for 20 kg; "
    "indication not assessed"
)
ALLERGY_ROW = "| Anakinra allergy | {} | AllergyIntolerance |"
FORMULARY = "https://formulary.example.org/codes"


def _outcome(code: str = "timeout", severity: str = "error") -> dict:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": "Upstream allergy service timed out"}],
    }


def _searchset(*resources: dict, total: int | None = None, next_url: str | None = None) -> dict:
    bundle: dict = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}
    if total is not None:
        bundle["total"] = total
    if next_url is not None:
        bundle["link"] = [{"relation": "self", "url": "https://ehr.example.org/fhir/r4/AllergyIntolerance"}]
        bundle["link"].append({"relation": "next", "url": next_url})
    return bundle


def _allergy(name: str | None = None, *, coding: dict | None = None) -> dict:
    resource = copy.deepcopy(allergy_bundle("x")["entry"][0]["resource"])
    resource["code"] = {"text": name} if name is not None else {}
    if coding is not None:
        resource["code"] = {"coding": [coding]}
    return resource


def _allergy_row(card: dict) -> str:
    return next(line for line in card["detail"].splitlines() if line.startswith("| Anakinra allergy |"))


def _with_allergies(value) -> dict:
    return full_prefetch() | {"allergies": value}


# --- 1. An allergy read that failed is not "no allergy" ---------------------------------------------------


def test_allergy_prefetch_operation_outcome_is_not_checked_and_never_info(ehr):
    body = hook_body(anakinra_draft(Decimal("40")), prefetch=_with_allergies(_outcome()))

    card = only_card(ehr.post(ORDER_SELECT_PATH, body))

    assert (card["indicator"], card["summary"]) == ("warning", f"{CNH_MATCH_40_MG}; anakinra allergy not checked")
    assert _allergy_row(card) == ALLERGY_ROW.format(
        "not checked: the allergy list could not be read in full: the EHR sent an OperationOutcome (error "
        "timeout) instead of the data"
    )
    assert "none recorded" not in card["detail"]
    assert "Upstream allergy service" not in card["detail"]  # the outcome's free text is not shown


def test_allergy_searchset_holding_only_an_error_outcome_is_not_checked(ehr):
    bundle = _searchset(_outcome("exception"))
    bundle["entry"][0]["search"] = {"mode": "outcome"}

    card = only_card(
        ehr.post(ORDER_SELECT_PATH, hook_body(anakinra_draft(Decimal("40")), prefetch=_with_allergies(bundle)))
    )

    assert card["indicator"] == "warning"
    assert _allergy_row(card) == ALLERGY_ROW.format(
        "not checked: the allergy list could not be read in full: the EHR sent an OperationOutcome (error "
        "exception) instead of the data"
    )


def test_allergy_searchset_with_an_informational_outcome_is_still_checked(ehr):
    bundle = _searchset(_allergy("penicillin"), _outcome("informational", severity="information"))

    card = only_card(
        ehr.post(ORDER_SELECT_PATH, hook_body(anakinra_draft(Decimal("40")), prefetch=_with_allergies(bundle)))
    )

    assert card["indicator"] == "info"
    assert _allergy_row(card) == ALLERGY_ROW.format("none recorded for anakinra")


def test_allergy_read_answered_with_an_outcome_by_the_fhir_server_is_not_checked(ehr, settings, fake_ehr_server):
    settings.CDS_HOOKS_ISSUERS[ISSUER]["fhir_servers"] = [fake_ehr_server.url]
    fake_ehr_server.routes["/AllergyIntolerance"] = (200, _outcome("too-costly", severity="fatal"))
    prefetch = full_prefetch()
    del prefetch["allergies"]

    card = only_card(
        ehr.post(
            ORDER_SELECT_PATH,
            hook_body(anakinra_draft(Decimal("40")), prefetch=prefetch, fhir_server=fake_ehr_server.url),
        )
    )

    assert card["indicator"] == "warning"
    assert card["summary"].endswith("; anakinra allergy not checked")
    assert "OperationOutcome (fatal too-costly)" in _allergy_row(card)
    assert [r["path"] for r in fake_ehr_server.requests] == ["/AllergyIntolerance"]


def test_allergy_read_failing_on_the_fhir_server_says_so(ehr, settings, fake_ehr_server):
    settings.CDS_HOOKS_ISSUERS[ISSUER]["fhir_servers"] = [fake_ehr_server.url]
    fake_ehr_server.routes["/AllergyIntolerance"] = (500, _outcome("exception"))
    prefetch = full_prefetch()
    del prefetch["allergies"]

    card = only_card(
        ehr.post(
            ORDER_SELECT_PATH,
            hook_body(anakinra_draft(Decimal("40")), prefetch=prefetch, fhir_server=fake_ehr_server.url),
        )
    )

    assert card["indicator"] == "warning"
    assert _allergy_row(card) == ALLERGY_ROW.format(
        "not checked: the allergy list could not be read (AllergyIntolerance: HTTP 500)"
    )


def test_allergy_record_naming_no_substance_leaves_the_allergy_unchecked(ehr):
    bundle = _searchset(_allergy("penicillin"), _allergy(coding={"system": "http://snomed.info/sct", "code": "1"}))

    card = only_card(
        ehr.post(ORDER_SELECT_PATH, hook_body(anakinra_draft(Decimal("40")), prefetch=_with_allergies(bundle)))
    )

    assert card["indicator"] == "warning"
    assert _allergy_row(card) == ALLERGY_ROW.format(
        "not checked: 1 current allergy record(s) name no substance that can be read"
    )


def test_contraindication_card_on_a_failed_read_is_never_sent(ehr):
    # The failed read says nothing either way: no contraindication card, and the dose card says so.
    card = only_card(ehr.post(ORDER_SIGN_PATH, hook_body(hook="order-sign", prefetch=_with_allergies(_outcome()))))

    assert card["summary"] != "Anakinra allergy recorded: anakinra is contraindicated. Do not give."
    assert card["summary"].endswith("; anakinra allergy not checked")


# --- 2. Paginated allergy lists ------------------------------------------------------------------------


def test_allergy_list_with_more_pages_and_no_server_is_not_checked(ehr):
    bundle = _searchset(
        _allergy("penicillin"), total=3, next_url="https://ehr.example.org/fhir/r4/AllergyIntolerance?page=2"
    )

    card = only_card(
        ehr.post(ORDER_SELECT_PATH, hook_body(anakinra_draft(Decimal("40")), prefetch=_with_allergies(bundle)))
    )

    assert (card["indicator"], card["summary"]) == ("warning", f"{CNH_MATCH_40_MG}; anakinra allergy not checked")
    assert _allergy_row(card) == ALLERGY_ROW.format(
        "not checked: the allergy list could not be read in full: it has more pages, and no allowed FHIR server to "
        "read them from"
    )


def test_allergy_list_next_page_is_read_from_the_allowed_server(ehr, settings, fake_ehr_server):
    settings.CDS_HOOKS_ISSUERS[ISSUER]["fhir_servers"] = [fake_ehr_server.url]
    page_2 = f"{fake_ehr_server.url}/AllergyIntolerance/_page?token=abc&page=2"
    page_3 = f"{fake_ehr_server.url}/AllergyIntolerance/_page3"
    fake_ehr_server.routes["/AllergyIntolerance/_page"] = (200, _searchset(_allergy("latex"), next_url=page_3))
    fake_ehr_server.routes["/AllergyIntolerance/_page3"] = (200, _searchset(_allergy("Kineret")))
    prefetch = _with_allergies(_searchset(_allergy("penicillin"), total=3, next_url=page_2))

    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(prefetch=prefetch, fhir_server=fake_ehr_server.url)))

    assert (card["indicator"], card["summary"]) == (
        "critical",
        "Anakinra allergy recorded: anakinra is contraindicated. Do not give.",
    )
    assert fake_ehr_server.requests == [
        {
            "path": "/AllergyIntolerance/_page",
            "query": {"token": "abc", "page": "2"},
            "authorization": "Bearer fhir-access-token",
        },
        {"path": "/AllergyIntolerance/_page3", "query": {}, "authorization": "Bearer fhir-access-token"},
    ]


def test_allergy_list_read_in_full_over_pages_with_no_anakinra_stays_info(ehr, settings, fake_ehr_server):
    settings.CDS_HOOKS_ISSUERS[ISSUER]["fhir_servers"] = [fake_ehr_server.url]
    fake_ehr_server.routes["/page-2"] = (200, _searchset(_allergy("latex"), _allergy("egg")))
    prefetch = _with_allergies(_searchset(_allergy("penicillin"), total=3, next_url=f"{fake_ehr_server.url}/page-2"))

    card = only_card(
        ehr.post(
            ORDER_SELECT_PATH,
            hook_body(anakinra_draft(Decimal("40")), prefetch=prefetch, fhir_server=fake_ehr_server.url),
        )
    )

    assert (card["indicator"], card["summary"]) == ("info", CNH_MATCH_40_MG_INFO)
    assert _allergy_row(card) == ALLERGY_ROW.format("none recorded for anakinra")


@pytest.mark.parametrize(
    "next_url",
    [
        "https://elsewhere.example.org/fhir/AllergyIntolerance?page=2",
        "{server}.evil.example.org/page-2",
        "{server}/../other/page-2",
        "http://user:pass@{host}/page-2",
    ],
)
def test_allergy_list_next_page_elsewhere_never_gets_the_token(ehr, settings, fake_ehr_server, next_url):
    settings.CDS_HOOKS_ISSUERS[ISSUER]["fhir_servers"] = [f"{fake_ehr_server.url}/fhir"]
    host = fake_ehr_server.url.removeprefix("http://")
    next_url = next_url.format(server=f"{fake_ehr_server.url}/fhir", host=host)
    prefetch = _with_allergies(_searchset(_allergy("penicillin"), next_url=next_url))
    body = hook_body(anakinra_draft(Decimal("40")), prefetch=prefetch, fhir_server=f"{fake_ehr_server.url}/fhir")

    card = only_card(ehr.post(ORDER_SELECT_PATH, body))

    assert card["indicator"] == "warning"
    assert _allergy_row(card) == ALLERGY_ROW.format(
        "not checked: the allergy list could not be read in full: a later page could not be read (page 2: its link "
        "is not on the EHR's FHIR server)"
    )
    assert fake_ehr_server.requests == []


def test_allergy_list_pages_are_bounded(ehr, settings, fake_ehr_server):
    settings.CDS_HOOKS_ISSUERS[ISSUER]["fhir_servers"] = [fake_ehr_server.url]
    endless = f"{fake_ehr_server.url}/page-n"
    fake_ehr_server.routes["/page-n"] = (200, _searchset(_allergy("latex"), next_url=endless))
    prefetch = _with_allergies(_searchset(_allergy("penicillin"), next_url=endless))

    card = only_card(
        ehr.post(
            ORDER_SELECT_PATH,
            hook_body(anakinra_draft(Decimal("40")), prefetch=prefetch, fhir_server=fake_ehr_server.url),
        )
    )

    assert card["indicator"] == "warning"
    assert _allergy_row(card) == ALLERGY_ROW.format(
        "not checked: the allergy list could not be read in full: it has more than 5 pages; only the first 5 were read"
    )
    assert len(fake_ehr_server.requests) == 4


def test_allergy_list_shorter_than_its_total_is_not_checked(ehr):
    bundle = _searchset(_allergy("penicillin"), total=3)

    card = only_card(
        ehr.post(ORDER_SELECT_PATH, hook_body(anakinra_draft(Decimal("40")), prefetch=_with_allergies(bundle)))
    )

    assert card["indicator"] == "warning"
    assert _allergy_row(card) == ALLERGY_ROW.format(
        "not checked: the allergy list could not be read in full: its total is 3 entries, but 1 was sent"
    )


def test_allergy_found_on_an_incomplete_list_is_still_a_contraindication(ehr):
    bundle = _searchset(
        _allergy("anakinra"), total=3, next_url="https://ehr.example.org/fhir/r4/AllergyIntolerance?page=2"
    )

    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(prefetch=_with_allergies(bundle))))

    assert card["indicator"] == "critical"
    assert _allergy_row(card) == ALLERGY_ROW.format(
        "recorded: anakinra (the rest of the list was not checked: the allergy list could not be read in full: it "
        "has more pages, and no allowed FHIR server to read them from)"
    )


# --- 3. A weight that could not be read is not "no weight recorded" -------------------------------------


def test_weight_prefetch_operation_outcome_says_the_weight_could_not_be_read(ehr):
    body = hook_body(anakinra_draft(Decimal("40")), prefetch=full_prefetch() | {"weight": _outcome()})

    card = only_card(ehr.post(ORDER_SELECT_PATH, body))

    assert (card["indicator"], card["summary"]) == (
        "warning",
        "The weight could not be read from the EHR: the anakinra dose was not checked",
    )
    assert (
        "| Weight | The body weight could not be read: the EHR sent an OperationOutcome (error timeout) instead of "
        "the data. | Observation LOINC 29463-7 |"
    ) in card["detail"].splitlines()
    assert "No body weight" not in card["detail"]


def test_weight_read_error_still_checks_the_stated_caps(ehr):
    body = hook_body(anakinra_draft(Decimal("1000")), prefetch=full_prefetch() | {"weight": _searchset(_outcome())})

    card = only_card(ehr.post(ORDER_SELECT_PATH, body))

    assert (card["indicator"], card["summary"]) == (
        "critical",
        "Anakinra draft is above the protocol's stated cap; weight unavailable",
    )
    assert "The body weight could not be read" in card["detail"]


def test_weight_error_outcome_beside_an_observation_is_not_trusted(ehr):
    bundle = weight_bundle(Decimal("20"))
    bundle["entry"].append({"resource": _outcome("incomplete"), "search": {"mode": "outcome"}})

    card = only_card(
        ehr.post(ORDER_SELECT_PATH, hook_body(anakinra_draft(Decimal("40")), prefetch=full_prefetch(bundle)))
    )

    assert card["summary"] == "The weight could not be read from the EHR: the anakinra dose was not checked"


def test_weight_list_with_no_weight_on_its_first_page_and_more_pages_is_unreadable(ehr):
    bundle = _searchset(next_url="https://ehr.example.org/fhir/r4/Observation?page=2")

    card = only_card(
        ehr.post(ORDER_SELECT_PATH, hook_body(anakinra_draft(Decimal("40")), prefetch=full_prefetch(bundle)))
    )

    assert card["summary"] == "The weight could not be read from the EHR: the anakinra dose was not checked"
    assert (
        "The body weight could not be read: it has more pages, and no allowed FHIR server to read them from."
        in card["detail"]
    )


def test_weight_on_the_first_page_is_used_without_reading_more(ehr, settings, fake_ehr_server):
    settings.CDS_HOOKS_ISSUERS[ISSUER]["fhir_servers"] = [fake_ehr_server.url]
    bundle = weight_bundle(Decimal("20"))
    bundle["link"] = [{"relation": "next", "url": f"{fake_ehr_server.url}/Observation?page=2"}]

    card = only_card(
        ehr.post(
            ORDER_SELECT_PATH,
            hook_body(anakinra_draft(Decimal("40")), prefetch=full_prefetch(bundle), fhir_server=fake_ehr_server.url),
        )
    )

    assert (card["indicator"], card["summary"]) == ("info", CNH_MATCH_40_MG_INFO)
    assert fake_ehr_server.requests == []


def test_weight_prefetched_as_null_is_still_no_weight_recorded(ehr):
    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(prefetch=full_prefetch() | {"weight": None})))

    assert card["summary"] == "No usable weight in kg from the EHR: the anakinra dose was not checked"
    assert "No body weight (LOINC 29463-7) is recorded." in card["detail"]


# --- 4. Duplicate drafts: a delete action for the duplicate -----------------------------------------------


def _apply(suggestion: dict, drafts: list[dict]) -> list[dict]:
    """What an EHR does with an accepted suggestion's delete actions."""
    deleted = {a["resourceId"] for a in suggestion["actions"] if a["type"] == "delete"}
    return [d for d in drafts if f"MedicationRequest/{d['id']}" not in deleted]


def test_duplicate_iv_and_subcut_drafts_offer_to_keep_either_one(ehr):
    iv, sc = anakinra_draft(Decimal("40"), draft_id="a1"), anakinra_draft(Decimal("40"), route=SC, draft_id="a2")

    cards = conforming_cards(ehr.post(ORDER_SIGN_PATH, hook_body(iv, sc, hook="order-sign", prefetch=full_prefetch())))

    duplicates = cards[0]
    assert (duplicates["indicator"], duplicates["summary"]) == (
        "critical",
        "More than one anakinra order: together 320 mg/day, above the protocol maximum",
    )
    assert duplicates["selectionBehavior"] == "at-most-one"
    assert [(s["label"], s["actions"]) for s in duplicates["suggestions"]] == [
        (
            "Keep only MedicationRequest/a1 (anakinra 40 mg IV every 6 hours); remove MedicationRequest/a2",
            [
                {
                    "type": "delete",
                    "description": "Remove the drafted MedicationRequest/a2 (anakinra 40 mg subcut every 6 hours)",
                    "resourceId": "MedicationRequest/a2",
                }
            ],
        ),
        (
            "Keep only MedicationRequest/a2 (anakinra 40 mg subcut every 6 hours); remove MedicationRequest/a1",
            [
                {
                    "type": "delete",
                    "description": "Remove the drafted MedicationRequest/a1 (anakinra 40 mg IV every 6 hours)",
                    "resourceId": "MedicationRequest/a1",
                }
            ],
        ),
    ]


def test_duplicate_drafts_after_the_delete_is_accepted_are_no_longer_critical(ehr):
    iv, sc = anakinra_draft(Decimal("40"), draft_id="a1"), anakinra_draft(Decimal("40"), route=SC, draft_id="a2")
    first = conforming_cards(ehr.post(ORDER_SIGN_PATH, hook_body(iv, sc, hook="order-sign", prefetch=full_prefetch())))

    remaining = _apply(first[0]["suggestions"][0], [iv, sc])
    card = only_card(ehr.post(ORDER_SIGN_PATH, hook_body(*remaining, hook="order-sign", prefetch=full_prefetch())))

    assert [d["id"] for d in remaining] == ["a1"]
    assert (card["indicator"], card["summary"]) == ("info", CNH_MATCH_40_MG_INFO)


def test_duplicate_drafts_update_suggestion_says_the_other_order_stays(ehr):
    iv, sc = anakinra_draft(Decimal("40"), draft_id="a1"), anakinra_draft(Decimal("40"), route=SC, draft_id="a2")

    cards = conforming_cards(ehr.post(ORDER_SIGN_PATH, hook_body(iv, sc, hook="order-sign", prefetch=full_prefetch())))

    updates = [a for c in cards[1:] for s in c.get("suggestions", []) for a in s["actions"] if a["type"] == "update"]
    assert updates
    assert all(
        a["description"].endswith(
            '; the other anakinra orders stay: to remove them, use the card "More than one anakinra order"'
        )
        for a in updates
    )


def test_duplicate_drafts_without_an_id_are_never_named_in_a_delete(ehr):
    first, second = anakinra_draft(Decimal("40"), draft_id="a1"), anakinra_draft(Decimal("40"), draft_id="a2")
    del second["id"]

    cards = conforming_cards(
        ehr.post(ORDER_SIGN_PATH, hook_body(first, second, hook="order-sign", prefetch=full_prefetch()))
    )

    assert [s["label"] for s in cards[0]["suggestions"]] == [
        "Keep only MedicationRequest/(no id) (anakinra 40 mg IV every 6 hours); remove MedicationRequest/a1"
    ]


def test_three_drafts_keep_one_deletes_the_other_two(ehr):
    drafts = [anakinra_draft(Decimal("10"), draft_id=f"a{n}", every_hours=24) for n in (1, 2, 3)]

    cards = conforming_cards(ehr.post(ORDER_SIGN_PATH, hook_body(*drafts, hook="order-sign", prefetch=full_prefetch())))

    assert cards[0]["indicator"] == "warning"
    assert [[a["resourceId"] for a in s["actions"]] for s in cards[0]["suggestions"]] == [
        ["MedicationRequest/a2", "MedicationRequest/a3"],
        ["MedicationRequest/a1", "MedicationRequest/a3"],
        ["MedicationRequest/a1", "MedicationRequest/a2"],
    ]


# --- 5. Weights in g and [lb_av] ------------------------------------------------------------------------


def test_weight_in_grams_is_converted_and_an_overdose_is_critical(ehr):
    body = hook_body(anakinra_draft(Decimal("100")), prefetch=full_prefetch(weight_bundle(Decimal("20000"), code="g")))

    card = only_card(ehr.post(ORDER_SELECT_PATH, body))

    assert card["indicator"] == "critical"
    assert card["summary"].startswith(
        "Anakinra 100 mg exceeds the Children's National Hospital protocol maximum for 20 kg"
    )
    assert (
        "| Weight | 20 kg (recorded as 20000 g, converted exactly (1 g = 0.001 kg) and taken to the gram) | "
        "Observation LOINC 29463-7, " in card["detail"]
    )


def test_weight_in_pounds_is_converted_exactly_and_checked_as_20_kg(ehr):
    body = hook_body(
        anakinra_draft(Decimal("40")), prefetch=full_prefetch(weight_bundle(Decimal("44.092"), code="[lb_av]"))
    )

    card = only_card(ehr.post(ORDER_SELECT_PATH, body))

    assert (card["indicator"], card["summary"]) == ("info", CNH_MATCH_40_MG_INFO)
    assert "#### What the protocol gives for 20 kg" in card["detail"]
    assert (
        "| Weight | 20 kg (recorded as 44.092 \\[lb\\_av\\], converted exactly (1 \\[lb\\_av\\] = 0.45359237 kg) and "
        "taken to the gram) | " in card["detail"]
    )
    assert card["links"][0]["url"] == "http://testserver/start/?weight_kg=20&age_years=8&institution=cnh"


def test_weight_in_pounds_is_quantized_to_the_gram_half_up(ehr):
    # 44 lb = 19.95806428 kg: 19.958 kg, as the JSON API takes a weight.
    body = hook_body(
        anakinra_draft(Decimal("40")), prefetch=full_prefetch(weight_bundle(Decimal("44"), code="[lb_av]"))
    )

    card = only_card(ehr.post(ORDER_SELECT_PATH, body))

    assert "#### What the protocol gives for 19.958 kg" in card["detail"]
    assert card["links"][0]["url"] == "http://testserver/start/?weight_kg=19.958&age_years=8&institution=cnh"


# --- 6. Coded-only orders, by the codes the registration lists -----------------------------------------------


def _coded_draft(dose: Decimal, code: str = "ANAK-100") -> dict:
    draft = anakinra_draft(dose)
    draft["medicationCodeableConcept"] = {"coding": [{"system": FORMULARY, "code": code}]}
    return draft


def test_coded_only_order_with_a_listed_code_gets_a_card(ehr, settings):
    settings.CDS_HOOKS_ISSUERS[ISSUER]["medication_codes"] = [{"system": FORMULARY, "code": "ANAK-100"}]

    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(_coded_draft(Decimal("1000")), prefetch=full_prefetch())))

    assert card["indicator"] == "critical"
    assert card["summary"].startswith("Anakinra 1000 mg exceeds the Children's National Hospital protocol maximum")


def test_coded_only_order_in_a_contained_medication_with_a_listed_code_gets_a_card(ehr, settings):
    settings.CDS_HOOKS_ISSUERS[ISSUER]["medication_codes"] = [{"system": FORMULARY, "code": "ANAK-100"}]
    draft = anakinra_draft(Decimal("40"))
    del draft["medicationCodeableConcept"]
    draft["medicationReference"] = {"reference": "#med"}
    draft["contained"] = [
        {"resourceType": "Medication", "id": "med", "code": {"coding": [{"system": FORMULARY, "code": "ANAK-100"}]}}
    ]

    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(draft, prefetch=full_prefetch())))

    assert (card["indicator"], card["summary"]) == ("info", CNH_MATCH_40_MG_INFO)


def test_coded_only_order_with_a_code_listed_for_another_ehr_gets_no_card(ehr, settings, caplog):
    other = "https://other-ehr.example.org"
    settings.CDS_HOOKS_ISSUERS[other] = dict(settings.CDS_HOOKS_ISSUERS[ISSUER])
    settings.CDS_HOOKS_ISSUERS[other]["medication_codes"] = [{"system": FORMULARY, "code": "ANAK-100"}]

    response = ehr.post(ORDER_SELECT_PATH, hook_body(_coded_draft(Decimal("1000")), prefetch=full_prefetch()))

    assert conforming_cards(response) == []
    assert "1 drafted medication order(s) could not be identified" in caplog.text


def test_coded_only_order_with_an_unlisted_code_of_the_same_system_gets_no_card(ehr, settings):
    settings.CDS_HOOKS_ISSUERS[ISSUER]["medication_codes"] = [{"system": FORMULARY, "code": "ANAK-100"}]

    response = ehr.post(
        ORDER_SELECT_PATH, hook_body(_coded_draft(Decimal("1000"), code="TOCI-20"), prefetch=full_prefetch())
    )

    assert conforming_cards(response) == []


def test_referenced_medication_with_a_listed_code_is_recognised(ehr, settings, fake_ehr_server):
    settings.CDS_HOOKS_ISSUERS[ISSUER]["fhir_servers"] = [fake_ehr_server.url]
    settings.CDS_HOOKS_ISSUERS[ISSUER]["medication_codes"] = [{"system": FORMULARY, "code": "ANAK-100"}]
    fake_ehr_server.routes["/Medication/m1"] = (
        200,
        {"resourceType": "Medication", "code": {"coding": [{"system": FORMULARY, "code": "ANAK-100"}]}},
    )
    draft = anakinra_draft(Decimal("1000"))
    del draft["medicationCodeableConcept"]
    draft["medicationReference"] = {"reference": "Medication/m1"}

    card = only_card(
        ehr.post(ORDER_SELECT_PATH, hook_body(draft, prefetch=full_prefetch(), fhir_server=fake_ehr_server.url))
    )

    assert card["indicator"] == "critical"


def test_allergy_coded_with_a_listed_code_is_a_contraindication(ehr, settings):
    settings.CDS_HOOKS_ISSUERS[ISSUER]["medication_codes"] = [{"system": FORMULARY, "code": "ANAK-100"}]
    allergy = _allergy(coding={"system": FORMULARY, "code": "ANAK-100", "display": "ANAKINRA 100 MG/0.67 ML"})

    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(prefetch=_with_allergies(_searchset(allergy)))))

    assert (card["indicator"], card["summary"]) == (
        "critical",
        "Anakinra allergy recorded: anakinra is contraindicated. Do not give.",
    )
    assert "The EHR records an allergy to: ANAKINRA 100 MG/0.67 ML." in card["detail"]


# --- 7. Feedback: empty objects refused, a batch keeps its valid entries -----------------------------------


def _issued_card(ehr) -> dict:
    response = ehr.post(ORDER_SELECT_PATH, hook_body(anakinra_draft(Decimal("100")), prefetch=full_prefetch()))
    (card,) = jsonutil.loads(response.content)["cards"]
    return card


def _overridden(card_uuid: str, **fields) -> dict:
    return {"card": card_uuid, "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:16:00Z", **fields}


def test_feedback_empty_override_reason_is_refused_and_not_recorded(ehr):
    card = _issued_card(ehr)

    response = ehr.post(FEEDBACK_PATH, {"feedback": [_overridden(card["uuid"], overrideReason={})]})

    assert response.status_code == 400
    assert json.loads(response.content) == {
        "errors": {"feedback.0.overrideReason": ["must not be null or empty (CDS Hooks: leave an absent value out)"]}
    }
    assert not AuditEvent.objects.filter(action="cds_card.overridden").exists()


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"overrideReason": {"userComment": ""}}, "feedback.0.overrideReason.userComment"),
        ({"overrideReason": None}, "feedback.0.overrideReason"),
        ({"acceptedSuggestions": []}, "feedback.0.acceptedSuggestions"),
    ],
)
def test_feedback_null_or_empty_values_are_refused(ehr, fields, where):
    card = _issued_card(ehr)

    response = ehr.post(FEEDBACK_PATH, {"feedback": [_overridden(card["uuid"], **fields)]})

    assert response.status_code == 400
    assert json.loads(response.content)["errors"][where] == [
        "must not be null or empty (CDS Hooks: leave an absent value out)"
    ]
    assert not AuditEvent.objects.filter(action="cds_card.overridden").exists()


def test_feedback_batch_with_an_unknown_card_records_the_valid_entries(ehr, caplog):
    first, second = _issued_card(ehr), _issued_card(ehr)
    body = {
        "feedback": [
            _overridden(first["uuid"]),
            _overridden("not-a-real-card"),
            _overridden(second["uuid"], overrideReason={"reason": second["overrideReasons"][1]}),
        ]
    }

    response = ehr.post(FEEDBACK_PATH, body)

    assert response.status_code == 200
    assert json.loads(response.content) == {
        "recorded": [0, 2],
        "errors": {"feedback.1.card": ["No card 'not-a-real-card' was issued by this service to this EHR."]},
    }
    recorded = AuditEvent.objects.filter(action="cds_card.overridden").order_by("id")
    assert [(e.subject_id, e.reason) for e in recorded] == [
        (first["uuid"], ""),
        (second["uuid"], "Following a different institution protocol"),
    ]
    assert "CDS Hooks feedback: 2 entries recorded, 1 refused" in caplog.text


def test_feedback_batch_with_a_malformed_entry_records_the_valid_one(ehr):
    card = _issued_card(ehr)
    body = {"feedback": [{"card": card["uuid"], "outcome": "dismissed"}, _overridden(card["uuid"], overrideReason={})]}
    body["feedback"].append(_overridden(card["uuid"], overrideReason={"userComment": "Agreed with pharmacy"}))

    response = ehr.post(FEEDBACK_PATH, body)

    assert response.status_code == 200
    assert json.loads(response.content) == {
        "recorded": [2],
        "errors": {
            "feedback.0.outcome": ["Input should be 'accepted' or 'overridden'"],
            "feedback.0.outcomeTimestamp": ["Field required"],
            "feedback.1.overrideReason": ["must not be null or empty (CDS Hooks: leave an absent value out)"],
        },
    }
    assert list(AuditEvent.objects.filter(action="cds_card.overridden").values_list("reason", flat=True)) == [
        "Agreed with pharmacy"
    ]


# --- 8. One protocol per tenant of a multi-hospital issuer -------------------------------------------------


def _source_url(ehr, **claim_args) -> str:
    token = ehr.token(ORDER_SELECT_PATH, **claim_args)
    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(prefetch=full_prefetch()), token=token))
    return card["source"]["url"]


def test_tenant_listed_in_the_registration_is_checked_against_its_institution(ehr, settings):
    settings.CDS_HOOKS_ISSUERS[ISSUER]["tenants"] = {"east": {"institution": "chop"}, "west": {"institution": "cnh"}}

    assert _source_url(ehr, tenant="east") == "http://testserver/protocols/chop/"
    assert _source_url(ehr, tenant="west") == "http://testserver/protocols/cnh/"


def test_tenant_not_listed_gets_the_issuer_institution(ehr, settings):
    settings.CDS_HOOKS_ISSUERS[ISSUER]["tenants"] = {"east": {"institution": "chop"}}

    assert _source_url(ehr, tenant="north") == "http://testserver/protocols/cnh/"
    assert _source_url(ehr, tenant=None) == "http://testserver/protocols/cnh/"


def test_tenant_not_listed_without_an_issuer_institution_is_not_checked(ehr, settings):
    settings.CDS_HOOKS_ISSUERS[ISSUER]["tenants"] = {"east": {"institution": "chop"}}
    del settings.CDS_HOOKS_ISSUERS[ISSUER]["institution"]
    token = ehr.token(ORDER_SELECT_PATH, tenant="north")

    card = only_card(ehr.post(ORDER_SELECT_PATH, hook_body(prefetch=full_prefetch()), token=token))

    assert (card["indicator"], card["summary"]) == (
        "warning",
        "No institution protocol is configured for this EHR: the anakinra dose was not checked",
    )


def test_patient_data_never_reaches_the_audit_trail_of_a_tenant_call(ehr, settings):
    settings.CDS_HOOKS_ISSUERS[ISSUER]["tenants"] = {"east": {"institution": "chop"}}

    _source_url(ehr, tenant="east")

    assert PATIENT_ID not in json.dumps([e.details for e in AuditEvent.objects.all()])
    assert patient()["birthDate"] not in json.dumps([e.details for e in AuditEvent.objects.all()])
