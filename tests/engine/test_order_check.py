"""engine.order_check: a drafted order against every step of one protocol, for one weight."""

from decimal import Decimal

import pytest

from engine.data import ProtocolData, Step
from engine.order_check import DraftDose, Verdict, order_check
from engine.vocabulary import DoseBasis, Route, StepKind, Toxicity

pytestmark = pytest.mark.unit

ALL = frozenset(Toxicity)


def _protocol(*steps: Step) -> ProtocolData:
    return ProtocolData(
        institution_slug="test",
        institution_name="Test Center",
        version_id=1,
        version_number=1,
        published_at=None,
        approved_by="",
        rules=(),
        steps=steps,
    )


def _step(**overrides) -> Step:
    values = {
        "kind": StepKind.INITIAL,
        "name": "Initial dosing",
        "toxicities": ALL,
        "dose_basis": DoseBasis.MG_PER_KG_PER_DOSE,
        "amount_low": Decimal("2"),
        "amount_high": Decimal("2"),
        "routes": (Route.IV,),
        "interval_hours": 6,
        "max_single_dose_mg": Decimal("100"),
        "max_daily_dose_mg": Decimal("400"),
    }
    values.update(overrides)
    return Step(**values)


CAPPED = _protocol(_step())


def _draft(dose: str | None, per_day: str | None = "4", route: Route | None = Route.IV, **more) -> DraftDose:
    return DraftDose(
        per_dose_mg=Decimal(dose) if dose is not None else None,
        doses_per_day=Decimal(per_day) if per_day is not None else None,
        route=route,
        **more,
    )


def test_order_check_dose_above_weight_maximum_is_above_maximum_with_correction():
    check = order_check(protocol=CAPPED, weight_kg=Decimal("20"), draft=_draft("100"))

    assert check.verdict == Verdict.ABOVE_MAXIMUM
    assert (check.max_per_dose_mg, check.max_per_day_mg) == (Decimal("40.0"), Decimal("160.0"))
    assert check.findings == (
        "100 mg per dose is above the most any step of this protocol gives per dose at 20 kg (40 mg).",
        "400 mg/day is above the most any step of this protocol gives per day at 20 kg (160 mg/day).",
    )
    assert [(c.route, c.per_dose_mg) for c in check.corrections] == [(Route.IV, Decimal("40.0"))]


def test_order_check_per_dose_cap_applies_whatever_the_grade_and_is_named():
    check = order_check(protocol=CAPPED, weight_kg=Decimal("70"), draft=_draft("140"))

    assert check.verdict == Verdict.ABOVE_MAXIMUM
    assert check.max_per_dose_mg == Decimal("100")
    assert check.findings == (
        "140 mg per dose is above the most any step of this protocol gives per dose at 70 kg (100 mg).",
        "560 mg/day is above the most any step of this protocol gives per day at 70 kg (400 mg/day).",
        "It is above the protocol's stated cap of 100 mg per dose.",
        "It is above the protocol's stated cap of 400 mg per day.",
    )
    assert [c.per_dose_mg for c in check.corrections] == [Decimal("100")]


def test_order_check_protocol_dose_matches_without_corrections():
    check = order_check(protocol=CAPPED, weight_kg=Decimal("20"), draft=_draft("40"))

    assert check.verdict == Verdict.MATCHES
    assert [r.step.name for r in check.matched] == ["Initial dosing"]
    assert check.corrections == ()
    assert check.findings == ()


def test_order_check_lower_dose_differs_and_offers_the_protocol_dose():
    check = order_check(protocol=CAPPED, weight_kg=Decimal("20"), draft=_draft("30"))

    assert check.verdict == Verdict.DIFFERS
    assert [c.per_dose_mg for c in check.corrections] == [Decimal("40.0")]


def test_order_check_wrong_frequency_differs():
    check = order_check(protocol=CAPPED, weight_kg=Decimal("20"), draft=_draft("40", per_day="2"))

    assert check.verdict == Verdict.DIFFERS


def test_order_check_less_often_than_an_up_to_interval_matches():
    protocol = _protocol(_step(interval_is_maximum=True))

    check = order_check(protocol=protocol, weight_kg=Decimal("20"), draft=_draft("40", per_day="3"))

    assert check.verdict == Verdict.MATCHES


def test_order_check_route_not_offered_differs_and_corrects_to_the_protocol_route():
    protocol = _protocol(_step(routes=(Route.SC,)))

    check = order_check(protocol=protocol, weight_kg=Decimal("20"), draft=_draft("40"))

    assert check.verdict == Verdict.DIFFERS
    assert check.findings == ("No step of this protocol gives anakinra IV.",)
    assert [(c.route, c.per_dose_mg) for c in check.corrections] == [(Route.SC, Decimal("40.0"))]


def test_order_check_unreadable_dose_is_not_comparable_and_offers_each_route():
    protocol = _protocol(_step(routes=(Route.IV, Route.SC)))

    check = order_check(protocol=protocol, weight_kg=Decimal("20"), draft=_draft(None, route=None))

    assert check.verdict == Verdict.NOT_COMPARABLE
    assert [(c.route, c.per_dose_mg) for c in check.corrections] == [
        (Route.IV, Decimal("40.0")),
        (Route.SC, Decimal("40.0")),
    ]


def test_order_check_without_protocol_interval_compares_per_day_and_never_corrects():
    # 2 mg/kg/day, escalating to 10 mg/kg/day, capped at 400 mg/day; no interval stated.
    protocol = _protocol(
        _step(
            dose_basis=DoseBasis.MG_PER_KG_PER_DAY,
            interval_hours=None,
            max_single_dose_mg=None,
            escalation_ceiling_amount=Decimal("10"),
            escalation_ceiling_basis=DoseBasis.MG_PER_KG_PER_DAY,
        )
    )

    within = order_check(protocol=protocol, weight_kg=Decimal("20"), draft=_draft("100", per_day="2"))
    above = order_check(protocol=protocol, weight_kg=Decimal("20"), draft=_draft("150", per_day="2"))

    assert within.verdict == Verdict.MATCHES
    assert above.verdict == Verdict.ABOVE_MAXIMUM
    assert above.max_per_dose_mg is None
    assert above.corrections == ()
    assert above.findings == (
        "300 mg/day is above the most any step of this protocol gives per day at 20 kg (200 mg/day).",
    )


def test_order_check_single_dose_above_daily_maximum_without_frequency():
    protocol = _protocol(_step(dose_basis=DoseBasis.MG_PER_KG_PER_DAY, interval_hours=None, max_single_dose_mg=None))

    check = order_check(protocol=protocol, weight_kg=Decimal("20"), draft=_draft("50", per_day=None))

    assert check.verdict == Verdict.ABOVE_MAXIMUM
    assert check.findings == (
        "A single dose of 50 mg is above the most any step of this protocol gives in a whole day at 20 kg (40 mg/day).",
        "The draft states no frequency that can be read: the frequency and the per-day amount were not checked.",
    )


def test_order_check_per_dose_range_corrects_to_the_nearest_bound():
    protocol = _protocol(_step(amount_low=Decimal("2.5"), amount_high=Decimal("4"), interval_hours=12))

    check = order_check(protocol=protocol, weight_kg=Decimal("10"), draft=_draft("60", per_day="2"))

    assert check.verdict == Verdict.ABOVE_MAXIMUM
    assert [c.per_dose_mg for c in check.corrections] == [Decimal("40.0")]


def test_order_check_every_step_is_computed_and_the_largest_sets_the_maximum():
    protocol = _protocol(
        _step(name="Initial", amount_low=Decimal("4"), amount_high=Decimal("4"), interval_hours=12, routes=(Route.SC,)),
        _step(
            kind=StepKind.ALTERNATIVE,
            name="Fixed",
            dose_basis=DoseBasis.MG_PER_DOSE,
            amount_low=Decimal("100"),
            amount_high=Decimal("100"),
            interval_hours=24,
            routes=(Route.SC,),
        ),
    )

    check = order_check(protocol=protocol, weight_kg=Decimal("20"), draft=_draft("100", per_day="2", route=Route.SC))

    assert (check.max_per_dose_mg, check.max_per_day_mg) == (Decimal("100"), Decimal("160.0"))
    assert check.verdict == Verdict.ABOVE_MAXIMUM
    assert [(c.result.step.name, c.per_dose_mg) for c in check.corrections] == [
        ("Initial", Decimal("80.0")),
        ("Fixed", Decimal("100")),
    ]


# --- An mg dose and an mg/kg dose on one order -------------------------------------------------------


def test_order_check_mg_dose_beside_an_agreeing_mg_per_kg_dose_matches():
    check = order_check(protocol=CAPPED, weight_kg=Decimal("20"), draft=_draft("40", mg_per_kg=Decimal("2")))

    assert (check.verdict, check.dose_conflict, check.above_maximum) == (Verdict.MATCHES, False, False)


def test_order_check_mg_dose_capped_by_the_protocol_beside_its_mg_per_kg_dose_matches():
    # 2 mg/kg x 60 kg = 120 mg, capped at 100 mg per dose: the pair the protocol itself gives.
    check = order_check(protocol=CAPPED, weight_kg=Decimal("60"), draft=_draft("100", mg_per_kg=Decimal("2")))

    assert (check.verdict, check.dose_conflict) == (Verdict.MATCHES, False)
    assert check.findings == ()


def test_order_check_mg_and_mg_per_kg_doses_that_disagree_are_not_compared():
    # 40 mg is the protocol dose at 20 kg, but 1.5 mg/kg is 30 mg: which was meant is not guessed.
    check = order_check(protocol=CAPPED, weight_kg=Decimal("20"), draft=_draft("40", mg_per_kg=Decimal("1.5")))

    assert (check.verdict, check.dose_conflict, check.above_maximum) == (Verdict.NOT_COMPARABLE, True, False)
    assert check.matched == ()
    assert check.findings == (
        "The draft states 40 mg and 1.5 mg/kg (30 mg at 20 kg): they differ by more than 0.1 mg and no step of "
        "this protocol gives that pair, so which dose is meant is not guessed and the dose was not compared. "
        "Correct the order so that both state one dose.",
    )
    assert [c.per_dose_mg for c in check.corrections] == [Decimal("40.0")]


def test_order_check_mg_dose_above_the_maximum_is_critical_whatever_its_mg_per_kg_dose():
    # The review case: 2 mg/kg ordered, 400 mg calculated, every 6 hours, at 20 kg.
    check = order_check(protocol=CAPPED, weight_kg=Decimal("20"), draft=_draft("400", mg_per_kg=Decimal("2")))

    assert (check.verdict, check.dose_conflict, check.above_maximum) == (Verdict.ABOVE_MAXIMUM, True, True)
    assert check.findings[1] == (
        "400 mg per dose is above the most any step of this protocol gives per dose at 20 kg (40 mg)."
    )


def test_order_check_mg_per_kg_dose_above_the_maximum_beside_a_protocol_mg_dose_is_flagged():
    check = order_check(protocol=CAPPED, weight_kg=Decimal("20"), draft=_draft("40", mg_per_kg=Decimal("10")))

    assert (check.verdict, check.dose_conflict, check.above_maximum) == (Verdict.NOT_COMPARABLE, True, True)
    assert check.findings[0].endswith(
        " 200 mg per dose would be above the most any step of this protocol gives per dose at 20 kg (40 mg)."
    )


# --- Nothing that was not read can match ---------------------------------------------------------------


def test_order_check_protocol_dose_without_a_readable_frequency_is_unconfirmed_with_the_full_dosage_offered():
    check = order_check(protocol=CAPPED, weight_kg=Decimal("60"), draft=_draft("100", per_day=None))

    assert check.verdict == Verdict.UNCONFIRMED
    assert check.not_read == ("frequency",)
    assert [r.step.name for r in check.matched] == ["Initial dosing"]
    assert [(c.route, c.per_dose_mg) for c in check.corrections] == [(Route.IV, Decimal("100"))]
    assert check.findings == (
        "The draft states no frequency that can be read: the frequency and the per-day amount were not checked.",
    )


def test_order_check_protocol_dose_without_a_readable_route_is_unconfirmed():
    check = order_check(protocol=CAPPED, weight_kg=Decimal("20"), draft=_draft("40", route=None))

    assert (check.verdict, check.not_read) == (Verdict.UNCONFIRMED, ("route",))


def test_order_check_protocol_dose_with_unread_parts_is_unconfirmed():
    draft = _draft("40", unread=("The draft has 2 dosage instructions: only the first was read.",))

    check = order_check(protocol=CAPPED, weight_kg=Decimal("20"), draft=draft)

    assert (check.verdict, check.not_read) == (Verdict.UNCONFIRMED, ("order",))
    assert check.findings == ("The draft has 2 dosage instructions: only the first was read.",)


def test_order_check_other_dose_without_a_readable_frequency_differs():
    check = order_check(protocol=CAPPED, weight_kg=Decimal("20"), draft=_draft("30", per_day=None))

    assert check.verdict == Verdict.DIFFERS


def test_order_check_as_needed_draft_does_not_match_a_fixed_schedule():
    check = order_check(protocol=CAPPED, weight_kg=Decimal("20"), draft=_draft("40", interval_is_maximum=True))

    assert check.verdict == Verdict.DIFFERS


def test_order_check_as_needed_draft_matches_an_up_to_interval():
    protocol = _protocol(_step(interval_is_maximum=True))

    check = order_check(protocol=protocol, weight_kg=Decimal("20"), draft=_draft("40", interval_is_maximum=True))

    assert check.verdict == Verdict.MATCHES
