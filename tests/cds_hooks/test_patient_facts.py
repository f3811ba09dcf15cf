"""How the EHR's weight (its age and date) and allergy data change a card.

Every response is checked with the one CDS Hooks validator (tests/cds_hooks_rules.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.cds_hooks_rules import conforming_cards, only_card
from tests.ehr_support import (
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
