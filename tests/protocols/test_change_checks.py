"""Plausibility of changed amounts and their coverage by test patients (protocols.change_checks), worked by
hand from the seeded Seattle protocol: 2 mg/kg/dose IV up to every 6 h, at most 100 mg/dose and 400 mg/day."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from engine.data import PatientInputs, ProtocolData, Rule, Step, ToxicityGrade
from engine.vocabulary import DoseBasis, Route, Status, StepKind, Toxicity
from protocols.change_checks import PlausibilityThresholds, amount_coverage, changed_amounts
from protocols.patient_checks import PatientExpectation

pytestmark = pytest.mark.unit

D = Decimal
THRESHOLDS = PlausibilityThresholds(mg_per_kg_per_day=D(10), mg_per_day=D(400), citation="Diorio C, et al. 2022")

SEATTLE_STEP = Step(
    kind=StepKind.INITIAL,
    name="Initial dosing",
    toxicities=frozenset({Toxicity.ICANS}),
    dose_basis=DoseBasis.MG_PER_KG_PER_DOSE,
    amount_low=D(2),
    amount_high=D(2),
    routes=(Route.IV,),
    min_grade=3,
    interval_hours=6,
    interval_is_maximum=True,
    max_single_dose_mg=D(100),
    max_daily_dose_mg=D(400),
)
SEATTLE = ProtocolData(
    institution_slug="seattle",
    institution_name="Seattle Children's Hospital",
    version_id=1,
    version_number=1,
    published_at=None,
    approved_by="the data file",
    rules=(Rule(toxicities=frozenset({Toxicity.ICANS}), summary="with steroids", min_grade=3),),
    steps=(SEATTLE_STEP,),
)


def _with_step(**changes) -> ProtocolData:
    return replace(SEATTLE, version_id=2, version_number=2, steps=(replace(SEATTLE_STEP, **changes),))


def _patient(label: str, weight: int) -> PatientExpectation:
    return PatientExpectation(
        test_patient_id=weight,
        label=label,
        patient=PatientInputs(
            weight_kg=D(weight),
            age_years=D(10),
            toxicities=(ToxicityGrade(Toxicity.ICANS, 3),),
            prior_tocilizumab_doses=0,
            prior_steroids=True,
        ),
        status=Status.INDICATED,
    )


def test_unchanged_version_has_no_changed_amounts():
    assert changed_amounts(old=SEATTLE, new=replace(SEATTLE, version_id=2), thresholds=THRESHOLDS) == []


def test_mistyped_unit_is_flagged_per_kg_per_day():
    # 500 mg/kg/dose every 6 h = 4 x 500 = 2000 mg/kg/day, above 10 mg/kg/day.
    amounts = changed_amounts(old=SEATTLE, new=_with_step(amount_low=D(500), amount_high=D(500)), thresholds=THRESHOLDS)

    assert [(a.field, a.old, a.new, a.per_day_text, a.threshold_text, a.above) for a in amounts] == [
        (
            "amount_low",
            "2 mg/kg/dose up to every 6 h",
            "500 mg/kg/dose up to every 6 h",
            "2000 mg/kg/day",
            "10 mg/kg/day",
            True,
        ),
        (
            "amount_high",
            "2 mg/kg/dose up to every 6 h",
            "500 mg/kg/dose up to every 6 h",
            "2000 mg/kg/day",
            "10 mg/kg/day",
            True,
        ),
    ]


def test_flat_amounts_are_checked_per_day_against_400_mg():
    # 100 mg/dose every 6 h = 400 mg/day: not above. 150 mg/dose every 6 h = 600 mg/day: above.
    at_limit = changed_amounts(
        old=SEATTLE,
        new=_with_step(dose_basis=DoseBasis.MG_PER_DOSE, amount_low=D(100), amount_high=D(100)),
        thresholds=THRESHOLDS,
    )
    above = changed_amounts(
        old=SEATTLE,
        new=_with_step(
            dose_basis=DoseBasis.MG_PER_DOSE,
            amount_low=D(150),
            amount_high=D(150),
            max_daily_dose_mg=None,
            max_single_dose_mg=None,
        ),
        thresholds=THRESHOLDS,
    )

    assert [(a.field, a.per_day_text, a.above) for a in at_limit] == [
        ("amount_low", "400 mg/day", False),
        ("amount_high", "400 mg/day", False),
    ]
    assert [(a.field, a.per_day_text, a.above) for a in above] == [
        ("amount_low", "600 mg/day", True),
        ("amount_high", "600 mg/day", True),
        ("max_single_dose_mg", "", False),
        ("max_daily_dose_mg", "", False),
    ]


def test_a_per_day_cap_typed_ten_times_too_high_is_flagged_and_a_lowered_one_is_not():
    raised = changed_amounts(old=SEATTLE, new=_with_step(max_daily_dose_mg=D(4000)), thresholds=THRESHOLDS)
    lowered = changed_amounts(old=SEATTLE, new=_with_step(max_daily_dose_mg=D(300)), thresholds=THRESHOLDS)

    assert [(a.field, a.new, a.per_day_text, a.above) for a in raised] == [
        ("max_daily_dose_mg", "4000 mg/day", "4000 mg/day", True),
    ]
    assert [(a.field, a.above) for a in lowered] == [("max_daily_dose_mg", False)]


def test_amounts_not_changed_are_not_flagged_again_even_when_above():
    # An amount already above the threshold in the version copied from is not the draft's change.
    high = _with_step(amount_low=D(20), amount_high=D(20))

    assert changed_amounts(old=high, new=replace(high, version_id=3), thresholds=THRESHOLDS) == []


def test_a_new_step_has_every_amount_new():
    extra = replace(SEATTLE_STEP, name="Escalation", amount_low=D(3), amount_high=D(3))
    new = replace(SEATTLE, version_id=2, steps=(SEATTLE_STEP, extra))

    amounts = changed_amounts(old=SEATTLE, new=new, thresholds=THRESHOLDS)

    assert [(a.step_name, a.field, a.old, a.per_day_text, a.above) for a in amounts] == [
        ("Escalation", "amount_low", "not stated (new step)", "12 mg/kg/day", True),
        ("Escalation", "amount_high", "not stated (new step)", "12 mg/kg/day", True),
        ("Escalation", "interval_hours", "not stated (new step)", "", False),
        ("Escalation", "max_single_dose_mg", "not stated (new step)", "400 mg/day", False),
        ("Escalation", "max_daily_dose_mg", "not stated (new step)", "400 mg/day", False),
    ]


def test_the_seattle_change_per_day_cap_exercised_by_no_test_patient():
    # Per-day cap 400 -> 300 mg and a fixed (not "up to") 6-hour interval. The 30 kg patient gets
    # 2 x 30 = 60 mg x 4 = 240 mg/day: under either cap, so only the interval changes that answer. The
    # 45 kg patient: 90 mg x 4 = 360 mg/day, above the new 300 mg/day cap: lowered to 75 mg a dose.
    new = _with_step(max_daily_dose_mg=D(300), interval_is_maximum=False)
    amounts = changed_amounts(old=SEATTLE, new=new, thresholds=THRESHOLDS)
    light, heavy = _patient("30 kg", 30), _patient("45 kg", 45)

    only_light = amount_coverage(old=SEATTLE, new=new, amounts=amounts, expectations=[light])
    both = amount_coverage(old=SEATTLE, new=new, amounts=amounts, expectations=[light, heavy])

    assert [(c.amount.field, c.test_patient_labels) for c in only_light] == [
        ("interval_hours", ("30 kg",)),
        ("max_daily_dose_mg", ()),
    ]
    assert [(c.amount.field, c.test_patient_labels) for c in both] == [
        ("interval_hours", ("30 kg", "45 kg")),
        ("max_daily_dose_mg", ("45 kg",)),
    ]


@pytest.mark.parametrize(
    ("interval_hours", "per_day_working", "per_day_text"),
    [
        # 1000 mg/dose x (24 / interval) doses a day; no per-day cap to hold it.
        (4, "1000 mg/dose every 4 h is 6 doses a day x 1000 mg = 6000 mg/day", "6000 mg/day"),  # 24 / 4 = 6
        (6, "1000 mg/dose every 6 h is 4 doses a day x 1000 mg = 4000 mg/day", "4000 mg/day"),  # 24 / 6 = 4
        (8, "1000 mg/dose every 8 h is 3 doses a day x 1000 mg = 3000 mg/day", "3000 mg/day"),  # 24 / 8 = 3
        (12, "1000 mg/dose every 12 h is 2 doses a day x 1000 mg = 2000 mg/day", "2000 mg/day"),  # 24 / 12 = 2
        (24, "1000 mg/dose every 24 h is 1 dose a day x 1000 mg = 1000 mg/day", "1000 mg/day"),  # 24 / 24 = 1
    ],
)
def test_per_dose_cap_per_day_is_the_doses_its_interval_gives(interval_hours, per_day_working, per_day_text):
    new = _with_step(
        interval_hours=interval_hours, interval_is_maximum=False, max_single_dose_mg=D(1000), max_daily_dose_mg=None
    )

    [cap] = [a for a in changed_amounts(old=SEATTLE, new=new, thresholds=THRESHOLDS) if a.field == "max_single_dose_mg"]

    assert (cap.per_day_working, cap.per_day_text, cap.per_day, cap.above) == (
        per_day_working,
        per_day_text,
        D(1000) * (24 // interval_hours),
        True,
    )


def test_per_dose_cap_held_by_the_per_day_cap_says_both_numbers():
    # The QA walk's case: 1000 mg/dose every 6 h = 4 x 1000 = 4000 mg/day, which the 3000 mg/day cap holds to
    # 3000 mg/day (still above 400 mg/day). The message used to say "1000 mg/dose every 6 h is 3000 mg/day".
    new = _with_step(interval_is_maximum=False, max_single_dose_mg=D(1000), max_daily_dose_mg=D(3000))

    amounts = changed_amounts(old=SEATTLE, new=new, thresholds=THRESHOLDS)

    # The amounts (2 mg/kg, 4 doses a day either way) are unchanged; a per-day amount reads as itself.
    assert [(a.field, a.per_day_working, a.per_day_text, a.above) for a in amounts] == [
        ("interval_hours", "every 6 h", "", False),
        (
            "max_single_dose_mg",
            "1000 mg/dose every 6 h is 4 doses a day x 1000 mg = 4000 mg/day, held to 3000 mg/day by the "
            "maximum per day",
            "3000 mg/day",
            True,
        ),
        ("max_daily_dose_mg", "3000 mg/day", "3000 mg/day", True),
    ]


@pytest.mark.parametrize(
    ("interval_hours", "per_day_working", "per_day"),
    [
        # 2.5 mg/kg x at most (24 / interval) doses a day.
        (3, "2.5 mg/kg/dose up to every 3 h is at most 8 doses a day x 2.5 mg/kg = 20 mg/kg/day", D(20)),  # 8 x 2.5
        (8, "2.5 mg/kg/dose up to every 8 h is at most 3 doses a day x 2.5 mg/kg = 7.5 mg/kg/day", D("7.5")),
        (12, "2.5 mg/kg/dose up to every 12 h is at most 2 doses a day x 2.5 mg/kg = 5 mg/kg/day", D(5)),
    ],
)
def test_per_kg_amount_per_day_is_the_doses_its_interval_gives(interval_hours, per_day_working, per_day):
    new = _with_step(amount_low=D("2.5"), amount_high=D("2.5"), interval_hours=interval_hours)

    [low] = [a for a in changed_amounts(old=SEATTLE, new=new, thresholds=THRESHOLDS) if a.field == "amount_low"]

    assert (low.per_day_working, low.per_day, low.above) == (per_day_working, per_day, per_day > D(10))
