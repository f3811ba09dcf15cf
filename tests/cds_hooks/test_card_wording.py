"""Card wording fixes of review round 3 (CHANGELOG.md): escalation range, the engine's notes with their
citations, the route no step gives, an amount too large to read. Hand-worked numbers in comments."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cds_hooks import cards
from cds_hooks.fhir_read import DraftReading
from engine.data import Citation, ComparisonThresholds
from engine.order_check import DraftDose, order_check
from engine.vocabulary import DoseBasis, Route
from tests.cds_hooks.test_words import _facts, _protocol, _step

pytestmark = pytest.mark.unit

D = Decimal
LETTER = Citation(key="letter", label="The letter (Table 1)", url="https://example.org/letter")
LABEL = Citation(key="label", label="Package insert", url="https://example.org/label")
THRESHOLDS = ComparisonThresholds(
    reported_max_mg_per_kg_per_day=D(10),
    reported_max_basis="the highest per-kg daily amount any center reports",
    usual_daily_cap_mg=D(400),
    usual_daily_cap_basis="the per-day cap some centers state",
    citation=LETTER,
)
# chop's shape: 2 mg/kg/day, no interval, escalating up to 10 mg/kg/day, at most 400 mg/day.
ESCALATING = _step(
    name="Starting dose, escalating",
    dose_basis=DoseBasis.MG_PER_KG_PER_DAY,
    interval_hours=None,
    max_single_dose_mg=None,
    max_daily_dose_mg=D(400),
    escalation_ceiling_amount=D(10),
    escalation_ceiling_basis=DoseBasis.MG_PER_KG_PER_DAY,
    routes=(Route.IV, Route.SC),
)


def _card(step, per_dose: str, every_hours: int, *, route=Route.IV, weight="20", description="as drafted", **extra):
    protocol = _protocol(step)
    protocol = type(protocol)(**{**{f: getattr(protocol, f) for f in protocol.__slots__}, **extra})
    draft = DraftReading(
        dose=DraftDose(per_dose_mg=D(per_dose), doses_per_day=D(24) / every_hours, route=route),
        interval_hours=D(every_hours),
        description=description,
    )
    check = order_check(protocol=protocol, weight_kg=D(weight), draft=draft.dose)
    setting = cards.CardSetting(base_url="https://cds.example", protocol=protocol, institution_slug="test")
    return cards.dose_card(check=check, draft=draft, request={}, facts=_facts(), setting=setting)


def test_draft_equal_to_the_starting_dose_matches_the_starting_dose():
    # 2 mg/kg/day x 20 kg = 40 mg/day: 10 mg every 6 hours is exactly the start.
    card = _card(ESCALATING, "10", 6)
    assert card["summary"] == (
        "Anakinra 10 mg matches the Test Center protocol (Starting dose, escalating) for 20 kg; indication not assessed"
    )
    assert (
        "- The draft matches what this protocol gives for this weight: Starting dose, escalating.\n" in card["detail"]
    )


def test_draft_above_the_start_within_the_ceiling_is_within_the_escalation_range():
    # 40 mg every 6 hours = 160 mg/day: above the 40 mg/day start, within 10 mg/kg/day x 20 kg = 200 mg/day.
    card = _card(ESCALATING, "40", 6)
    assert card["summary"] == (
        "Anakinra 40 mg (160 mg/day): within the Test Center protocol's escalation range for 20 kg "
        "(start 40 mg/day, ceiling 200 mg/day)"
    )
    assert (
        "- The draft gives 160 mg/day: above the starting dose and within this protocol's escalation range for "
        "this weight (Starting dose, escalating: start 40 mg/day, ceiling 200 mg/day).\n"
    ) in card["detail"]
    assert "matches" not in card["detail"]


def test_escalation_range_names_the_capped_ceiling():
    # 10 mg/kg/day x 45 kg = 450 mg/day, capped at 400; the start is 2 x 45 = 90 mg/day; 100 mg x 4 = 400.
    card = _card(ESCALATING, "100", 6, weight="45")
    assert "(start 90 mg/day, ceiling 400 mg/day)" in card["summary"]


def test_card_lists_every_note_the_engine_raised_with_its_citation():
    # No interval (frequency_not_specified), IV offered (iv_off_label, from the label), and at 45 kg a
    # 10 mg/kg/day ceiling of 450 mg/day capped at 400 mg/day: not above 10 mg/kg/day, and capped, so no
    # comparison note; the label is cited with the fact taken from it.
    card = _card(ESCALATING, "100", 6, weight="45", thresholds=THRESHOLDS, label_citation=LABEL)
    detail = card["detail"]
    assert (
        "#### Warnings and notes\n\n"
        "- Warning: Frequency not specified by this protocol - confirm with pharmacy. Only per-day amounts are "
        "given; no per-dose amount has been calculated.\n"
        "- Info: IV use is off-label: the labelled route is subcutaneous (Kineret US label).\n\n"
    ) in detail
    assert "- [Package insert: labelled route subcutaneous](https://example.org/label)" in detail
    assert "The letter (Table 1)" not in detail


def test_card_cites_the_comparison_amounts_when_it_compares():
    # A fixed 100 mg every 24 hours at 8 kg: 100 / 8 = 12.5 mg/kg/day, above 10 mg/kg/day (80 mg/day).
    fixed = _step(
        dose_basis=DoseBasis.MG_PER_DOSE, amount_low=D(100), amount_high=D(100), interval_hours=24, routes=(Route.SC,)
    )
    card = _card(fixed, "100", 24, route=Route.SC, weight="8", thresholds=THRESHOLDS, label_citation=LABEL)
    assert (
        "- Warning: Step 1 (Starting dose): 100 mg/day (12.5 mg/kg/day): above 10 mg/kg/day, the highest per-kg "
        "daily amount any center reports.\n"
    ) in card["detail"]
    assert "- [The letter (Table 1)](https://example.org/letter)" in card["detail"]


def test_route_no_step_gives_is_said_even_above_the_maximum():
    # musc's shape at 9 kg: 4 mg/kg/dose x 9 kg = 36 mg every 12 hours, subcut only; 100 mg IV is above it.
    subcut = _step(amount_low=D(4), amount_high=D(4), interval_hours=12, routes=(Route.SC,), max_single_dose_mg=None)
    card = _card(subcut, "100", 12, weight="9")
    assert card["indicator"] == "critical"
    assert "- No step of this protocol gives anakinra IV.\n" in card["detail"]
