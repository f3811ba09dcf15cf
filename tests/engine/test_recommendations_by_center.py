"""Hand-computed cases from the spec tables, run through the loaded protocols and the engine.

Every expected number below is worked out by hand from docs/clinical-data.md (the arithmetic is in
the comments), not taken from the code.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from anakinra_cds import jsonutil
from engine.data import PatientInputs, ToxicityGrade
from engine.present import recommendation_dict
from engine.recommend import recommend
from engine.vocabulary import CarTarget, Toxicity
from protocols.selectors.catalog import published_protocols

pytestmark = pytest.mark.integration

D = Decimal


def patient(weight="20", toxicities=(("CRS", 3),), tocilizumab=1, steroids=True, **extra) -> PatientInputs:
    return PatientInputs(
        weight_kg=D(weight),
        age_years=D(extra.pop("age", "8")),
        toxicities=tuple(ToxicityGrade(Toxicity(t), g) for t, g in toxicities),
        prior_tocilizumab_doses=tocilizumab,
        prior_steroids=steroids,
        **extra,
    )


def answer(slug: str, p: PatientInputs) -> dict:
    (protocol,) = published_protocols(institution_slug=slug)
    return recommendation_dict(recommend(protocol=protocol, patient=p))


def rng(low, high=None) -> dict:
    return {"low": D(str(low)), "high": D(str(high if high is not None else low))}


def doses(result: dict) -> list[tuple]:
    return [
        (s["kind"], s["per_dose_mg"], s["per_day_mg"], s["interval_hours"], s["routes"], s["capped_by"])
        for s in result["steps"]
    ]


def codes(result: dict) -> list[str]:
    return [w["code"] for w in result["warnings"]]


# --- Children's National -------------------------------------------------------------------------


def test_cnh_20kg_crs3_after_tocilizumab_and_steroids_is_2mg_per_kg_every_6h(db):
    result = answer("cnh", patient("20"))
    step = result["steps"][0]
    assert result["status"] == "indicated"
    # 2 mg/kg x 20 kg = 40 mg per dose; every 6 h = 4 doses/day -> 160 mg/day; 40 / 150 mg/mL = 0.27 mL
    assert doses(result) == [("initial", rng(40), rng(160), 6, ["IV"], [])]
    assert (step["calculated_per_dose_mg"], step["volume_ml"]) == (rng(40), rng("0.27"))
    assert step["order_text"] == "anakinra 40 mg IV every 6 hours (2 mg/kg/dose; max 100 mg/dose, 400 mg/day)"
    assert step["arithmetic"] == ["2 mg/kg/dose x 20 kg = 40 mg per dose", "4 doses a day x 40 mg = 160 mg/day"]
    # The patient's product ("other") differs from CNH's CD19 experience; the route is IV.
    assert codes(result) == ["product_experience", "iv_off_label", "general_monitoring"]


def test_cnh_60kg_per_dose_cap_binds(db):
    # 2 x 60 = 120 mg > 100 mg max per dose -> 100 mg; 4 x 100 = 400 mg/day (= the per-day cap, not above it)
    result = answer("cnh", patient("60", car_target=CarTarget.CD19))
    step = result["steps"][0]
    assert doses(result) == [("initial", rng(100), rng(400), 6, ["IV"], ["max_single_dose"])]
    assert (step["calculated_per_dose_mg"], step["volume_ml"]) == (rng(120), rng("0.67"))
    assert codes(result) == ["iv_off_label", "general_monitoring"]


def test_cnh_without_steroids_is_not_indicated_and_names_what_is_missing(db):
    result = answer("cnh", patient("20", steroids=False))
    assert result["status"] == "not_indicated"
    assert result["reasons"] == [
        "CRS grade 3: third-line use, after tocilizumab and steroids; needs prior tocilizumab and steroids "
        "given or starting; steroids not yet given"
    ]
    # Steps are still shown so the clinician can compare centers.
    assert doses(result) == [("initial", rng(40), rng(160), 6, ["IV"], [])]


def test_cnh_without_tocilizumab_or_steroids_names_both(db):
    result = answer("cnh", patient("20", tocilizumab=0, steroids=False))
    assert result["reasons"] == [
        "CRS grade 3: third-line use, after tocilizumab and steroids; needs prior tocilizumab and steroids "
        "given or starting; tocilizumab and steroids not yet given"
    ]


@pytest.mark.parametrize(
    ("toxicity", "grade", "status", "reason"),
    [
        # grade 1-2 after tocilizumab and steroids: consider (the center tapers once CRS/ICANS is grade <= 2)
        *[
            (
                t,
                g,
                "consider",
                f"{t} grade {g} with tocilizumab given (1 dose) and steroids given or starting: third-line use, after "
                "tocilizumab and steroids; this center tapers anakinra once CRS/ICANS is grade 2 or lower, so "
                "starting at grade 1-2 is the prescriber's judgement",
            )
            for t in ("CRS", "ICANS")
            for g in (1, 2)
        ],
        # grade 3-4: indicated, as before
        *[
            (
                t,
                g,
                "indicated",
                f"{t} grade {g} with tocilizumab given (1 dose) and steroids given or starting: third-line use, after "
                "tocilizumab and steroids",
            )
            for t in ("CRS", "ICANS")
            for g in (3, 4)
        ],
        # carHLH stays indicated at any severity
        (
            "carHLH",
            1,
            "indicated",
            "carHLH grade 1 with tocilizumab given (1 dose) and steroids given or starting: third-line use, after "
            "tocilizumab and steroids",
        ),
    ],
)
def test_cnh_grade_1_2_crs_icans_is_consider_grade_3_4_and_carhlh_indicated(db, toxicity, grade, status, reason):
    result = answer("cnh", patient("20", toxicities=((toxicity, grade),), car_target=CarTarget.CD19))
    assert (result["status"], result["reasons"]) == (status, [reason])
    # The dose is the same at every grade: 2 x 20 = 40 mg every 6 h, 160 mg/day
    assert doses(result) == [("initial", rng(40), rng(160), 6, ["IV"], [])]


def test_cnh_grade_2_without_tocilizumab_names_the_missing_prerequisite_only(db):
    result = answer("cnh", patient("20", toxicities=(("CRS", 2),), tocilizumab=0))
    # The grade 3-4 rule does not apply to grade 2, but the grade 1-2 rule does, so only its missing item is named.
    assert (result["status"], result["reasons"]) == (
        "not_indicated",
        [
            "CRS grade 2: third-line use, after tocilizumab and steroids; this center tapers anakinra once CRS/ICANS "
            "is grade 2 or lower, so starting at grade 1-2 is the prescriber's judgement; needs prior tocilizumab "
            "and steroids given or starting; tocilizumab not yet given"
        ],
    )


# --- Seattle --------------------------------------------------------------------------------------


def test_seattle_icans3_with_steroids_is_indicated_up_to_every_6h(db):
    result = answer("seattle", patient("30", toxicities=(("ICANS", 3),), tocilizumab=0))
    step = result["steps"][0]
    assert result["status"] == "indicated"
    # 2 x 30 = 60 mg; up to every 6 h -> up to 240 mg/day
    assert doses(result) == [("initial", rng(60), rng(240), 6, ["IV"], [])]
    assert step["order_text"] == (
        "anakinra 60 mg IV no more often than every 6 hours, at most 4 doses a day "
        "(2 mg/kg/dose; max 100 mg/dose, 400 mg/day)"
    )
    assert step["interval_is_maximum"] is True
    # "Up to every 6 hours" is a most, so the day's amount is a most too, in the API's words as on the page.
    assert step["arithmetic"] == [
        "2 mg/kg/dose x 30 kg = 60 mg per dose",
        "at most 4 doses a day (no more often than every 6 hours) x 60 mg = at most 240 mg/day",
    ]


def test_seattle_icans2_is_below_the_grade_floor(db):
    result = answer("seattle", patient("30", toxicities=(("ICANS", 2),), tocilizumab=0))
    assert (result["status"], result["reasons"]) == (
        "not_indicated",
        ["ICANS grade 2: severe ICANS: started together with steroids; applies to grade 3 or higher"],
    )


SEATTLE_CRS = "severe CRS: may be considered after a first tocilizumab dose and steroids, before re-dosing tocilizumab"


@pytest.mark.parametrize(
    ("tocilizumab", "reason"),
    [
        (1, f"CRS grade 3 with tocilizumab given (1 dose) and steroids given or starting: {SEATTLE_CRS}"),
        # 2 or more doses: still consider, and the reasons say the protocol places anakinra before a repeat dose
        *[
            (
                n,
                f"CRS grade 3 with tocilizumab given ({n} doses) and steroids given or starting: {SEATTLE_CRS}; the "
                "protocol places anakinra before a repeat tocilizumab dose, and a repeat dose has been given",
            )
            for n in (2, 3)
        ],
    ],
)
def test_seattle_crs3_is_consider_and_names_a_repeat_tocilizumab_dose(db, tocilizumab, reason):
    result = answer("seattle", patient("30", toxicities=(("CRS", 3),), tocilizumab=tocilizumab))
    assert (result["status"], result["reasons"]) == ("consider", [reason])


def test_seattle_crs3_without_tocilizumab_is_not_indicated(db):
    result = answer("seattle", patient("30", toxicities=(("CRS", 3),), tocilizumab=0))
    assert result["status"] == "not_indicated"


def test_seattle_icans_and_crs_together_take_the_best_status(db):
    # ICANS 3 with steroids -> indicated beats CRS 3 without tocilizumab (unmet)
    result = answer("seattle", patient("30", toxicities=(("CRS", 3), ("ICANS", 3)), tocilizumab=0))
    assert result["status"] == "indicated"
    assert len(result["steps"]) == 1


# --- CHOP -----------------------------------------------------------------------------------------


def test_chop_20kg_per_day_only_with_escalation_ceiling(db):
    result = answer("chop", patient("20", toxicities=(("CRS", 2),)))
    step = result["steps"][0]
    assert result["status"] == "indicated"
    # 2 mg/kg/day x 20 = 40 mg/day; no frequency stated -> no per-dose amount; ceiling 10 x 20 = 200 mg/day
    assert doses(result) == [("initial", None, rng(40), None, ["IV", "SC"], [])]
    assert (step["calculated_per_dose_mg"], step["max_escalation_per_day_mg"], step["volume_ml"]) == (
        None,
        D(200),
        None,
    )
    assert codes(result) == ["frequency_not_specified", "iv_off_label", "general_monitoring"]


def test_chop_50kg_escalation_ceiling_limited_by_per_day_cap(db):
    # 2 x 50 = 100 mg/day (below 400: the per-day amount is not capped); ceiling 10 x 50 = 500 mg/day, lowered
    # to the 400 mg/day maximum: reported in max_escalation_capped_by, never in capped_by (clinical.md 1.1)
    result = answer("chop", patient("50", toxicities=(("CRS", 3),)))
    step = result["steps"][0]
    assert (
        step["per_day_mg"],
        step["max_escalation_per_day_mg"],
        step["capped_by"],
        step["max_escalation_capped_by"],
    ) == (rng(100), D(400), [], ["max_daily_dose"])
    assert step["cap_notes"] == ["escalation ceiling 10 mg/kg/day = 500 mg/day, capped at 400 mg/day"]
    assert step["escalation_text"] == "escalation ceiling 10 mg/kg/day = 500 mg/day, capped at 400 mg/day"
    assert step["order_text"] == (
        "anakinra 100 mg/day IV or subcut (2 mg/kg/day; may escalate up to 10 mg/kg/day = 500 mg/day, capped at "
        "400 mg/day; max 400 mg/day); frequency not specified by this protocol - confirm with pharmacy"
    )


@pytest.mark.parametrize(
    ("weight", "per_day", "ceiling", "ceiling_capped_by", "text"),
    [
        # 2 x 40 = 80 mg/day; 10 x 40 = 400 mg/day = the cap, not above it: nothing capped
        ("40", 80, 400, [], "escalation ceiling 10 mg/kg/day = 400 mg/day"),
        # 2 x 41 = 82 mg/day; 10 x 41 = 410 mg/day > 400: the ceiling is capped, the per-day amount is not
        ("41", 82, 400, ["max_daily_dose"], "escalation ceiling 10 mg/kg/day = 410 mg/day, capped at 400 mg/day"),
        # 2 x 51 = 102 mg/day; 10 x 51 = 510 mg/day > 400
        ("51", 102, 400, ["max_daily_dose"], "escalation ceiling 10 mg/kg/day = 510 mg/day, capped at 400 mg/day"),
    ],
)
def test_chop_ceiling_cap_is_reported_only_on_the_ceiling(db, weight, per_day, ceiling, ceiling_capped_by, text):
    step = answer("chop", patient(weight, toxicities=(("CRS", 3),)))["steps"][0]
    assert (
        step["per_day_mg"],
        step["capped_by"],
        step["max_escalation_per_day_mg"],
        step["max_escalation_capped_by"],
        step["escalation_text"],
        step["cap_notes"],
    ) == (rng(per_day), [], D(ceiling), ceiling_capped_by, text, [text] if ceiling_capped_by else [])


def test_chop_icans_is_not_covered(db):
    result = answer("chop", patient("20", toxicities=(("ICANS", 3),)))
    assert (result["status"], result["steps"]) == ("not_indicated", [])
    assert result["reasons"] == ["This protocol does not cover ICANS; it covers CRS"]


# --- NIH ------------------------------------------------------------------------------------------


def test_nih_severe_carhlh_range_stays_a_range(db):
    result = answer("nih", patient("20", toxicities=(("carHLH", 3),), tocilizumab=0, steroids=False))
    # severe: 8-10 mg/kg/day x 20 = 160-200 mg/day; taper goal 5-7 x 20 = 100-140 mg/day
    assert doses(result) == [
        ("initial", None, rng(160, 200), None, ["SC"], []),
        ("taper", None, rng(100, 140), None, ["SC"], []),
    ]
    assert result["steps"][0]["order_text"] == (
        "anakinra 160 to 200 mg/day subcut (8 to 10 mg/kg/day); "
        "frequency not specified by this protocol - confirm with pharmacy"
    )
    assert codes(result) == ["frequency_not_specified", "product_experience", "general_monitoring"]


def test_nih_less_ill_carhlh_uses_the_lower_step_without_the_taper_goal(db):
    result = answer("nih", patient("30", toxicities=(("carHLH", 2),), tocilizumab=0, steroids=False))
    # less ill: 5-8 x 30 = 150-240 mg/day. The taper goal (5-7 mg/kg/day) follows only the severe step
    # (clinical.md 1.1): below the less-ill dose it would not be a taper, so it is not listed.
    assert doses(result) == [("initial", None, rng(150, 240), None, ["SC"], [])]
    assert (result["steps"][0]["name"], result["steps"][0]["taper"]) == ("Initial dosing, less severe carHLH", "")


@pytest.mark.parametrize(
    ("grade", "steps"),
    [
        # grade 2 (less ill): 5-8 x 20 = 100-160 mg/day, no taper goal
        (2, [("Initial dosing, less severe carHLH", rng(100, 160))]),
        # grade 3 (severe): 8-10 x 20 = 160-200 mg/day, then the taper goal 5-7 x 20 = 100-140 mg/day
        (3, [("Initial dosing, severe carHLH", rng(160, 200)), ("Taper goal", rng(100, 140))]),
    ],
)
def test_nih_taper_goal_follows_only_the_severe_step(db, grade, steps):
    result = answer("nih", patient("20", toxicities=(("carHLH", grade),), tocilizumab=0, steroids=False))
    assert [(s["name"], s["per_day_mg"]) for s in result["steps"]] == steps


def test_nih_first_line_for_isolated_late_onset_without_fever_or_hypotension(db):
    p = patient(
        "20",
        toxicities=(("carHLH", 2),),
        tocilizumab=0,
        steroids=False,
        late_onset_isolated=True,
        fever=False,
        hypotension=False,
    )
    assert answer("nih", p)["reasons"] == [
        "carHLH grade 2: first line for isolated late-onset carHLH without fever or hypotension, "
        "where tocilizumab is not indicated"
    ]


def test_nih_late_onset_with_fever_is_not_first_line(db):
    p = patient(
        "20",
        toxicities=(("carHLH", 2),),
        tocilizumab=0,
        steroids=False,
        late_onset_isolated=True,
        fever=True,
        hypotension=False,
    )
    result = answer("nih", p)
    assert result["reasons"] == ["carHLH grade 2: usually given with steroids when more severely affected"]
    assert "First-line use for isolated late-onset carHLH does not apply: fever present." in result["notes"]


def test_nih_45kg_severe_range_is_its_own_dose_not_above_the_reported_maximum(db):
    # 8-10 x 45 = 360-450 mg/day: the high end is exactly 10 mg/kg/day (450 = 10 x 45), not above it, so no
    # above_reported_maximum; 450 > 400 mg/day where NIH states no per-day cap: above_usual_daily_cap (info)
    result = answer("nih", patient("45", toxicities=(("carHLH", 4),), tocilizumab=0, car_target=CarTarget.CD22))
    assert result["steps"][0]["per_day_mg"] == rng(360, 450)
    assert codes(result) == ["frequency_not_specified", "above_usual_daily_cap", "general_monitoring"]
    assert result["warnings"][1] == {
        "code": "above_usual_daily_cap",
        "severity": "info",
        "text": "Up to 450 mg/day: above 400 mg/day, the per-day cap Children's National, Seattle Children's and "
        "CHOP state; this protocol states none - confirm with pharmacy.",
    }


# --- MUSC -----------------------------------------------------------------------------------------


def test_musc_crs_lists_weight_based_steps_then_the_fixed_alternative(db):
    result = answer("musc", patient("20"))
    # 4 x 20 = 80 mg q12h (160/day); taper 2 x 20 = 40 mg q12h (80/day);
    # alternative 100 mg daily; its taper 50 mg daily
    assert doses(result) == [
        ("initial", rng(80), rng(160), 12, ["SC"], []),
        ("taper", rng(40), rng(80), 12, ["SC"], []),
        ("alternative", rng(100), rng(100), 24, ["SC"], []),
        ("taper", rng(50), rng(50), 24, ["SC"], []),
    ]
    assert [s["volume_ml"] for s in result["steps"]] == [rng("0.53"), rng("0.27"), rng("0.67"), rng("0.33")]
    assert codes(result) == ["product_experience", "prefer_iv", "general_monitoring"]


def test_musc_icans_gets_only_the_fixed_dose_alternative(db):
    result = answer("musc", patient("20", toxicities=(("ICANS", 2),)))
    assert [(s["kind"], s["name"]) for s in result["steps"]] == [
        ("alternative", "Alternative: fixed dose"),
        ("taper", "Taper after the fixed-dose alternative"),
    ]


def test_musc_60kg_above_the_usual_daily_cap_without_a_cap(db):
    # 4 x 60 = 240 mg q12h = 480 mg/day = 8 mg/kg/day (not above 10 mg/kg/day); MUSC states no cap and
    # 480 > 400 mg/day: above_usual_daily_cap (info), not above_reported_maximum
    result = answer("musc", patient("60"))
    assert result["steps"][0]["per_day_mg"] == rng(480)
    assert codes(result) == ["above_usual_daily_cap", "product_experience", "prefer_iv", "general_monitoring"]


# --- St. Jude -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weight", "calculated", "ordered", "applied"),
    [
        ("20", "50", "50", False),  # 10 x 20 / 4 = 50 mg; 100 mg would be +100%
        ("38", "95", "100", True),  # 95 -> 100 is +5.3%
        ("40", "100", "100", True),  # already one vial
        ("44", "110", "100", True),  # 110 -> 100 is -9.1%
        ("45", "112.5", "112.5", False),  # 112.5 -> 100 is -11.1%
        ("36", "90", "90", False),  # 90 -> 100 is +11.1%
    ],
)
def test_stjude_rounds_to_the_nearest_vial_only_within_10_percent(db, weight, calculated, ordered, applied):
    result = answer("stjude", patient(weight, toxicities=(("carHLH", 2),), tocilizumab=0, steroids=False))
    step = result["steps"][0]
    assert (step["calculated_per_dose_mg"], step["per_dose_mg"], step["per_day_mg"]) == (
        rng(calculated),
        rng(ordered),
        rng(D(ordered) * 4),
    )
    assert (step["rounding"]["increment_mg"], step["rounding"]["applied"]) == (D(100), applied)


def test_stjude_rounding_note_explains_the_decision(db):
    result = answer("stjude", patient("45", toxicities=(("carHLH", 2),), tocilizumab=0))
    assert result["steps"][0]["rounding"]["note"] == (
        "112.5 mg not rounded: the nearest multiple of 100 mg (100 mg) would change the dose by 11.1%, more than "
        "the 10% rounding tolerance (this app's documented choice, set by pharmacists; not a literature figure)"
    )


# --- Every center ---------------------------------------------------------------------------------


def test_hypersensitivity_contraindicates_every_center(db):
    p = patient("20", toxicities=(("CRS", 3), ("carHLH", 3)), ecoli_protein_hypersensitivity=True)
    results = [recommendation_dict(recommend(protocol=pr, patient=p)) for pr in published_protocols()]
    assert [(r["status"], r["steps"], r["warnings"][0]["code"], r["warnings"][0]["severity"]) for r in results] == [
        ("contraindicated", [], "contraindicated_hypersensitivity", "critical")
    ] * 6


def test_weight_150_caps_and_asks_to_confirm_weight(db):
    result = answer("cnh", patient("150", age="17"))
    # 2 x 150 = 300 mg > 100 mg cap
    assert doses(result) == [("initial", rng(100), rng(400), 6, ["IV"], ["max_single_dose"])]
    assert "weight_confirm" in codes(result)


def test_weight_1kg_smallest_doses_keep_a_leading_zero_volume(db):
    result = answer("cnh", patient("1", age="0.1"))
    # 2 x 1 = 2 mg; 2 / 150 = 0.0133 -> 0.01 mL
    assert (result["steps"][0]["per_dose_mg"], result["steps"][0]["volume_ml"]) == (rng(2), rng("0.01"))
    stjude = answer("stjude", patient("1", toxicities=(("carHLH", 1),), tocilizumab=0))
    # 10 x 1 / 4 = 2.5 mg; the nearest 100 mg multiple is 0, which is no dose: not rounded
    assert stjude["steps"][0]["per_dose_mg"] == rng("2.5")
    assert stjude["steps"][0]["rounding"]["applied"] is False


def test_patient_level_warnings_apply_at_every_center(db):
    p = patient(
        "25",
        age="31",
        concurrent_tnf_blocker=True,
        active_infection=True,
        thrombocytopenia_or_coagulopathy=True,
        creatinine_clearance_ml_min=D("29.9"),
    )
    result = answer("musc", p)
    assert codes(result) == [
        "tnf_blocker",
        "infection",
        "sc_bleeding_risk",
        "renal_impairment",
        "adult_patient",
        "product_experience",
        "prefer_iv",
        "general_monitoring",
    ]


def test_every_recommendation_cites_the_letter_table_1_first(db):
    p = patient("20")
    labels = [
        recommendation_dict(recommend(protocol=pr, patient=p))["citations"][0]["label"] for pr in published_protocols()
    ]
    assert labels == ["Diorio C, Vatsayan A, et al. Blood Adv 2022 (Table 1)"] * 6


def test_center_evidence_links_are_cited(db):
    p = patient("20", toxicities=(("carHLH", 3),))
    assert [c["label"] for c in answer("nih", p)["citations"]] == [
        "Diorio C, Vatsayan A, et al. Blood Adv 2022 (Table 1)",
        "Lichtenstein DA, et al. Blood 2021",
        "Shah NN, et al. J Clin Oncol 2020",
    ]
    assert answer("stjude", p)["citations"][1] == {
        "label": "Hines MR, et al. Br J Haematol 2021",
        "doi": "10.1111/bjh.17662",
        "pmid": "34263927",
        "url": "https://doi.org/10.1111/bjh.17662",
    }


# --- Independent audit: hand-computed cases through POST /api/v1/recommendations ----------------------
# Each row: request (over BASE), then per institution (status, steps, warning codes). A step is
# (kind, calculated_per_dose_mg, per_dose_mg, per_day_mg, max_escalation_per_day_mg, capped_by, volume_ml
# [, max_escalation_capped_by]);
# a number stands for {"low": n, "high": n}, a pair for a range, None for null. Volume = mg / 150 mg/mL.

BASE = {"weight_kg": 20, "age_years": 8, "prior_tocilizumab_doses": 1, "prior_steroids": True}
CRS3 = [{"type": "CRS", "grade": 3}]
HLH = lambda grade: [{"type": "carHLH", "grade": grade}]  # noqa: E731
MON, IV, FREQ, PX, PIV = (
    "general_monitoring",
    "iv_off_label",
    "frequency_not_specified",
    "product_experience",
    "prefer_iv",
)
MAXW = "above_reported_maximum"
USUAL = "above_usual_daily_cap"

AUDIT_CASES = {
    # 20 kg, CRS 3 after 1 tocilizumab dose and steroids, product "other".
    "20kg_crs3_every_center": (
        {"toxicities": CRS3},
        {
            # 2 mg/kg/day x 20 = 40 mg/day, no interval; ceiling 10 x 20 = 200 mg/day (< 400)
            "chop": ("indicated", [("initial", None, None, 40, 200, [], None)], [FREQ, IV, PIV, MON]),
            # 2 x 20 = 40 mg q6h -> 4 x 40 = 160 mg/day; 40 / 150 = 0.2667 -> 0.27 mL
            "cnh": ("indicated", [("initial", 40, 40, 160, None, [], "0.27")], [PX, IV, MON]),
            # 4 x 20 = 80 q12h (160/day, 0.5333 mL); 2 x 20 = 40 q12h (80/day); 100 mg daily; 50 mg daily
            "musc": (
                "indicated",
                [
                    ("initial", 80, 80, 160, None, [], "0.53"),
                    ("taper", 40, 40, 80, None, [], "0.27"),
                    ("alternative", 100, 100, 100, None, [], "0.67"),
                    ("taper", 50, 50, 50, None, [], "0.33"),
                ],
                [PX, PIV, MON],
            ),
            "nih": ("not_indicated", [], [PX, MON]),
            # CRS >= 3 after >= 1 tocilizumab dose and steroids: consider; 2 x 20 = 40 mg up to q6h
            "seattle": ("consider", [("initial", 40, 40, 160, None, [], "0.27")], [IV, MON]),
            "stjude": ("not_indicated", [], [PX, MON]),
        },
    ),
    # Per-dose cap boundary: 2 x 50 = 100 mg = the cap (not above it): nothing capped; 4 x 100 = 400 mg/day.
    "cnh_50kg_at_the_per_dose_cap": (
        {"weight_kg": 50, "toxicities": CRS3, "car_target": "CD19"},
        {"cnh": ("indicated", [("initial", 100, 100, 400, None, [], "0.67")], [IV, MON])},
    ),
    # 2 x 50.5 = 101 mg > 100 mg/dose -> 100 mg; 4 x 100 = 400 mg/day (the per-day cap is then not exceeded).
    "cnh_50_5kg_per_dose_cap_binds": (
        {"weight_kg": D("50.5"), "toxicities": CRS3, "car_target": "CD19"},
        {"cnh": ("indicated", [("initial", 101, 100, 400, None, ["max_single_dose"], "0.67")], [IV, MON])},
    ),
    # 2 x 40 = 80 mg/day; ceiling 10 x 40 = 400 mg/day = the per-day cap, not above it: nothing capped.
    "chop_40kg_ceiling_at_the_per_day_cap": (
        {"weight_kg": 40, "toxicities": CRS3},
        {"chop": ("indicated", [("initial", None, None, 80, 400, [], None)], [FREQ, IV, PIV, MON])},
    ),
    # 2 x 40.5 = 81 mg/day; ceiling 10 x 40.5 = 405 mg/day > 400 -> 400: the per-day cap binds the ceiling only
    # (max_escalation_capped_by), not the 81 mg/day (capped_by stays empty).
    "chop_40_5kg_per_day_cap_binds_the_ceiling": (
        {"weight_kg": D("40.5"), "toxicities": CRS3},
        {
            "chop": (
                "indicated",
                [("initial", None, None, 81, 400, [], None, ["max_daily_dose"])],
                [FREQ, IV, PIV, MON],
            )
        },
    ),
    # 2 x 51 = 102 mg/day; ceiling 10 x 51 = 510 mg/day > 400 -> 400 (ceiling capped only); 510 = 10 mg/kg/day,
    # not above it, and chop states a per-day cap: no above_* warning.
    "chop_51kg_ceiling_capped_per_day_not": (
        {"weight_kg": 51, "toxicities": CRS3},
        {
            "chop": (
                "indicated",
                [("initial", None, None, 102, 400, [], None, ["max_daily_dose"])],
                [FREQ, IV, PIV, MON],
            )
        },
    ),
    # 10 x 36.4 = 364 mg/day / 4 = 91 mg; 100 mg is +9/91 = 9.89% <= 10%: rounded to 100 mg (0.67 mL),
    # ordered 100 mg > 10 mg/kg/day / 4 doses = 91.0 mg -> above_reported_maximum; 4 x 100 = 400 mg/day, not
    # above 400 -> no above_usual_daily_cap.
    "stjude_36_4kg_rounds_just_inside_tolerance": (
        {"weight_kg": D("36.4"), "toxicities": HLH(2), "prior_tocilizumab_doses": 0, "prior_steroids": False},
        {"stjude": ("indicated", [("initial", 91, 100, 400, None, [], "0.67")], [MAXW, PX, IV, MON])},
    ),
    # 10 x 36.3 = 363 / 4 = 90.75 mg (shown 90.8); 100 mg is +9.25/90.75 = 10.19% > 10%: kept;
    # ordered 90.8 mg -> 4 x 90.8 = 363.2 mg/day; 90.8 / 150 = 0.6053 -> 0.61 mL. Compared like with like:
    # 90.8 mg against 363 / 4 = 90.75 -> 90.8 mg (same rounding): not above, so no above_reported_maximum.
    "stjude_36_3kg_just_outside_tolerance": (
        {"weight_kg": D("36.3"), "toxicities": HLH(2), "prior_tocilizumab_doses": 0, "prior_steroids": False},
        {"stjude": ("indicated", [("initial", "90.8", "90.8", "363.2", None, [], "0.61")], [PX, IV, MON])},
    ),
    # 10 x 44.5 = 445 / 4 = 111.25 mg (shown 111.3); 100 mg is -11.25/111.25 = 10.11% > 10%: kept;
    # 4 x 111.3 = 445.2 mg/day; 111.3 / 150 = 0.742 -> 0.74 mL. 111.3 mg against 445 / 4 = 111.25 -> 111.3 mg:
    # not above (display rounding alone), so no above_reported_maximum; 445.2 > 400 mg/day and St. Jude states
    # no per-day cap -> above_usual_daily_cap (info).
    "stjude_44_5kg_rounding_down_outside_tolerance": (
        {"weight_kg": D("44.5"), "toxicities": HLH(3), "prior_tocilizumab_doses": 0, "prior_steroids": False},
        {"stjude": ("indicated", [("initial", "111.3", "111.3", "445.2", None, [], "0.74")], [USUAL, PX, IV, MON])},
    ),
    # 10 x 44 = 440 / 4 = 110 mg; 100 mg is -10/110 = 9.09%: rounded to 100 mg, 400 mg/day (not above 400).
    "stjude_44kg_rounding_down_inside_tolerance": (
        {"weight_kg": 44, "toxicities": HLH(2), "prior_tocilizumab_doses": 0, "prior_steroids": False},
        {"stjude": ("indicated", [("initial", 110, 100, 400, None, [], "0.67")], [PX, IV, MON])},
    ),
    # carHLH 3 alone, 25 kg, CD22 (NIH's experience): severe 8-10 x 25 = 200-250 mg/day; taper goal
    # 5-7 x 25 = 125-175 mg/day; no interval -> per-dose null. St. Jude 10 x 25 / 4 = 62.5 mg (100 mg: +60%).
    "carhlh3_alone_25kg_cd22": (
        {
            "weight_kg": 25,
            "toxicities": HLH(3),
            "prior_tocilizumab_doses": 0,
            "prior_steroids": False,
            "car_target": "CD22",
        },
        {
            "nih": (
                "indicated",
                [
                    ("initial", None, None, (200, 250), None, [], None),
                    ("taper", None, None, (125, 175), None, [], None),
                ],
                [FREQ, MON],
            ),
            "stjude": ("indicated", [("initial", "62.5", "62.5", 250, None, [], "0.42")], [PX, IV, MON]),
            # 2 x 25 = 50 mg q6h shown for comparison; prerequisites not met
            "cnh": ("not_indicated", [("initial", 50, 50, 200, None, [], "0.33")], [PX, IV, MON]),
            # 100 mg/day = 4 mg/kg/day; 50 mg/day
            "musc": (
                "not_indicated",
                [("alternative", 100, 100, 100, None, [], "0.67"), ("taper", 50, 50, 50, None, [], "0.33")],
                [PX, MON],
            ),
            "chop": ("not_indicated", [], [MON]),
            "seattle": ("not_indicated", [], [MON]),
        },
    ),
    # ICANS 3 alone, 30 kg, CD19, steroids starting, no tocilizumab.
    "icans3_alone_30kg_cd19": (
        {
            "weight_kg": 30,
            "toxicities": [{"type": "ICANS", "grade": 3}],
            "prior_tocilizumab_doses": 0,
            "car_target": "CD19",
        },
        {
            # ICANS >= 3 with steroids: indicated; 2 x 30 = 60 mg up to q6h = 240 mg/day; 60 / 150 = 0.4 mL
            "seattle": ("indicated", [("initial", 60, 60, 240, None, [], "0.4")], [IV, MON]),
            "cnh": ("not_indicated", [("initial", 60, 60, 240, None, [], "0.4")], [IV, MON]),
            "musc": (
                "not_indicated",
                [("alternative", 100, 100, 100, None, [], "0.67"), ("taper", 50, 50, 50, None, [], "0.33")],
                [PIV, MON],
            ),
            "chop": ("not_indicated", [], [MON]),
            "nih": ("not_indicated", [], [PX, MON]),
            "stjude": ("not_indicated", [], [MON]),
        },
    ),
    # 8 kg at MUSC: the flat 100 mg once a day against 10 x 8 / 1 dose = 80 mg: above -> above_reported_maximum
    # (100 mg/day = 12.5 mg/kg/day); the 50 mg taper is 6.25 mg/kg/day.
    "musc_8kg_flat_dose_above_10_mg_per_kg_per_day": (
        {"weight_kg": 8, "toxicities": [{"type": "ICANS", "grade": 2}], "car_target": "CD19"},
        {
            "musc": (
                "indicated",
                [("alternative", 100, 100, 100, None, [], "0.67"), ("taper", 50, 50, 50, None, [], "0.33")],
                [MAXW, MON],
            )
        },
    ),
    # MUSC CRS at 50.5 kg: 4 x 50.5 = 202 mg q12h = 404 mg/day = 8 mg/kg/day (not above 10); 404 > 400 mg/day with
    # no per-day cap stated -> above_usual_daily_cap (info); 202 / 150 = 1.3467 -> 1.35 mL
    "musc_50_5kg_crs_above_400_mg_per_day": (
        {"weight_kg": D("50.5"), "toxicities": [{"type": "CRS", "grade": 2}], "car_target": "CD19"},
        {
            "musc": (
                "indicated",
                [
                    ("initial", 202, 202, 404, None, [], "1.35"),
                    ("taper", 101, 101, 202, None, [], "0.67"),
                    ("alternative", 100, 100, 100, None, [], "0.67"),
                    ("taper", 50, 50, 50, None, [], "0.33"),
                ],
                [USUAL, MON],
            )
        },
    ),
    # The flat 100 mg at MUSC at the 10 kg boundary: 100 mg against 10 x 10 / 1 = 100 mg: not above, no warning.
    "musc_10kg_flat_dose_at_10_mg_per_kg_per_day": (
        {"weight_kg": 10, "toxicities": [{"type": "ICANS", "grade": 2}], "car_target": "CD19"},
        {
            "musc": (
                "indicated",
                [("alternative", 100, 100, 100, None, [], "0.67"), ("taper", 50, 50, 50, None, [], "0.33")],
                [MON],
            )
        },
    ),
    # Just under 10 kg: 100 mg against 10 x 9.9 / 1 = 99 mg: above -> above_reported_maximum.
    "musc_9_9kg_flat_dose_above_10_mg_per_kg_per_day": (
        {"weight_kg": D("9.9"), "toxicities": [{"type": "ICANS", "grade": 2}], "car_target": "CD19"},
        {
            "musc": (
                "indicated",
                [("alternative", 100, 100, 100, None, [], "0.67"), ("taper", 50, 50, 50, None, [], "0.33")],
                [MAXW, MON],
            )
        },
    ),
    # Several toxicities and every patient-level warning at once, 120 kg, age 31, CrCl 20.
    "several_toxicities_every_patient_warning": (
        {
            "weight_kg": 120,
            "age_years": 31,
            "toxicities": [{"type": "CRS", "grade": 4}, {"type": "ICANS", "grade": 3}, {"type": "carHLH", "grade": 3}],
            "creatinine_clearance_ml_min": 20,
            "concurrent_tnf_blocker": True,
            "active_infection": True,
            "thrombocytopenia_or_coagulopathy": True,
            "car_target": "CD19/CD22",
        },
        {
            # 2 x 120 = 240 mg > 100 -> 100 mg q6h, 400 mg/day; IV only: no sc_bleeding_risk, no prefer_iv
            "cnh": (
                "indicated",
                [("initial", 240, 100, 400, None, ["max_single_dose"], "0.67")],
                ["tnf_blocker", "infection", "renal_impairment", "weight_confirm", "adult_patient", PX, IV, MON],
            ),
            # ICANS 3 indicated beats CRS 4 consider
            "seattle": (
                "indicated",
                [("initial", 240, 100, 400, None, ["max_single_dose"], "0.67")],
                ["tnf_blocker", "infection", "renal_impairment", "weight_confirm", "adult_patient", IV, MON],
            ),
            # 2 x 120 = 240 mg/day; ceiling 10 x 120 = 1200 -> 400 mg/day (the ceiling capped, not the 240)
            "chop": (
                "indicated",
                [("initial", None, None, 240, 400, [], None, ["max_daily_dose"])],
                [
                    "tnf_blocker",
                    "infection",
                    "sc_bleeding_risk",
                    "renal_impairment",
                    "weight_confirm",
                    "adult_patient",
                    FREQ,
                    IV,
                    PIV,
                    MON,
                ],
            ),
            # 8-10 x 120 = 960-1200 mg/day (1200 = 10 mg/kg/day: not above it); taper 5-7 x 120 = 600-840 mg/day;
            # 1200 > 400 with no per-day cap stated -> above_usual_daily_cap
            "nih": (
                "indicated",
                [
                    ("initial", None, None, (960, 1200), None, [], None),
                    ("taper", None, None, (600, 840), None, [], None),
                ],
                [
                    "tnf_blocker",
                    "infection",
                    "sc_bleeding_risk",
                    "renal_impairment",
                    "weight_confirm",
                    "adult_patient",
                    FREQ,
                    USUAL,
                    PX,
                    PIV,
                    MON,
                ],
            ),
            # 10 x 120 / 4 = 300 mg = 3 vials (0% change) -> 1200 mg/day; 300 / 150 = 2 mL; 300 mg against
            # 1200 / 4 = 300 mg: not above 10 mg/kg/day; 1200 > 400 with no cap -> above_usual_daily_cap
            "stjude": (
                "indicated",
                [("initial", 300, 300, 1200, None, [], "2")],
                [
                    "tnf_blocker",
                    "infection",
                    "sc_bleeding_risk",
                    "renal_impairment",
                    "weight_confirm",
                    "adult_patient",
                    USUAL,
                    PX,
                    IV,
                    PIV,
                    MON,
                ],
            ),
        },
    ),
    # Hypersensitivity blocks every center: contraindicated, no steps, the critical warning first.
    "hypersensitivity_contraindicates_with_no_steps": (
        {
            "toxicities": [{"type": "CRS", "grade": 3}, {"type": "carHLH", "grade": 3}],
            "ecoli_protein_hypersensitivity": True,
        },
        {
            slug: ("contraindicated", [], ["contraindicated_hypersensitivity", *([PX] if px else []), MON])
            for slug, px in (
                ("chop", False),
                ("cnh", True),
                ("musc", True),
                ("nih", True),
                ("seattle", False),
                ("stjude", True),
            )
        },
    ),
    # Boundaries: 100 kg confirms the weight, age exactly 30 and CrCl exactly 30 do not warn.
    "weight_100_age_30_crcl_30": (
        {
            "weight_kg": 100,
            "age_years": 30,
            "creatinine_clearance_ml_min": 30,
            "toxicities": CRS3,
            "car_target": "CD19",
        },
        {
            "cnh": (
                "indicated",
                [("initial", 200, 100, 400, None, ["max_single_dose"], "0.67")],
                ["weight_confirm", IV, MON],
            )
        },
    ),
    # Just below the confirmation band and just above the age / CrCl limits.
    "weight_99_999_age_30_1_crcl_29_9": (
        {
            "weight_kg": D("99.999"),
            "age_years": D("30.1"),
            "creatinine_clearance_ml_min": D("29.9"),
            "toxicities": CRS3,
            "car_target": "CD19",
        },
        {
            # 2 x 99.999 = 199.998 mg -> 100 mg cap
            "cnh": (
                "indicated",
                [("initial", 200, 100, 400, None, ["max_single_dose"], "0.67")],
                ["renal_impairment", "adult_patient", IV, MON],
            )
        },
    ),
}


def _amount(value) -> dict | None:
    if value is None:
        return None
    low, high = value if isinstance(value, tuple) else (value, value)
    return {"low": D(str(low)), "high": D(str(high))}


def _api_step(step: dict) -> tuple:
    return (
        step["kind"],
        step["calculated_per_dose_mg"],
        step["per_dose_mg"],
        step["per_day_mg"],
        step["max_escalation_per_day_mg"],
        step["capped_by"],
        step["volume_ml"],
        step["max_escalation_capped_by"],
    )


def _expected_step(kind, calculated, per_dose, per_day, ceiling, capped_by, volume, ceiling_capped_by=()) -> tuple:
    return (
        kind,
        _amount(calculated),
        _amount(per_dose),
        _amount(per_day),
        None if ceiling is None else D(str(ceiling)),
        capped_by,
        _amount(volume),
        list(ceiling_capped_by),
    )


@pytest.mark.parametrize("case", list(AUDIT_CASES), ids=list(AUDIT_CASES))
def test_api_recommendations_match_hand_computed_cases(clinician_client, case):
    request, expected = AUDIT_CASES[case]
    response = clinician_client.post(
        "/api/v1/recommendations",
        jsonutil.dumps({**BASE, **request}),
        content_type="application/json",
    )
    assert response.status_code == 200
    # Numbers read back as Decimals: exact comparisons, never floats.
    answers = {r["institution"]["slug"]: r for r in jsonutil.loads(response.content)["recommendations"]}
    got = {
        slug: (answers[slug]["status"], [_api_step(s) for s in answers[slug]["steps"]], codes(answers[slug]))
        for slug in expected
    }
    want = {
        slug: (status, [_expected_step(*s) for s in steps], warnings)
        for slug, (status, steps, warnings) in expected.items()
    }
    assert got == want


# Each prerequisite missing, one center at a time: status not_indicated and the missing item named.
@pytest.mark.parametrize(
    ("slug", "toxicity", "tocilizumab", "steroids", "reason"),
    [
        (
            "cnh",
            ("CRS", 3),
            0,
            True,
            "CRS grade 3: third-line use, after tocilizumab and steroids; needs prior tocilizumab and steroids "
            "given or starting; tocilizumab not yet given",
        ),
        (
            "seattle",
            ("ICANS", 3),
            0,
            False,
            "ICANS grade 3: severe ICANS: started together with steroids; needs steroids given or starting; "
            "steroids not yet given",
        ),
        (
            "seattle",
            ("CRS", 4),
            0,
            True,
            "CRS grade 4: severe CRS: may be considered after a first tocilizumab dose and steroids, before "
            "re-dosing tocilizumab; needs prior tocilizumab and steroids given or starting; tocilizumab not yet given",
        ),
        (
            "chop",
            ("CRS", 2),
            1,
            False,
            "CRS grade 2: severe or refractory CRS not responding to tocilizumab and steroids (no grade floor "
            "stated); needs prior tocilizumab and steroids given or starting; steroids not yet given",
        ),
        (
            "musc",
            ("carHLH", 2),
            0,
            True,
            "carHLH grade 2: after no response to tocilizumab and steroids; needs prior tocilizumab and steroids "
            "given or starting; tocilizumab not yet given",
        ),
    ],
)
def test_missing_prerequisite_is_not_indicated_and_named(db, slug, toxicity, tocilizumab, steroids, reason):
    result = answer(slug, patient("20", toxicities=(toxicity,), tocilizumab=tocilizumab, steroids=steroids))
    assert (result["status"], result["reasons"]) == ("not_indicated", [reason])


# NIH's first-line reading needs late isolated onset AND fever recorded false AND hypotension recorded false.
@pytest.mark.parametrize(
    ("flags", "reason_text", "note"),
    [
        ({"late_onset_isolated": True, "fever": False, "hypotension": False}, "first line", None),
        (
            {"late_onset_isolated": True, "fever": False, "hypotension": True},
            "usually",
            "First-line use for isolated late-onset carHLH does not apply: hypotension present.",
        ),
        # Not recorded: the reason itself says so (review round 3), rather than reading as if they were absent.
        (
            {"late_onset_isolated": True},
            "usually; first-line use (isolated late-onset carHLH) needs no fever and no hypotension, but fever and "
            "hypotension were not recorded",
            None,
        ),
        (
            {"late_onset_isolated": True, "fever": False},
            "usually; first-line use (isolated late-onset carHLH) needs no fever and no hypotension, but "
            "hypotension was not recorded",
            None,
        ),
        # Fever recorded present: first line does not apply whatever hypotension is; the note says why.
        (
            {"late_onset_isolated": True, "fever": True},
            "usually",
            "First-line use for isolated late-onset carHLH does not apply: fever present.",
        ),
        ({"late_onset_isolated": False, "fever": False, "hypotension": False}, "usually", None),
    ],
)
def test_nih_first_line_rule_needs_isolated_late_onset_without_fever_or_hypotension(db, flags, reason_text, note):
    result = answer("nih", patient("20", toxicities=(("carHLH", 1),), tocilizumab=0, steroids=False, **flags))
    first_line = (
        "carHLH grade 1: first line for isolated late-onset carHLH without fever or hypotension, "
        "where tocilizumab is not indicated"
    )
    usual = "carHLH grade 1: usually given with steroids when more severely affected"
    expected = first_line if reason_text == "first line" else usual + reason_text.removeprefix("usually")
    assert result["status"] == "indicated"
    assert result["reasons"] == [expected]
    first_line_notes = [n for n in result["notes"] if n.startswith("First-line")]
    assert first_line_notes == ([note] if note else [])
    # carHLH grade 1 is "less ill": 5-8 x 20 = 100-160 mg/day (the taper goal follows only the severe step)
    assert [s["per_day_mg"] for s in result["steps"]] == [rng(100, 160)]


# --- Comparison amounts and the label (clinical.md section 4) ---------------------------------------------


def test_above_reported_maximum_text_is_built_from_the_version_data(db):
    # St. Jude 36.4 kg: 10 x 36.4 / 4 = 91 mg, rounded to the 100 mg vial (+9.89%); 4 x 100 = 400 mg/day;
    # 400 / 36.4 = 10.989 mg/kg/day, shown 11 (distinct from 10 at 0.1).
    result = answer("stjude", patient("36.4", toxicities=(("carHLH", 2),), tocilizumab=0, car_target=CarTarget.CD19))
    assert result["warnings"][0] == {
        "code": "above_reported_maximum",
        "severity": "warning",
        "text": "Step 1 (Initial dosing): 400 mg/day (11 mg/kg/day) after rounding to the nearest vial: above "
        "10 mg/kg/day, the highest per-kg daily amount any of the six centers reports.",
    }


def test_label_is_cited_with_the_facts_used(db):
    # CNH, IV only: iv_off_label and the 100 mg in 0.67 mL volume; the TNF blocker and CrCl 29 add theirs.
    p = patient("20", concurrent_tnf_blocker=True, creatinine_clearance_ml_min=D("29"), car_target=CarTarget.CD19)
    citations = answer("cnh", p)["citations"]
    assert citations[-1] == {
        "label": "FDA Package Insert: Kineret: serious infections 7% vs 0% with etanercept; creatinine clearance "
        "< 30 mL/min; labelled route subcutaneous; 100 mg in 0.67 mL per prefilled syringe",
        "doi": None,
        "pmid": None,
        "url": "https://www.accessdata.fda.gov/drugsatfda_docs/label/2012/103950s51361bl.pdf",
    }
    # Contraindicated: the label's E. coli rule, no steps (so no volume).
    blocked = answer("cnh", patient("20", ecoli_protein_hypersensitivity=True))
    assert [c["label"] for c in blocked["citations"]][-1] == ("FDA Package Insert: Kineret: E. coli-derived proteins")
    # No label-derived rule and no volume (a center with no step for ICANS): the label is not cited.
    none = answer("chop", patient("20", toxicities=(("ICANS", 3),)))
    assert [c["label"] for c in none["citations"]] == ["Diorio C, Vatsayan A, et al. Blood Adv 2022 (Table 1)"]


def test_warnings_from_the_label_name_it(db):
    p = patient(
        "20",
        concurrent_tnf_blocker=True,
        creatinine_clearance_ml_min=D("20"),
        car_target=CarTarget.CD19,
    )
    texts = {w["code"]: w["text"] for w in answer("cnh", p)["warnings"]}
    assert [
        code for code in ("tnf_blocker", "renal_impairment", "iv_off_label") if "Kineret US label" in texts[code]
    ] == [
        "tnf_blocker",
        "renal_impairment",
        "iv_off_label",
    ]


# --- Clinical review round 3 (2026-12-03) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("weight", "calculated", "capped_by", "cap_notes"),
    [
        # 2 mg/kg x 50.001 kg = 100.002 mg, shown 100 mg = the 100 mg ordered: no cap reported (it was, with the
        # note "100.002 mg per dose is above the 100 mg/dose maximum").
        ("50.001", "100", [], []),
        # 2 x 50.025 = 100.05 mg -> 100.1 mg (ROUND_HALF_UP) > 100 mg: the cap changes the shown dose.
        ("50.025", "100.1", ["max_single_dose"], ["100.1 mg per dose is above the 100 mg/dose maximum"]),
    ],
)
def test_cnh_per_dose_cap_reported_only_where_the_shown_dose_changes(db, weight, calculated, capped_by, cap_notes):
    (step,) = answer("cnh", patient(weight, car_target=CarTarget.CD19))["steps"]
    # Ordered 100 mg either way; 4 x 100 = 400 mg/day.
    assert (
        step["calculated_per_dose_mg"],
        step["per_dose_mg"],
        step["per_day_mg"],
        step["capped_by"],
        step["cap_notes"],
    ) == (rng(calculated), rng(100), rng(400), capped_by, cap_notes)


@pytest.mark.parametrize(
    ("weight", "ceiling_capped_by", "escalation_text"),
    [
        # 10 mg/kg/day x 40.001 kg = 400.01 mg/day, shown 400 mg/day = the cap: not "capped at 400".
        ("40.001", [], "escalation ceiling 10 mg/kg/day = 400 mg/day"),
        # 10 x 40.004 = 400.04 -> 400.0 mg/day shown: still not reported.
        ("40.004", [], "escalation ceiling 10 mg/kg/day = 400 mg/day"),
        # 10 x 40.005 = 400.05 -> 400.1 mg/day (half up) > 400: the cap lowers the shown ceiling.
        ("40.005", ["max_daily_dose"], "escalation ceiling 10 mg/kg/day = 400.1 mg/day, capped at 400 mg/day"),
    ],
)
def test_chop_ceiling_cap_reported_only_where_the_shown_ceiling_changes(db, weight, ceiling_capped_by, escalation_text):
    (step,) = answer("chop", patient(weight))["steps"]
    # Starting 2 x 40.00x = 80.0 mg/day; ceiling 400 mg/day after the per-day cap in every case.
    assert (
        step["per_day_mg"],
        step["max_escalation_per_day_mg"],
        step["capped_by"],
        step["max_escalation_capped_by"],
        step["escalation_text"],
        step["cap_notes"],
    ) == (
        rng(80),
        D(400),
        [],
        ceiling_capped_by,
        escalation_text,
        [escalation_text] if ceiling_capped_by else [],
    )


def test_above_reported_maximum_names_each_step_it_fired_on(db):
    # MUSC, ICANS grade 2 at 4.9 kg: its listed steps are the fixed-dose alternative and its taper (the mg/kg
    # steps are for CRS). Against 10 mg/kg/day x 4.9 kg / 1 dose a day = 49 mg: 100 mg once a day is above
    # (100 / 4.9 = 20.408 -> 20.4 mg/kg/day), and so is the 50 mg taper (50 / 4.9 = 10.204 -> 10.2 mg/kg/day).
    result = answer("musc", patient("4.9", toxicities=(("ICANS", 2),), car_target=CarTarget.CD19))
    assert [s["name"] for s in result["steps"]] == ["Alternative: fixed dose", "Taper after the fixed-dose alternative"]
    assert result["warnings"][0] == {
        "code": "above_reported_maximum",
        "severity": "warning",
        "text": "Step 1 (Alternative: fixed dose): 100 mg/day (20.4 mg/kg/day); step 2 (Taper after the fixed-dose "
        "alternative): 50 mg/day (10.2 mg/kg/day): above 10 mg/kg/day, the highest per-kg daily amount any of the "
        "six centers reports.",
    }


def test_stjude_60kg_rounding_tie_names_both_vial_multiples(db):
    # 10 mg/kg/day x 60 kg = 600 mg/day / 4 = 150 mg: halfway between 100 mg and 200 mg, each 50 / 150 =
    # 33.3% away, more than the 10% tolerance: not rounded, 150 mg ordered (4 x 150 = 600 mg/day).
    (step,) = answer("stjude", patient("60", toxicities=(("carHLH", 3),), tocilizumab=0))["steps"]
    assert (step["per_dose_mg"], step["per_day_mg"], step["rounding"]) == (
        rng(150),
        rng(600),
        {
            "increment_mg": D(100),
            "applied": False,
            "note": "150 mg not rounded: it is halfway between 100 mg and 200 mg, the two nearest multiples of "
            "100 mg, and either would change the dose by 33.3%, more than the 10% rounding tolerance (this app's "
            "documented choice, set by pharmacists; not a literature figure)",
        },
    )
