"""The pure engine, with synthetic protocols (no database): caps, ranges, rounding, rules, warnings."""

from __future__ import annotations

import ast
import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.data import Citation, ComparisonThresholds, PatientInputs, ProtocolData, Rule, Step, ToxicityGrade
from engine.dosing import step_dose
from engine.notation import amount_range, plain_number
from engine.recommend import InvalidPatient, recommend, recommend_all
from engine.text import step_words
from engine.vocabulary import DoseBasis, Route, Status, StepKind, Toxicity

pytestmark = pytest.mark.unit

D = Decimal
ALL = frozenset(Toxicity)
CONC = D(150)
# Synthetic comparison amounts, as a version states them (clinical.md section 4: 10 mg/kg/day, 400 mg/day).
THRESHOLDS = ComparisonThresholds(
    reported_max_mg_per_kg_per_day=D(10),
    reported_max_basis="the highest per-kg daily amount any center reports",
    usual_daily_cap_mg=D(400),
    usual_daily_cap_basis="the per-day cap that some centers state",
    citation=Citation(key="letter#T1", label="The letter (Table 1)"),
)


def step(**overrides) -> Step:
    values = dict(
        kind=StepKind.INITIAL,
        name="Test step",
        toxicities=ALL,
        dose_basis=DoseBasis.MG_PER_KG_PER_DOSE,
        amount_low=D(2),
        amount_high=D(2),
        routes=(Route.IV,),
        interval_hours=6,
    )
    values.update(overrides)
    return Step(**values)


def protocol(*, rules=None, steps=None, **overrides) -> ProtocolData:
    values = dict(
        institution_slug="test",
        institution_name="Test Center",
        version_id=1,
        version_number=1,
        published_at=None,
        approved_by="tests",
        rules=rules if rules is not None else (Rule(toxicities=ALL, summary="test rule"),),
        steps=steps if steps is not None else (step(),),
        thresholds=THRESHOLDS,
    )
    values.update(overrides)
    return ProtocolData(**values)


def patient(weight="20", toxicities=(("CRS", 3),), tocilizumab=1, steroids=True, **extra) -> PatientInputs:
    return PatientInputs(
        weight_kg=D(weight),
        age_years=D(extra.pop("age", "10")),
        toxicities=tuple(ToxicityGrade(Toxicity(t), g) for t, g in toxicities),
        prior_tocilizumab_doses=tocilizumab,
        prior_steroids=steroids,
        **extra,
    )


# --- Dose arithmetic ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weight", "per_dose", "per_day", "capped_by"),
    [
        ("20", "40", "160", ()),  # 2 x 20
        ("50", "100", "400", ()),  # 2 x 50 = exactly the cap
        ("50.5", "100", "400", ("max_single_dose",)),  # 101 -> 100
    ],
)
def test_step_dose_per_dose_cap(weight, per_dose, per_day, capped_by):
    result = step_dose(
        step=step(max_single_dose_mg=D(100), max_daily_dose_mg=D(400)),
        weight_kg=D(weight),
        concentration_mg_per_ml=CONC,
    )
    assert (result.per_dose_mg.low, result.per_day_mg.low, tuple(c.value for c in result.capped_by)) == (
        D(per_dose),
        D(per_day),
        capped_by,
    )


def test_step_dose_per_day_cap_lowers_the_per_dose_amount():
    # 2 mg/kg x 45 kg = 90 mg every 4 h = 6 doses = 540 mg/day > 400 -> 400 / 6 = 66.66.. -> 66.6 mg (never rounded up)
    result = step_dose(
        step=step(interval_hours=4, max_single_dose_mg=D(100), max_daily_dose_mg=D(400)),
        weight_kg=D(45),
        concentration_mg_per_ml=CONC,
    )
    assert (result.calculated_per_dose_mg.low, result.per_dose_mg.low, result.per_day_mg.low) == (
        D("90.0"),
        D("66.6"),
        D("399.6"),
    )
    assert [c.value for c in result.capped_by] == ["max_daily_dose"]


def test_step_dose_applies_per_dose_cap_before_per_day_cap():
    # 3 mg/kg x 60 = 180 -> 150 (per dose) -> x 4 = 600 > 500 -> 125 mg
    result = step_dose(
        step=step(amount_low=D(3), amount_high=D(3), max_single_dose_mg=D(150), max_daily_dose_mg=D(500)),
        weight_kg=D(60),
        concentration_mg_per_ml=CONC,
    )
    assert (result.per_dose_mg.low, result.per_day_mg.low) == (D(125), D(500))
    assert [c.value for c in result.capped_by] == ["max_single_dose", "max_daily_dose"]


def test_step_dose_range_caps_each_bound():
    # 8-10 mg/kg/day x 45 = 360-450 mg/day, per-day cap 400 -> 360-400
    result = step_dose(
        step=step(
            dose_basis=DoseBasis.MG_PER_KG_PER_DAY,
            amount_low=D(8),
            amount_high=D(10),
            interval_hours=None,
            max_daily_dose_mg=D(400),
        ),
        weight_kg=D(45),
        concentration_mg_per_ml=CONC,
    )
    assert (result.per_dose_mg, result.per_day_mg.low, result.per_day_mg.high) == (None, D(360), D(400))
    assert [c.value for c in result.capped_by] == ["max_daily_dose"]


@pytest.mark.parametrize(
    ("weight", "ceiling", "ceiling_capped_by"),
    [
        ("40", "400", []),  # 10 mg/kg/day x 40 kg = 400 mg/day: at the cap, not lowered
        ("40.01", "400", ["max_daily_dose"]),  # 10 x 40.01 = 400.1 mg/day > 400: lowered, so reported
        # Compared at 0.1 mg (review round 3): 10 x 40.004 = 400.04 -> shown 400.0 mg/day, not reported;
        # 10 x 40.005 = 400.05 -> 400.1 mg/day (half up) > 400, reported.
        ("40.004", "400", []),
        ("40.005", "400", ["max_daily_dose"]),
    ],
)
def test_step_dose_escalation_ceiling_lowered_by_the_per_day_cap_is_reported(weight, ceiling, ceiling_capped_by):
    result = step_dose(
        step=step(
            dose_basis=DoseBasis.MG_PER_KG_PER_DAY,
            interval_hours=None,
            max_daily_dose_mg=D(400),
            escalation_ceiling_amount=D(10),
            escalation_ceiling_basis=DoseBasis.MG_PER_KG_PER_DAY,
        ),
        weight_kg=D(weight),
        concentration_mg_per_ml=CONC,
    )
    # The starting 2 mg/kg/day (80-80.02 mg/day) is itself never capped: capped_by stays empty, and the cap
    # that lowered the ceiling is reported on the ceiling alone.
    assert (
        result.max_escalation_per_day_mg,
        [c.value for c in result.capped_by],
        [c.value for c in result.max_escalation_capped_by],
    ) == (D(ceiling), [], ceiling_capped_by)


def test_step_dose_per_day_basis_with_interval_divides_the_day():
    # 10 mg/kg/day x 30 kg = 300 mg/day over 4 doses = 75 mg; 75 / 150 = 0.5 mL
    result = step_dose(
        step=step(dose_basis=DoseBasis.MG_PER_KG_PER_DAY, amount_low=D(10), amount_high=D(10)),
        weight_kg=D(30),
        concentration_mg_per_ml=CONC,
    )
    assert (result.per_dose_mg.low, result.per_day_mg.low, result.volume_ml.low) == (D(75), D(300), D("0.5"))


@pytest.mark.parametrize(
    ("weight", "ordered", "applied"),
    [
        ("36.4", "100", True),  # 91 mg -> 100 mg: +9.89%, just inside 10%
        ("36.3", "90.8", False),  # 90.75 mg -> 100 mg: +10.19%, just outside
        ("44.4", "100", True),  # 111 mg -> 100 mg: -9.91%, inside
        ("44.5", "111.3", False),  # 111.25 mg -> 100 mg: -10.11%, outside
    ],
)
def test_step_dose_rounding_just_inside_and_outside_tolerance(weight, ordered, applied):
    s = step(
        dose_basis=DoseBasis.MG_PER_KG_PER_DAY,
        amount_low=D(10),
        amount_high=D(10),
        rounding_increment_mg=D(100),
        rounding_tolerance_percent=D(10),
    )
    result = step_dose(step=s, weight_kg=D(weight), concentration_mg_per_ml=CONC)
    assert (result.per_dose_mg.low, step_words(result).rounding.applied) == (D(ordered), applied)


def test_step_dose_rounding_never_beats_a_cap():
    # 2.5 mg/kg x 38 = 95 -> rounds to 100, but the per-dose cap is 90
    s = step(
        amount_low=D("2.5"),
        amount_high=D("2.5"),
        max_single_dose_mg=D(90),
        rounding_increment_mg=D(100),
        rounding_tolerance_percent=D(10),
    )
    result = step_dose(step=s, weight_kg=D(38), concentration_mg_per_ml=CONC)
    assert (result.calculated_per_dose_mg.low, result.per_dose_mg.low) == (D(95), D(90))
    assert ([c.value for c in result.capped_by], step_words(result).rounding.applied) == (["max_single_dose"], True)


def test_step_dose_flat_dose_ignores_weight():
    result = step_dose(
        step=step(dose_basis=DoseBasis.MG_PER_DOSE, amount_low=D(100), amount_high=D(100), interval_hours=24),
        weight_kg=D(7),
        concentration_mg_per_ml=CONC,
    )
    assert (result.per_dose_mg.low, result.per_day_mg.low, step_words(result).order_text) == (
        D(100),
        D(100),
        "anakinra 100 mg IV every 24 hours (100 mg/dose)",
    )


def test_step_dose_subcut_is_written_out_in_the_order():
    result = step_dose(step=step(routes=(Route.SC,), interval_hours=12), weight_kg=D(10), concentration_mg_per_ml=CONC)
    assert step_words(result).order_text == "anakinra 20 mg subcut every 12 hours (2 mg/kg/dose)"


def test_notation_has_no_trailing_zeros_and_a_leading_zero():
    assert [plain_number(D("40.0")), plain_number(D(".5")), plain_number(D("112.50")), plain_number(D("1E+2"))] == [
        "40",
        "0.5",
        "112.5",
        "100",
    ]
    assert amount_range(D("160.0"), D("200"), "mg/day") == "160 to 200 mg/day"


# --- Rules and status ---------------------------------------------------------------------------

THIRD_LINE = Rule(toxicities=ALL, summary="third line", min_prior_tocilizumab_doses=1, requires_steroids=True)


@pytest.mark.parametrize(
    ("tocilizumab", "steroids", "status", "missing"),
    [
        (1, True, "indicated", None),
        (0, True, "not_indicated", "tocilizumab not yet given"),
        (1, False, "not_indicated", "steroids not yet given"),
        (0, False, "not_indicated", "tocilizumab and steroids not yet given"),
    ],
)
def test_recommend_each_prerequisite_missing_in_turn(tocilizumab, steroids, status, missing):
    result = recommend(
        protocol=protocol(rules=(THIRD_LINE,)), patient=patient(tocilizumab=tocilizumab, steroids=steroids)
    )
    assert result.status == status
    if missing:
        assert result.reasons == (
            f"CRS grade 3: third line; needs prior tocilizumab and steroids given or starting; {missing}",
        )


def test_recommend_two_tocilizumab_doses_required_names_the_count():
    rule = Rule(toxicities=ALL, summary="after two doses", min_prior_tocilizumab_doses=2)
    result = recommend(protocol=protocol(rules=(rule,)), patient=patient(tocilizumab=1))
    assert result.reasons == (
        "CRS grade 3: after two doses; needs at least 2 prior tocilizumab doses; "
        "tocilizumab (1 of 2 doses) not yet given",
    )


def test_recommend_best_status_wins_across_rules_and_toxicities():
    rules = (
        Rule(toxicities=frozenset({Toxicity.CRS}), summary="consider for CRS", result_status=Status.CONSIDER),
        Rule(toxicities=frozenset({Toxicity.ICANS}), summary="ICANS", min_grade=3),
    )
    several = patient(toxicities=(("CRS", 2), ("ICANS", 3)))
    assert recommend(protocol=protocol(rules=rules), patient=several).status == Status.INDICATED
    only_crs = patient(toxicities=(("CRS", 2), ("ICANS", 2)))
    assert recommend(protocol=protocol(rules=rules), patient=only_crs).status == Status.CONSIDER


def test_recommend_steps_filtered_by_toxicity_and_grade_band():
    steps = (
        step(name="severe", toxicities=frozenset({Toxicity.CARHLH}), min_grade=3, max_grade=4),
        step(name="mild", toxicities=frozenset({Toxicity.CARHLH}), min_grade=1, max_grade=2),
        step(name="crs", toxicities=frozenset({Toxicity.CRS})),
    )
    result = recommend(protocol=protocol(steps=steps), patient=patient(toxicities=(("carHLH", 4), ("CRS", 1))))
    assert [s.step.name for s in result.steps] == ["severe", "crs"]


def test_recommend_rule_met_but_no_step_for_the_toxicity_is_not_indicated():
    steps = (step(toxicities=frozenset({Toxicity.CRS})),)
    result = recommend(protocol=protocol(steps=steps), patient=patient(toxicities=(("ICANS", 3),)))
    assert (result.status, result.steps, result.reasons[-1]) == (
        Status.NOT_INDICATED,
        (),
        "No dosing step of this protocol applies to ICANS grade 3",
    )


def test_recommend_hypersensitivity_is_contraindicated_with_no_steps():
    result = recommend(protocol=protocol(), patient=patient(ecoli_protein_hypersensitivity=True))
    assert (result.status, result.steps, result.warnings[0].code) == (
        Status.CONTRAINDICATED,
        (),
        "contraindicated_hypersensitivity",
    )


@pytest.mark.parametrize(
    ("extra", "code", "expected"),
    [
        ({"weight": "100"}, "weight_confirm", True),
        ({"weight": "99.999"}, "weight_confirm", False),
        ({"age": "30"}, "adult_patient", False),
        ({"age": "30.5"}, "adult_patient", True),
        ({"creatinine_clearance_ml_min": D(30)}, "renal_impairment", False),
        ({"creatinine_clearance_ml_min": D("29.9")}, "renal_impairment", True),
    ],
)
def test_recommend_warning_thresholds(extra, code, expected):
    extra = dict(extra)
    weight = extra.pop("weight", "20")
    result = recommend(protocol=protocol(), patient=patient(weight=weight, **extra))
    assert (code in [w.code for w in result.warnings]) is expected


def test_recommend_route_warnings_follow_the_listed_steps():
    sc_only = protocol(steps=(step(routes=(Route.SC,)),))
    result = recommend(
        protocol=sc_only, patient=patient(toxicities=(("ICANS", 3),), thrombocytopenia_or_coagulopathy=True)
    )
    assert [w.code for w in result.warnings] == ["sc_bleeding_risk", "prefer_iv", "general_monitoring"]
    iv_only = recommend(protocol=protocol(), patient=patient(thrombocytopenia_or_coagulopathy=True))
    assert [w.code for w in iv_only.warnings] == ["iv_off_label", "general_monitoring"]


def test_recommend_all_orders_by_institution_name():
    protocols = [
        protocol(institution_slug=s, institution_name=n) for s, n in (("b", "Beta"), ("a", "Alpha"), ("c", "Gamma"))
    ]
    assert [r.protocol.institution_slug for r in recommend_all(protocols=protocols, patient=patient())] == [
        "a",
        "b",
        "c",
    ]


@pytest.mark.parametrize("weight", ["0.999", "150.001"])
def test_recommend_refuses_weight_outside_1_to_150(weight):
    with pytest.raises(InvalidPatient):
        recommend(protocol=protocol(), patient=patient(weight=weight))


def test_engine_imports_nothing_from_django():
    for path in Path("engine").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {
            (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        assert not any(name.split(".")[0] in {"django", "protocols", "assessments", "api"} for name in imported), path


def test_engine_never_uses_float():
    for path in Path("engine").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        floats = [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, float)]
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "float"]
        assert (floats, calls) == ([], []), path


# --- Properties ---------------------------------------------------------------------------------

weights = st.decimals(min_value=D(1), max_value=D(150), places=3)
amounts = st.decimals(min_value=D("0.1"), max_value=D(20), places=2)
caps = st.one_of(st.none(), st.decimals(min_value=D(10), max_value=D(1000), places=1))
intervals = st.sampled_from([None, 4, 6, 8, 12, 24])


@st.composite
def steps(draw) -> Step:
    interval = draw(intervals)
    basis = draw(st.sampled_from(list(DoseBasis) if interval else [DoseBasis.MG_PER_KG_PER_DAY, DoseBasis.MG_PER_DAY]))
    low = draw(amounts)
    high = draw(st.decimals(min_value=low, max_value=low + 10, places=2))
    if not basis.per_kg:
        low, high = low * 20, high * 20
    if interval and not basis.per_dose:
        # Mirrors the model constraint: a divided per-day amount is at least 0.1 mg per dose at 1 kg.
        low = max(low, (D("2.4") / interval).quantize(D("0.01"), rounding="ROUND_UP"))
        high = max(high, low)
    single = draw(caps) if interval else None
    daily = draw(caps)
    if single is not None and daily is not None and single > daily:
        single, daily = daily, single
    rounding = draw(st.booleans()) and interval is not None
    return step(
        dose_basis=basis,
        amount_low=low,
        amount_high=high,
        interval_hours=interval,
        max_single_dose_mg=single,
        max_daily_dose_mg=daily,
        rounding_increment_mg=D(100) if rounding else None,
        rounding_tolerance_percent=D(10) if rounding else None,
    )


@settings(max_examples=300, deadline=None)
@given(s=steps(), weight=weights)
def test_property_ordered_amounts_never_exceed_caps_and_are_positive(s, weight):
    result = step_dose(step=s, weight_kg=weight, concentration_mg_per_ml=CONC)
    if result.per_dose_mg is not None:
        assert D(0) < result.per_dose_mg.low <= result.per_dose_mg.high
        if s.max_single_dose_mg is not None:
            assert result.per_dose_mg.high <= s.max_single_dose_mg
    assert D(0) <= result.per_day_mg.low <= result.per_day_mg.high
    if s.max_daily_dose_mg is not None:
        assert result.per_day_mg.high <= s.max_daily_dose_mg


@settings(max_examples=200, deadline=None)
@given(s=steps(), first=weights, second=weights)
def test_property_amount_rises_with_weight_until_a_cap_binds(s, first, second):
    s = dataclasses.replace(s, rounding_increment_mg=None, rounding_tolerance_percent=None)
    lighter, heavier = sorted((first, second))
    light = step_dose(step=s, weight_kg=lighter, concentration_mg_per_ml=CONC)
    heavy = step_dose(step=s, weight_kg=heavier, concentration_mg_per_ml=CONC)
    # Never less for a heavier child...
    assert (light.per_day_mg.low, light.per_day_mg.high) <= (heavy.per_day_mg.low, heavy.per_day_mg.high)
    # ...and strictly more for a weight-based dose while no cap binds (1 kg apart: at least 0.1 mg/kg more).
    if s.dose_basis.per_kg and not heavy.capped_by and heavier - lighter >= 1:
        assert light.per_day_mg.high < heavy.per_day_mg.high


def test_warning_code_order_is_by_severity_then_fixed_code_order():
    from engine import safety

    severities = {w.code: w.severity for w in vars(safety).values() if isinstance(w, safety.Warning)}
    severities |= {
        "above_reported_maximum": "warning",
        "above_usual_daily_cap": "info",
        "product_experience": "info",
        "prefer_iv": "info",
    }
    ranks = [safety.SEVERITY_ORDER[severities[code]] for code in safety.CODE_ORDER]
    assert (ranks, sorted(severities)) == (sorted(ranks), sorted(safety.CODE_ORDER))


def test_recommend_lists_each_warning_once_in_code_order():
    p = patient(
        weight="120",
        age="35",
        concurrent_tnf_blocker=True,
        active_infection=True,
        thrombocytopenia_or_coagulopathy=True,
        creatinine_clearance_ml_min=D(10),
        toxicities=(("CRS", 4), ("ICANS", 4)),
    )
    sc_and_iv = protocol(
        steps=(
            step(
                routes=(Route.IV, Route.SC),
                interval_hours=None,
                dose_basis=DoseBasis.MG_PER_KG_PER_DAY,
                amount_low=D(12),
                amount_high=D(12),
            ),
        ),
        reported_car_target="CD22",
    )
    # 12 mg/kg/day x 120 kg = 1440 mg/day: above 10 mg/kg/day and above 400 mg/day with no per-day cap
    codes = [w.code for w in recommend(protocol=sc_and_iv, patient=p).warnings]
    from engine import safety

    assert codes == list(safety.CODE_ORDER[1:])


# --- Words that must not contradict the numbers (clinical review) -------------------------------


@pytest.mark.parametrize(
    ("weight", "capped_by", "cap_notes"),
    [
        # 2 mg/kg x 50.02 kg = 100.04 mg, shown 100 mg = the ordered 100 mg: nothing a clinician sees changed,
        # so no cap is reported (review round 3; it used to read "100.04 mg per dose is above ...").
        ("50.02", [], ()),
        # 2 x 50.024 = 100.048 -> 100.0 mg at 0.1 mg (half up): still the cap, not reported.
        ("50.024", [], ()),
        # 2 x 50.025 = 100.05 -> 100.1 mg (half up) > 100 mg: the cap changes the shown amount; note to 0.1 mg.
        ("50.025", ["max_single_dose"], ("100.1 mg per dose is above the 100 mg/dose maximum",)),
    ],
)
def test_text_cap_is_reported_only_where_it_changes_the_amount_at_0_1_mg(weight, capped_by, cap_notes):
    result = step_dose(step=step(max_single_dose_mg=D(100)), weight_kg=D(weight), concentration_mg_per_ml=CONC)
    assert ([c.value for c in result.capped_by], step_words(result).cap_notes, result.per_dose_mg.low) == (
        capped_by,
        cap_notes,
        D(100),
    )


@pytest.mark.parametrize(
    ("weight", "capped_by", "cap_notes", "per_dose"),
    [
        # 2 mg/kg x 37.52 kg = 75.04 mg every 6 h; x 4 = 300.16 > 300 mg/day -> 300 / 4 = 75 mg. Shown: 75.0 mg
        # before and after, so the per-day cap is applied but not reported.
        ("37.52", [], (), "75"),
        # 2 x 37.525 = 75.05 -> 75.1 mg shown > 75 mg: reported, the day as the shown doses make it:
        # 4 x 75.1 = 300.4 mg/day.
        (
            "37.525",
            ["max_daily_dose"],
            ("4 doses of 75.1 mg (300.4 mg/day) is above the 300 mg/day maximum; per dose lowered to 75 mg",),
            "75",
        ),
    ],
)
def test_text_daily_cap_is_reported_only_where_it_changes_the_shown_dose(weight, capped_by, cap_notes, per_dose):
    result = step_dose(step=step(max_daily_dose_mg=D(300)), weight_kg=D(weight), concentration_mg_per_ml=CONC)
    assert ([c.value for c in result.capped_by], step_words(result).cap_notes, result.per_dose_mg.low) == (
        capped_by,
        cap_notes,
        D(per_dose),
    )


@pytest.mark.parametrize(
    ("weight", "daily_capped_by"),
    [
        # 10 mg/kg/day x 40.04 kg = 400.4 mg/day, no interval, per-day cap 400 -> 400: shown 400.4 -> reported.
        ("40.04", ["max_daily_dose"]),
        # 10 x 40.004 = 400.04 -> 400.0 mg/day shown: applied, not reported.
        ("40.004", []),
    ],
)
def test_step_dose_per_day_cap_without_interval_compared_at_0_1_mg(weight, daily_capped_by):
    s = step(
        dose_basis=DoseBasis.MG_PER_KG_PER_DAY,
        amount_low=D(10),
        amount_high=D(10),
        interval_hours=None,
        max_daily_dose_mg=D(400),
    )
    result = step_dose(step=s, weight_kg=D(weight), concentration_mg_per_ml=CONC)
    assert (result.per_day_mg.low, [c.value for c in result.capped_by]) == (D(400), daily_capped_by)


def test_text_daily_cap_note_names_the_dose_actually_ordered():
    # 400 mg/day over 6 doses = 66.66.. mg: ordered as 66.6 mg (never rounded up past the cap).
    result = step_dose(
        step=step(interval_hours=4, max_daily_dose_mg=D(400)), weight_kg=D(45), concentration_mg_per_ml=CONC
    )
    assert step_words(result).cap_notes == (
        "6 doses of 90 mg (540 mg/day) is above the 400 mg/day maximum; per dose lowered to 66.6 mg",
    )


def test_text_order_line_says_when_a_dose_was_rounded_to_a_vial():
    s = step(
        dose_basis=DoseBasis.MG_PER_KG_PER_DAY,
        amount_low=D(10),
        amount_high=D(10),
        rounding_increment_mg=D(100),
        rounding_tolerance_percent=D(10),
    )
    result = step_dose(step=s, weight_kg=D(38), concentration_mg_per_ml=CONC)
    assert step_words(result).order_text == (
        "anakinra 100 mg IV every 6 hours (10 mg/kg/day; rounded from 95 mg to a multiple of 100 mg)"
    )


def test_text_rounding_percent_is_precise_at_the_tolerance():
    # 10 mg/kg/day x 36.36 kg / 4 = 90.9 mg; 100 mg would be +10.01%: not "10%, more than 10%".
    s = step(
        dose_basis=DoseBasis.MG_PER_KG_PER_DAY,
        amount_low=D(10),
        amount_high=D(10),
        rounding_increment_mg=D(100),
        rounding_tolerance_percent=D(10),
    )
    result = step_dose(step=s, weight_kg=D("36.36"), concentration_mg_per_ml=CONC)
    assert step_words(result).rounding.note == (
        "90.9 mg not rounded: the nearest multiple of 100 mg (100 mg) would change the dose by 10.01%, more than "
        "the 10% rounding tolerance (this app's documented choice, set by pharmacists; not a literature figure)"
    )


def test_text_rounding_tie_within_tolerance_says_it_was_rounded_up():
    # A flat 550 mg per dose: halfway between 500 and 600 mg; half up gives 600 mg, +50 / 550 = 9.09% <= 10%:
    # rounded (the amount rule is unchanged), and the words say which multiple and why.
    s = step(
        dose_basis=DoseBasis.MG_PER_DOSE,
        amount_low=D(550),
        amount_high=D(550),
        rounding_increment_mg=D(100),
        rounding_tolerance_percent=D(10),
    )
    result = step_dose(step=s, weight_kg=D(60), concentration_mg_per_ml=CONC)
    assert (result.per_dose_mg.low, step_words(result).rounding.note) == (
        D(600),
        "550 mg rounded up to 600 mg (halfway between 500 mg and 600 mg, the two nearest multiples of 100 mg: a "
        "tie is rounded up; changes the dose by 9.1%, within the 10% rounding tolerance (this app's documented "
        "choice, set by pharmacists; not a literature figure))",
    )


def test_volume_note_below_a_tenth_of_a_millilitre():
    small = step_dose(step=step(), weight_kg=D(1), concentration_mg_per_ml=CONC)  # 2 mg = 0.0133 mL
    large = step_dose(step=step(), weight_kg=D(20), concentration_mg_per_ml=CONC)  # 40 mg = 0.27 mL
    from engine.text import volume_note

    assert (small.volume_ml.low, volume_note(large)) == (D("0.01"), "")
    assert volume_note(small) == (
        "Below 0.1 mL at 150 mg/mL, the volume is shown to 0.01 mL only: confirm with pharmacy how to measure it."
    )


def test_above_reported_maximum_uses_exact_amounts_not_display_rounding():
    # 10 mg/kg/day x 3.3 kg / 4 = 8.25 mg, shown as 8.3 mg (33.2 mg/day), but exactly 10 mg/kg/day: no warning.
    s = step(dose_basis=DoseBasis.MG_PER_KG_PER_DAY, amount_low=D(10), amount_high=D(10), routes=(Route.SC,))
    result = recommend(protocol=protocol(steps=(s,)), patient=patient(weight="3.3"))
    assert result.steps[0].per_day_mg.low == D("33.2")
    assert "above_reported_maximum" not in [w.code for w in result.warnings]


def test_above_reported_maximum_names_the_limit_and_vial_rounding():
    s = step(
        dose_basis=DoseBasis.MG_PER_KG_PER_DAY,
        amount_low=D(10),
        amount_high=D(10),
        rounding_increment_mg=D(100),
        rounding_tolerance_percent=D(10),
    )
    # 10 x 38 / 4 = 95 mg -> 100 mg (+5.3%); 100 mg > 380 / 4 = 95 mg; 4 x 100 = 400 mg/day = 10.526 mg/kg/day
    result = recommend(protocol=protocol(steps=(s,)), patient=patient(weight="38"))
    (warning,) = [w for w in result.warnings if w.code == "above_reported_maximum"]
    assert warning.text == (
        "Step 1 (Test step): 400 mg/day (10.5 mg/kg/day) after rounding to the nearest vial: above 10 mg/kg/day, "
        "the highest per-kg daily amount any center reports."
    )
    # Cited from the version's data whenever a comparison warning is shown.
    assert [c.label for c in result.citations] == ["The letter (Table 1)"]


def test_above_reported_maximum_names_the_step_a_range_and_an_escalation_ceiling():
    # 10 kg: the limit is 10 mg/kg/day x 10 kg = 100 mg/day. Step 1, 8 to 12 mg/kg/day with no interval:
    # 80 to 120 mg/day, the high bound above -> "up to 120 mg/day (12 mg/kg/day)". Step 2, 2 mg/kg/day
    # (20 mg/day, not above) escalating to 12 mg/kg/day = 120 mg/day: its ceiling is above.
    severe = step(
        name="Severe",
        dose_basis=DoseBasis.MG_PER_KG_PER_DAY,
        amount_low=D(8),
        amount_high=D(12),
        interval_hours=None,
    )
    escalating = step(
        name="Escalating",
        dose_basis=DoseBasis.MG_PER_KG_PER_DAY,
        interval_hours=None,
        escalation_ceiling_amount=D(12),
        escalation_ceiling_basis=DoseBasis.MG_PER_KG_PER_DAY,
    )
    result = recommend(protocol=protocol(steps=(severe, escalating)), patient=patient(weight="10"))
    (warning,) = [w for w in result.warnings if w.code == "above_reported_maximum"]
    assert warning.text == (
        "Step 1 (Severe): up to 120 mg/day (12 mg/kg/day); step 2 (Escalating), escalation ceiling: 120 mg/day "
        "(12 mg/kg/day): above 10 mg/kg/day, the highest per-kg daily amount any center reports."
    )


def test_no_comparison_without_thresholds_and_a_note_says_so():
    # 12 mg/kg/day x 50 kg = 600 mg/day would raise both, but this version states no comparison amounts.
    s = step(dose_basis=DoseBasis.MG_PER_KG_PER_DAY, amount_low=D(12), amount_high=D(12), interval_hours=None)
    result = recommend(protocol=protocol(steps=(s,), thresholds=None), patient=patient(weight="50"))
    assert [w.code for w in result.warnings if w.code.startswith("above_")] == []
    assert result.notes[-1] == (
        "This protocol version states no cross-center comparison amounts, so its doses were not compared with "
        "the highest amounts the centers report - confirm with pharmacy."
    )


@pytest.mark.parametrize(
    ("cap", "per_day", "usual"),
    [
        # 10 mg/kg/day x 40.04 kg = 400.4 mg/day, no per-day cap stated: above 400 -> above_usual_daily_cap
        (None, "400.4", True),
        # exactly 400 mg/day (10 x 40) is not above it
        (None, "400", False),
        # a step with its own per-day cap never raises it (the cap itself governs)
        (D(500), "400.4", False),
    ],
)
def test_above_usual_daily_cap_only_where_no_per_day_cap_is_stated(cap, per_day, usual):
    weight = "40.04" if per_day == "400.4" else "40"
    s = step(
        dose_basis=DoseBasis.MG_PER_KG_PER_DAY,
        amount_low=D(10),
        amount_high=D(10),
        interval_hours=None,
        max_daily_dose_mg=cap,
    )
    result = recommend(protocol=protocol(steps=(s,)), patient=patient(weight=weight))
    assert result.steps[0].per_day_mg.high == D(per_day)
    assert ("above_usual_daily_cap" in [w.code for w in result.warnings]) is usual


def test_product_experience_words_for_an_unrecorded_product():
    result = recommend(protocol=protocol(reported_car_target="CD19"), patient=patient())
    (warning,) = [w for w in result.warnings if w.code == "product_experience"]
    assert "the patient's product is another product, or not recorded." in warning.text


def test_prerequisite_rules_note_that_response_is_the_prescribers_judgement():
    result = recommend(protocol=protocol(rules=(THIRD_LINE,)), patient=patient())
    assert result.reasons == ("CRS grade 3 with tocilizumab given (1 dose) and steroids given or starting: third line",)
    assert "whether the toxicity failed to respond to them is the prescriber's judgement" in result.notes[0]


def test_warning_codes_are_the_contracts_words():
    from engine import safety
    from engine.vocabulary import WarningCode

    assert sorted(WarningCode) == sorted(safety.CODE_ORDER)
    assert len(safety.CODE_ORDER) == len(set(safety.CODE_ORDER)) == 14
