"""ASTCT grading helpers (engine/grading.py) at the boundaries clinical.md section 3 pins."""

from decimal import Decimal

import pytest

from engine.grading import (
    Consciousness,
    Finding,
    GradingInputError,
    Hypotension,
    Motor,
    OxygenSupport,
    RaisedIcp,
    ScreeningTool,
    Seizure,
    crs_grade,
    icans_grade,
    icans_screening_tool,
)

pytestmark = pytest.mark.unit


def _crs(**overrides):
    arguments = {
        "fever": True,
        "tocilizumab_given": False,
        "antipyretics_or_steroids_given": False,
        "hypotension": Hypotension.NONE,
        "oxygen": OxygenSupport.NONE,
        "oxygen_flow_l_min": None,
    }
    return crs_grade(**{**arguments, **overrides})


def _icans(**overrides):
    arguments = {"age_years": Decimal("14"), "ice_score": 10}
    return icans_grade(**{**arguments, **overrides})


# --- CRS -------------------------------------------------------------------------------------------


def test_crs_grade_fever_alone_is_grade_1():
    result = _crs()
    assert (result.grade, result.set_by) == (1, (Finding("fever of 38.0 °C or more", 1),))


def test_crs_grade_nasal_cannula_exactly_6_l_min_is_low_flow_grade_2():
    result = _crs(oxygen=OxygenSupport.NASAL_CANNULA, oxygen_flow_l_min=Decimal("6"))
    assert (result.grade, result.set_by_text) == (2, "low-flow nasal cannula, 6 L/min (6 L/min or less)")


def test_crs_grade_nasal_cannula_just_above_6_l_min_is_high_flow_grade_3():
    result = _crs(oxygen=OxygenSupport.NASAL_CANNULA, oxygen_flow_l_min=Decimal("6.5"))
    assert (result.grade, result.set_by_text) == (3, "high-flow nasal cannula, 6.5 L/min (above 6 L/min)")


def test_crs_grade_positive_pressure_is_grade_4():
    result = _crs(oxygen=OxygenSupport.POSITIVE_PRESSURE)
    assert (result.grade, result.set_by_text) == (
        4,
        "positive pressure (CPAP, BiPAP, or intubation and mechanical ventilation)",
    )


@pytest.mark.parametrize(
    ("oxygen", "grade"),
    [(OxygenSupport.BLOW_BY, 2), (OxygenSupport.MASK, 3), (OxygenSupport.POSITIVE_PRESSURE, 4)],
)
def test_crs_grade_oxygen_devices_map_to_astct_grades(oxygen, grade):
    assert _crs(oxygen=oxygen).grade == grade


@pytest.mark.parametrize(
    ("hypotension", "grade"),
    [
        (Hypotension.NO_VASOPRESSOR, 2),
        (Hypotension.ONE_VASOPRESSOR, 3),
        (Hypotension.MULTIPLE_VASOPRESSORS, 4),
    ],
)
def test_crs_grade_hypotension_maps_to_astct_grades(hypotension, grade):
    assert _crs(hypotension=hypotension).grade == grade


def test_crs_grade_the_more_severe_of_hypotension_and_hypoxia_sets_it():
    result = _crs(hypotension=Hypotension.ONE_VASOPRESSOR, oxygen=OxygenSupport.BLOW_BY)
    assert (result.grade, result.set_by_text) == (
        3,
        "hypotension requiring one vasopressor (with or without vasopressin)",
    )


def test_crs_grade_reports_every_finding_at_the_top_grade():
    result = _crs(hypotension=Hypotension.ONE_VASOPRESSOR, oxygen=OxygenSupport.MASK)
    assert [f.grade for f in result.set_by] == [3, 3]


def test_crs_grade_without_fever_before_tocilizumab_or_steroids_is_not_graded():
    result = _crs(fever=False, hypotension=Hypotension.ONE_VASOPRESSOR)
    assert (result.grade, result.explanation) == (
        None,
        "Fever is absent: ASTCT CRS needs a fever of 38.0 °C or more unless tocilizumab, antipyretics or steroids "
        "have already been given.",
    )


def test_crs_grade_fever_not_required_after_tocilizumab():
    result = _crs(fever=False, tocilizumab_given=True, hypotension=Hypotension.ONE_VASOPRESSOR)
    assert (result.grade, result.notes) == (3, ("Fever is not required: tocilizumab has been given.",))


def test_crs_grade_fever_not_required_after_antipyretics_or_steroids_already_given():
    result = _crs(fever=False, antipyretics_or_steroids_given=True, hypotension=Hypotension.ONE_VASOPRESSOR)
    assert (result.grade, result.notes) == (
        3,
        ("Fever is not required: antipyretics or steroids have already been given.",),
    )


def test_crs_grade_fever_waiver_names_both_when_both_given():
    result = _crs(fever=None, tocilizumab_given=True, antipyretics_or_steroids_given=True, oxygen=OxygenSupport.MASK)
    assert result.notes == (
        "Fever is not required: tocilizumab has been given and antipyretics or steroids have already been given.",
    )


def test_crs_grade_with_fever_has_no_waiver_note():
    result = _crs(tocilizumab_given=True, oxygen=OxygenSupport.BLOW_BY)
    assert (result.grade, result.notes) == (2, ())


def test_crs_grade_fever_not_recorded_after_steroids_still_grades_from_oxygen():
    result = _crs(fever=None, antipyretics_or_steroids_given=True, oxygen=OxygenSupport.BLOW_BY)
    assert result.grade == 2


def test_crs_grade_nothing_to_grade_after_tocilizumab_gives_no_grade():
    result = _crs(fever=False, tocilizumab_given=True)
    assert (result.grade, result.explanation) == (None, "No fever, hypotension or hypoxia: nothing grades CRS.")


def test_crs_grade_nasal_cannula_without_flow_names_the_field():
    with pytest.raises(GradingInputError) as error:
        _crs(oxygen=OxygenSupport.NASAL_CANNULA)
    assert (error.value.field, error.value.message) == ("oxygen_flow_l_min", "Enter the nasal cannula flow in L/min.")


# --- ICANS -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "delay", "tool"),
    [
        (Decimal("11"), False, ScreeningTool.CAPD),
        (Decimal("11.9"), False, ScreeningTool.CAPD),
        (Decimal("12"), False, ScreeningTool.ICE),
        (Decimal("12"), True, ScreeningTool.CAPD),
        (Decimal("30"), True, ScreeningTool.CAPD),
    ],
)
def test_icans_screening_tool_ice_from_age_12_capd_below_or_with_delay(age, delay, tool):
    assert icans_screening_tool(age_years=age, developmental_delay=delay) == tool


@pytest.mark.parametrize(("ice", "grade"), [(9, 1), (7, 1), (6, 2), (3, 2), (2, 3), (0, 3)])
def test_icans_grade_ice_score_bands(ice, grade):
    assert _icans(ice_score=ice).grade == grade


def test_icans_grade_ice_7_is_grade_1_and_names_the_score():
    result = _icans(ice_score=7)
    assert (result.grade, result.set_by_text) == (1, "ICE score 7 (7 to 9)")


def test_icans_grade_ice_3_is_grade_2():
    assert _icans(ice_score=3).set_by == (Finding("ICE score 3 (3 to 6)", 2),)


def test_icans_grade_ice_0_arousable_is_grade_3():
    assert _icans(ice_score=0).set_by == (Finding("ICE score 0 (0 to 2)", 3),)


def test_icans_grade_ice_0_unarousable_is_grade_4():
    result = _icans(ice_score=None, unable_to_perform=True)
    assert (result.grade, result.set_by_text) == (4, "ICE score 0, unarousable (cannot perform ICE)")


def test_icans_grade_ice_10_without_other_findings_is_not_graded():
    result = _icans(ice_score=10)
    assert (result.grade, result.explanation) == (None, "No finding grades ICANS (ICE 10 and no other finding).")


def test_icans_grade_capd_9_is_grade_3():
    result = _icans(age_years=Decimal("8"), ice_score=None, capd_total=9)
    assert (result.grade, result.set_by_text, result.notes) == (
        3,
        "CAPD total 9 (9 or more)",
        ("CAPD used: age under 12 years.",),
    )


def test_icans_grade_capd_8_is_below_grade_3():
    result = _icans(age_years=Decimal("8"), ice_score=None, capd_total=8)
    assert (result.grade, result.set_by_text) == (
        1,
        "CAPD total 8 (1 to 8: grade 1 or 2; the other findings decide)",
    )


def test_icans_grade_capd_1_is_a_grade_1_finding():
    result = _icans(age_years=Decimal("8"), ice_score=None, capd_total=1)
    assert result.set_by == (Finding("CAPD total 1 (1 to 8: grade 1 or 2; the other findings decide)", 1),)


def test_icans_grade_capd_0_without_other_findings_is_not_graded():
    result = _icans(age_years=Decimal("8"), ice_score=None, capd_total=0)
    assert (result.grade, result.findings, result.explanation) == (
        None,
        (),
        "No finding grades ICANS (CAPD total 0 and no other finding).",
    )


def test_icans_grade_capd_0_is_no_finding_so_consciousness_sets_the_grade():
    result = _icans(age_years=Decimal("8"), ice_score=None, capd_total=0, consciousness=Consciousness.AWAKENS_TO_VOICE)
    assert (result.grade, result.findings) == (2, (Finding("depressed consciousness, awakens to voice", 2),))


def test_icans_grade_capd_8_with_awakening_to_voice_is_grade_2():
    result = _icans(age_years=Decimal("8"), ice_score=None, capd_total=8, consciousness=Consciousness.AWAKENS_TO_VOICE)
    assert (result.grade, result.set_by_text) == (2, "depressed consciousness, awakens to voice")


def test_icans_grade_unable_to_perform_capd_is_grade_4():
    result = _icans(age_years=Decimal("5"), ice_score=None, unable_to_perform=True)
    assert (result.grade, result.set_by_text) == (4, "unable to perform CAPD")


def test_icans_grade_age_11_takes_capd_and_refuses_an_ice_score():
    with pytest.raises(GradingInputError) as error:
        _icans(age_years=Decimal("11"), ice_score=8)
    assert error.value.field == "ice_score"


def test_icans_grade_age_12_takes_ice_and_refuses_a_capd_total():
    with pytest.raises(GradingInputError) as error:
        _icans(age_years=Decimal("12"), ice_score=None, capd_total=4)
    assert error.value.field == "capd_total"


def test_icans_grade_developmental_delay_at_15_takes_capd():
    result = _icans(age_years=Decimal("15"), developmental_delay=True, ice_score=None, capd_total=12)
    assert (result.grade, result.notes) == (3, ("CAPD used: developmental delay.",))


def test_icans_grade_missing_score_names_the_field():
    with pytest.raises(GradingInputError) as error:
        _icans(ice_score=None)
    assert error.value.field == "ice_score"


@pytest.mark.parametrize(
    ("finding", "grade"),
    [
        ({"consciousness": Consciousness.AWAKENS_SPONTANEOUSLY}, 1),
        ({"consciousness": Consciousness.AWAKENS_TO_VOICE}, 2),
        ({"consciousness": Consciousness.AWAKENS_TO_TOUCH}, 3),
        ({"consciousness": Consciousness.UNAROUSABLE}, 4),
        ({"seizure": Seizure.RESOLVING}, 3),
        ({"seizure": Seizure.LIFE_THREATENING}, 4),
        ({"motor": Motor.DEEP_FOCAL_WEAKNESS}, 4),
        ({"raised_icp": RaisedIcp.FOCAL_EDEMA}, 3),
        ({"raised_icp": RaisedIcp.DIFFUSE}, 4),
    ],
)
def test_icans_grade_each_domain_maps_to_its_astct_grade(finding, grade):
    assert _icans(**finding).grade == grade


def test_icans_grade_most_severe_finding_sets_it():
    result = _icans(ice_score=8, seizure=Seizure.RESOLVING, consciousness=Consciousness.AWAKENS_TO_VOICE)
    assert (result.grade, [f.grade for f in result.findings], result.set_by_text) == (
        3,
        [1, 2, 3],
        "clinical seizure resolving rapidly, or non-convulsive seizure on EEG resolving with intervention",
    )
