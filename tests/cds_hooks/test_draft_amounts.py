"""How a drafted order's amounts are read and checked: every dosage instruction, dose ranges and mass units, several
anakinra drafts added up per day, and the stated mg caps when no weight can be used.

Every response is checked with the one CDS Hooks validator (tests/cds_hooks_rules.py)."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from tests.cds_hooks_rules import conforming_cards, only_card
from tests.ehr_support import (
    ISSUER,
    ORDER_SELECT_PATH,
    ORDER_SIGN_PATH,
    anakinra_draft,
    full_prefetch,
    hook_body,
    weight_bundle,
)

pytestmark = pytest.mark.integration


UCUM = "http://unitsofmeasure.org"


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


# Stable ids (the bundles carry the current time), so pytest-xdist workers collect the same tests.
@pytest.mark.parametrize(
    "weight",
    [None, weight_bundle(Decimal("44"), code="[oz_av]"), weight_bundle(Decimal("400"))],
    ids=["no-weight", "44-oz", "400-kg"],
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
