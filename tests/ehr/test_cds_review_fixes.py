"""The standards review's defects (issue 6 review): duplicates, every dosage instruction, no weight,
old weights, no allergy data, feedback on unknown cards, corrected orders, medication references.

Every response is checked with the one CDS Hooks validator (tests/cds_hooks_rules.py)."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from anakinra_cds import jsonutil
from tests.cds_hooks_rules import assert_conforms
from tests.ehr_support import (
    ORDER_SELECT_PATH,
    anakinra_draft,
    full_prefetch,
    hook_body,
)

pytestmark = pytest.mark.integration

UCUM = "http://unitsofmeasure.org"


def _cards(response) -> list[dict]:
    assert response.status_code == 200, response.content
    data = jsonutil.loads(response.content)
    assert_conforms(data)
    return data["cards"]


def _only_card(response) -> dict:
    cards = _cards(response)
    assert len(cards) == 1
    return cards[0]


# --- Every dosage instruction, dose ranges and mass units (item 2) ----------------------------------


def test_order_select_second_dosage_instruction_above_the_maximum_is_critical(ehr):
    draft = anakinra_draft(Decimal("40"))
    extra = copy.deepcopy(draft["dosageInstruction"][0])
    extra["doseAndRate"] = [{"doseQuantity": {"value": 2000, "unit": "mg", "system": UCUM, "code": "mg"}}]
    draft["dosageInstruction"].append(extra)

    card = _only_card(ehr.post(ORDER_SELECT_PATH, hook_body(draft, prefetch=full_prefetch())))

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

    card = _only_card(ehr.post(ORDER_SELECT_PATH, hook_body(draft, prefetch=full_prefetch())))

    assert card["indicator"] == "critical"
    assert "3000 mg exceeds" in card["summary"]


def test_order_select_dose_in_grams_is_converted_and_critical_when_above(ehr):
    card = _only_card(
        ehr.post(ORDER_SELECT_PATH, hook_body(anakinra_draft(Decimal("2"), unit="g"), prefetch=full_prefetch()))
    )

    assert card["indicator"] == "critical"
    assert card["summary"].startswith("Anakinra 2000 mg exceeds")


def test_order_select_second_dosage_within_the_maximum_is_never_a_match(ehr):
    draft = anakinra_draft(Decimal("40"))
    draft["dosageInstruction"].append(copy.deepcopy(draft["dosageInstruction"][0]))

    card = _only_card(ehr.post(ORDER_SELECT_PATH, hook_body(draft, prefetch=full_prefetch())))

    assert card["indicator"] == "warning"
    assert "could match" in card["summary"]
