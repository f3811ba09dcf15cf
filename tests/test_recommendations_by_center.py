"""Hand-computed cases from the spec tables, run through the loaded protocols and the engine.

Every expected number below is worked out by hand from ../shared/spec/clinical.md (the arithmetic is in
the comments), not taken from the code.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.data import PatientInputs, ToxicityGrade
from engine.present import recommendation_dict
from engine.recommend import recommend
from engine.vocabulary import CarTarget, Toxicity
from protocols.selectors import published_protocols

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


# --- Seattle --------------------------------------------------------------------------------------


def test_seattle_icans3_with_steroids_is_indicated_up_to_every_6h(db):
    result = answer("seattle", patient("30", toxicities=(("ICANS", 3),), tocilizumab=0))
    step = result["steps"][0]
    assert result["status"] == "indicated"
    # 2 x 30 = 60 mg; up to every 6 h -> up to 240 mg/day
    assert doses(result) == [("initial", rng(60), rng(240), 6, ["IV"], [])]
    assert step["order_text"] == "anakinra 60 mg IV up to every 6 hours (2 mg/kg/dose; max 100 mg/dose, 400 mg/day)"
    assert step["interval_is_maximum"] is True


def test_seattle_icans2_is_below_the_grade_floor(db):
    result = answer("seattle", patient("30", toxicities=(("ICANS", 2),), tocilizumab=0))
    assert (result["status"], result["reasons"]) == (
        "not_indicated",
        ["ICANS grade 2: severe ICANS: started together with steroids; applies to grade 3 or higher"],
    )


def test_seattle_crs3_after_one_tocilizumab_and_steroids_is_consider(db):
    result = answer("seattle", patient("30", toxicities=(("CRS", 3),), tocilizumab=1))
    assert result["status"] == "consider"


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
    # 2 x 50 = 100 mg/day; ceiling 10 x 50 = 500 mg/day, lowered to the 400 mg/day maximum: a cap applied,
    # so capped_by reports it (clinical.md 1.1 "every cap applied is reported")
    result = answer("chop", patient("50", toxicities=(("CRS", 3),)))
    step = result["steps"][0]
    assert (step["per_day_mg"], step["max_escalation_per_day_mg"], step["capped_by"]) == (
        rng(100),
        D(400),
        ["max_daily_dose"],
    )
    assert step["cap_notes"] == [
        "escalation ceiling 500 mg/day is above the 400 mg/day maximum: escalate up to 400 mg/day"
    ]


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


def test_nih_less_ill_carhlh_uses_the_lower_step(db):
    result = answer("nih", patient("30", toxicities=(("carHLH", 2),), tocilizumab=0, steroids=False))
    # less ill: 5-8 x 30 = 150-240 mg/day; taper goal 5-7 x 30 = 150-210 mg/day
    assert doses(result) == [
        ("initial", None, rng(150, 240), None, ["SC"], []),
        ("taper", None, rng(150, 210), None, ["SC"], []),
    ]


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


def test_nih_45kg_severe_range_above_reported_maximum(db):
    # 8-10 x 45 = 360-450 mg/day: the high end is above 400 mg/day
    result = answer("nih", patient("45", toxicities=(("carHLH", 4),), tocilizumab=0))
    assert result["steps"][0]["per_day_mg"] == rng(360, 450)
    assert "above_reported_maximum" in codes(result)


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


def test_musc_60kg_above_reported_maximum_without_a_cap(db):
    # 4 x 60 = 240 mg q12h = 480 mg/day; MUSC states no cap
    result = answer("musc", patient("60"))
    assert result["steps"][0]["per_day_mg"] == rng(480)
    assert codes(result)[0] == "above_reported_maximum"


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
        "112.5 mg not rounded: the nearest multiple of 100 mg (100 mg) would change the dose by 11.1%, more than 10%"
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
