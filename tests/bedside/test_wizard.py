"""The bedside wizard: login, each step's validation, Back and Forward, finishing, and the /start/ link."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from anakinra_cds import jsonutil
from assessments.models import Assessment
from bedside.models import AssessmentGrading, AssessmentLiterature, InstitutionChoice
from bedside.services import institution_choice_remember
from evidence.models import Reference
from protocols.models import Institution
from tests.factories import AssessmentFactory, InstitutionChoiceFactory

pytestmark = pytest.mark.integration

PATIENT = {
    "weight_kg": "20",
    "age_years": "8",
    "prior_tocilizumab_doses": "1",
    "prior_steroids": "true",
    "safety_screen": "none",
    "institution": "cnh",
    "car_target": "CD19",
    "days_since_infusion": "",
    "creatinine_clearance_ml_min": "",
}
PLAIN_NUMBER_MESSAGE = "Enter a number using the digits 0-9 and at most one decimal point (for example 20.5)."
WEIGHT_NOT_KG = "Enter the weight in kilograms (kg), for example 20.5; pounds are not accepted."
AGE_NOT_YEARS = "Enter the age in years, for example 8, or 1.5 for 18 months."
# What Python's Decimal or int would take but no clinician means: exponents, signs, specials, hex, separators,
# non-ASCII digits (Arabic-Indic and full-width twenty, written as escapes).
NOT_PLAIN_NUMBERS = [
    *("1e2", "2E1", "+20", "-20", "NaN", "Infinity", "inf", "0x14", "1_0", "2 0", "20..5", "."),
    *("\u0662\u0660", "\uff12\uff10"),
]
SAFETY_QUESTIONS = (
    "ecoli_protein_hypersensitivity",
    "active_infection",
    "concurrent_tnf_blocker",
    "thrombocytopenia_or_coagulopathy",
)
CRS_CALCULATED_GRADE_3 = {
    "fever": "true",
    "hypotension": "true",
    "crs_grade": "calculate",
    "crs_hypotension": "one_vasopressor",
    "crs_oxygen": "none",
    "icans_grade": "absent",
    "carhlh_grade": "absent",
}


def _post(client: Client, url: str, data: dict, action: str = "next"):
    return client.post(url, {**data, "action": action})


def _calculate(client: Client, data: dict, toxicity: str = "CRS"):
    """Press a toxicity's "Calculate grade" button."""
    return client.post("/wizard/toxicities/", {**data, "calculate": toxicity})


def _complete_patient(client: Client, patient: dict | None = None) -> None:
    assert _post(client, "/", patient or PATIENT).status_code == 302


def _complete_all(client: Client, toxicities: dict | None = None, institution: str = "cnh"):
    _complete_patient(client, {**PATIENT, "institution": institution})
    return _post(client, "/wizard/toxicities/", toxicities or CRS_CALCULATED_GRADE_3)


def _errors(response) -> dict[str, list[str]]:
    form = response.context["form"]
    return {name: list(errors) for name, errors in form.errors.items()}


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# --- Login -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/wizard/toxicities/",
        "/start/?weight_kg=20",
        "/evidence/",
        "/protocols/",
        "/protocols/cnh/",
    ],
)
def test_bedside_page_requires_login(client, db, path):
    response = client.get(path)
    assert (response.status_code, response["Location"]) == (
        302,
        "/accounts/login/?next=" + path.replace("?", "%3F").replace("=", "%3D"),
    )


@pytest.mark.parametrize("suffix", ["", "print/"])
def test_assessment_page_requires_login(client, db, suffix):
    assessment = AssessmentFactory()
    response = client.get(f"/assessments/{assessment.id}/{suffix}")
    assert (response.status_code, response["Location"]) == (
        302,
        f"/accounts/login/?next=/assessments/{assessment.id}/{suffix}",
    )


def test_wizard_reset_requires_login(client, db):
    assert client.post("/wizard/reset/")["Location"] == "/accounts/login/?next=/wizard/reset/"


# --- Step 1: patient and treatment -----------------------------------------------------------------


def test_wizard_home_is_the_patient_step(clinician_client):
    response = clinician_client.get("/")
    assert (response.status_code, response.context["step"].slug) == (200, "patient")


def test_wizard_has_two_steps_and_then_the_recommendation(clinician_client):
    nav = clinician_client.get("/").context["nav"]
    assert [item["step"].title for item in nav] == ["Patient and treatment", "Toxicities and grades"]


@pytest.mark.parametrize(
    ("field", "typed", "message"),
    [
        ("weight_kg", "151", "Enter a value from 1 to 150 kg."),
        ("weight_kg", "0.5", "Enter a value from 1 to 150 kg."),
        ("weight_kg", "44 lb", "Pounds are not accepted: enter the weight in kilograms (kg), for example 20.5."),
        ("weight_kg", "97.5 LBS", "Pounds are not accepted: enter the weight in kilograms (kg), for example 20.5."),
        ("weight_kg", "44 pounds", "Pounds are not accepted: enter the weight in kilograms (kg), for example 20.5."),
        ("weight_kg", "20 kg", "Enter the number of kilograms alone, without “kg”: for example 20.5."),
        ("weight_kg", "twenty", WEIGHT_NOT_KG),
        (
            "age_years",
            "18 months",
            "Enter the age in years, not months: for example 1.5 for 18 months, 0.75 for 9 months.",
        ),
        ("age_years", "8y", "Enter the number of years alone, without the unit: for example 8, or 1.5 for 18 months."),
        ("age_years", "eight", AGE_NOT_YEARS),
        # quantized to the gram before the range check, like the API: 150.0005 -> 150.001 kg
        ("weight_kg", "150.0005", "Enter a value from 1 to 150 kg."),
        ("weight_kg", "", "This field is required."),
        ("age_years", "41", "Enter a value from 0 to 40 years."),
        ("prior_tocilizumab_doses", "11", "Enter a value from 0 to 10 doses."),
        ("prior_tocilizumab_doses", "1.5", "Enter a whole number of doses."),
        ("prior_steroids", "", "Choose an answer."),
        ("days_since_infusion", "400", "Enter a value from 0 to 365 days."),
        ("days_since_infusion", "2.5", "Enter a whole number of days."),
        ("creatinine_clearance_ml_min", "301", "Enter a value from 0 to 300 mL/min."),
        ("safety_screen", "", "Choose “No, none of these”, or “Yes” and answer each question."),
        ("institution", "", "Choose your center."),
        ("institution", "nowhere", "Choose one of the listed centers."),
        ("car_target", "CD99", "Select a valid choice. CD99 is not one of the available choices."),
    ],
)
def test_patient_step_validates_next_to_the_field_and_keeps_what_was_typed(clinician_client, field, typed, message):
    response = _post(clinician_client, "/", {**PATIENT, field: typed})
    assert (response.status_code, _errors(response)) == (200, {field: [message]})
    assert response.context["form"][field].value() == typed


@pytest.mark.parametrize("typed", NOT_PLAIN_NUMBERS)
@pytest.mark.parametrize(
    "field", ["weight_kg", "age_years", "prior_tocilizumab_doses", "days_since_infusion", "creatinine_clearance_ml_min"]
)
def test_patient_step_numbers_must_be_plain_decimals_and_stay_as_typed(clinician_client, field, typed):
    response = _post(clinician_client, "/", {**PATIENT, field: typed})
    expected = {
        "days_since_infusion": "Enter a whole number of days.",
        "prior_tocilizumab_doses": "Enter a whole number of doses.",
        "weight_kg": WEIGHT_NOT_KG,
        "age_years": AGE_NOT_YEARS,
    }.get(field, PLAIN_NUMBER_MESSAGE)
    assert (response.status_code, _errors(response)) == (200, {field: [expected]})
    assert response.context["form"][field].value() == typed


def test_patient_step_hints_say_kilograms_only_and_give_a_valid_age(clinician_client):
    form = clinician_client.get("/").context["form"]
    assert (form["weight_kg"].help_text, form["age_years"].help_text) == (
        "In kilograms (kg) only, 1 to 150, for example 20.5. Pounds are not accepted.",
        "In years, 0 to 40, for example 8. Under 2 years, use decimals: 1.5 is 18 months, 0.75 is 9 months.",
    )
    # Each example in the hints is an answer the step takes.
    for weight, age in (("20.5", "8"), ("20.5", "1.5"), ("20.5", "0.75")):
        assert _post(clinician_client, "/", {**PATIENT, "weight_kg": weight, "age_years": age}).status_code == 302


def test_patient_step_decimal_comma_gets_its_own_message(clinician_client):
    response = _post(clinician_client, "/", {**PATIENT, "weight_kg": "20,5"})
    assert _errors(response) == {"weight_kg": ["Use a point for decimals, not a comma (for example 20.5)."]}


@pytest.mark.parametrize(
    ("typed", "stored"),
    [(" 20 ", Decimal("20")), ("20.0000", Decimal("20")), ("20.5000", Decimal("20.5")), ("020.125", Decimal("20.125"))],
)
def test_patient_step_weight_counts_the_value_not_the_spelling(clinician_client, typed, stored):
    _complete_patient(clinician_client, {**PATIENT, "weight_kg": typed})
    assert _post(clinician_client, "/wizard/toxicities/", CRS_CALCULATED_GRADE_3).status_code == 302
    weight = Assessment.objects.get().inputs["weight_kg"]
    assert (weight, str(weight)) == (stored, str(stored))


def test_patient_step_shows_a_typed_weight_back_in_the_text_box(clinician_client):
    response = _post(clinician_client, "/", {**PATIENT, "weight_kg": "44 lb"})
    assert re.search(rb'name="weight_kg" value="44 lb"', response.content) is not None


def test_patient_step_error_summary_links_to_each_field_and_takes_focus(clinician_client):
    response = _post(clinician_client, "/", {**PATIENT, "weight_kg": "151", "prior_steroids": ""})
    html = response.content.decode()
    summary = re.findall(r'<li><a href="(#[^"]+)">([^<]+)</a>: ([^<]+)</li>', html)
    assert summary == [
        ("#id_weight_kg", "Weight (kg)", "Enter a value from 1 to 150 kg."),
        ("#id_prior_steroids_0", "Steroids given, or starting now", "Choose an answer."),
    ]
    assert re.search(
        r'<div class="alert alert-danger error-summary" role="alert" tabindex="-1" autofocus data-focus-on-load', html
    )


def test_patient_step_title_starts_with_error_after_a_failed_submit(clinician_client):
    html = _post(clinician_client, "/", {**PATIENT, "weight_kg": ""}).content.decode()
    assert re.search(r"<title>([^<]+)</title>", html).group(1) == "Error: Patient and treatment - Anakinra CDS"
    assert "<title>Patient and treatment - Anakinra CDS</title>" in clinician_client.get("/").content.decode()


def test_patient_step_valid_goes_to_toxicities(clinician_client):
    response = _post(clinician_client, "/", PATIENT)
    assert (response.status_code, response["Location"]) == (302, "/wizard/toxicities/")


def test_patient_step_car_target_is_optional_and_recorded_as_other(clinician_client):
    _complete_patient(clinician_client, {**PATIENT, "car_target": ""})
    _post(clinician_client, "/wizard/toxicities/", CRS_CALCULATED_GRADE_3)
    assert Assessment.objects.get().inputs["car_target"] == "other"


# --- Safety: one answer for "none of these", or each question ------------------------------------


def _safety(**answers: str) -> dict[str, str]:
    return {**PATIENT, "safety_screen": "", **dict.fromkeys(SAFETY_QUESTIONS, ""), **answers}


def _finished_safety(client: Client, data: dict) -> dict[str, bool]:
    _complete_patient(client, data)
    _post(client, "/wizard/toxicities/", CRS_CALCULATED_GRADE_3)
    inputs = Assessment.objects.get().inputs
    return {name: inputs[name] for name in SAFETY_QUESTIONS}


def test_safety_none_of_these_answers_every_question_no(clinician_client):
    assert _finished_safety(clinician_client, _safety(safety_screen="none")) == dict.fromkeys(SAFETY_QUESTIONS, False)


def test_safety_none_of_these_with_a_yes_is_refused_at_that_question(clinician_client):
    response = _post(clinician_client, "/", _safety(safety_screen="none", active_infection="true"))
    assert _errors(response) == {
        "active_infection": ["You answered “No, none of these” above: change this to No, or change that answer."]
    }


def test_safety_yes_needs_an_answer_to_each_question(clinician_client):
    response = _post(clinician_client, "/", _safety(safety_screen="some", active_infection="true"))
    unanswered = ("ecoli_protein_hypersensitivity", "concurrent_tnf_blocker", "thrombocytopenia_or_coagulopathy")
    assert _errors(response) == {name: ["Choose an answer."] for name in unanswered}


def test_safety_yes_with_every_answer_no_is_refused(clinician_client):
    data = _safety(safety_screen="some", **dict.fromkeys(SAFETY_QUESTIONS, "false"))
    assert _errors(_post(clinician_client, "/", data)) == {
        "safety_screen": ["Each question is answered No: choose “No, none of these”, or answer Yes where one applies."]
    }


def test_safety_yes_keeps_each_answer(clinician_client):
    data = _safety(safety_screen="some", **{**dict.fromkeys(SAFETY_QUESTIONS, "false"), "active_infection": "true"})
    assert _finished_safety(clinician_client, data) == {
        **dict.fromkeys(SAFETY_QUESTIONS, False),
        "active_infection": True,
    }


def test_safety_each_question_answered_needs_no_screening_answer(clinician_client):
    data = _safety(**{**dict.fromkeys(SAFETY_QUESTIONS, "false"), "concurrent_tnf_blocker": "true"})
    assert _finished_safety(clinician_client, data) == {
        **dict.fromkeys(SAFETY_QUESTIONS, False),
        "concurrent_tnf_blocker": True,
    }


def test_safety_some_questions_unanswered_and_no_screening_answer_is_refused(clinician_client):
    response = _post(clinician_client, "/", _safety(active_infection="false"))
    assert _errors(response) == {"safety_screen": ["Choose “No, none of these”, or “Yes” and answer each question."]}


def test_safety_questions_are_marked_required(clinician_client):
    html = clinician_client.get("/").content.decode()
    for name in ("safety_screen", *SAFETY_QUESTIONS):
        legend = re.search(rf'id="div_id_{name}".*?<legend[^>]*>(.*?)</legend>', html, re.S).group(1)
        assert legend.strip().endswith('<span class="asteriskField">*</span>'), name


# --- Step 2: toxicities and grades -----------------------------------------------------------------


def test_toxicities_step_starts_with_every_toxicity_not_present(clinician_client):
    _complete_patient(clinician_client)
    form = clinician_client.get("/wizard/toxicities/").context["form"]
    assert [form[name].value() for name in ("crs_grade", "icans_grade", "carhlh_grade")] == ["absent"] * 3


def test_toxicities_step_needs_at_least_one_toxicity(clinician_client):
    _complete_patient(clinician_client)
    response = _post(
        clinician_client,
        "/wizard/toxicities/",
        {"crs_grade": "absent", "icans_grade": "absent", "carhlh_grade": "absent"},
    )
    assert _errors(response) == {"__all__": ["Mark at least one toxicity as present, with a grade."]}


def test_toxicities_step_needs_a_choice_for_each_toxicity(clinician_client):
    _complete_patient(clinician_client)
    response = _post(clinician_client, "/wizard/toxicities/", {"crs_grade": "2"})
    assert _errors(response) == {
        "icans_grade": ["Choose a grade, Not present, or Calculate."],
        "carhlh_grade": ["Choose a severity, or Not present."],
    }


def test_toxicities_calculate_shows_the_grade_and_the_finding_that_set_it(clinician_client):
    _complete_patient(clinician_client)
    response = _calculate(clinician_client, CRS_CALCULATED_GRADE_3)
    assert response.status_code == 200
    assert (
        "<strong>CRS grade 3</strong>, set by: hypotension requiring one vasopressor (with or without vasopressin)."
        in response.content.decode()
    )


def test_toxicities_calculate_lands_on_the_grade(clinician_client):
    _complete_patient(clinician_client)
    html = clinician_client.get("/wizard/toxicities/").content.decode()
    buttons = re.findall(r'<button type="submit" name="calculate" value="(\w+)" formaction="([^"]+)"', html)
    assert buttons == [("CRS", "/wizard/toxicities/#crs-result"), ("ICANS", "/wizard/toxicities/#icans-result")]
    calculated = _calculate(clinician_client, CRS_CALCULATED_GRADE_3).content.decode()
    assert '<div class="grade-result" id="crs-result" tabindex="-1" autofocus data-focus-on-load>' in calculated


def test_toxicities_calculate_one_toxicity_without_demanding_the_others(clinician_client):
    # carHLH present without its late-onset answer, and an invalid ICE score: neither stops the CRS grade.
    _complete_patient(clinician_client)
    data = {**CRS_CALCULATED_GRADE_3, "carhlh_grade": "3", "icans_grade": "calculate", "icans_ice_score": "99"}
    response = _calculate(clinician_client, data)
    html = response.content.decode()
    assert (_errors(response), response.context["form"].outcomes_by_name["CRS"].grade) == ({}, 3)
    assert ("error-summary" in html, "late, isolated onset" in html.lower() and "Choose an answer" in html) == (
        False,
        False,
    )


def test_toxicities_calculate_says_what_its_grade_still_needs_beside_it(clinician_client):
    _complete_patient(clinician_client)
    response = _calculate(clinician_client, {**CRS_CALCULATED_GRADE_3, "crs_oxygen": "", "carhlh_grade": "3"})
    html = response.content.decode()
    start = html.index('<div class="grade-result" id="crs-result"')
    result = html[start : html.index("<section", start)]
    assert _errors(response) == {"crs_oxygen": ["Choose one to calculate the grade."]}
    assert " ".join(_text(result).split()) == (
        "CRS grade not calculated yet Oxygen : Choose one to calculate the grade."
    )


def test_toxicities_calculate_exactly_6_l_min_is_crs_grade_2(clinician_client):
    _complete_patient(clinician_client)
    data = {
        **CRS_CALCULATED_GRADE_3,
        "hypotension": "false",
        "crs_hypotension": "none",
        "crs_oxygen": "nasal_cannula",
        "crs_oxygen_flow_l_min": "6",
    }
    outcome = _calculate(clinician_client, data).context["form"].outcomes_by_name["CRS"]
    assert (outcome.grade, outcome.result.set_by_text) == (2, "low-flow nasal cannula, 6 L/min (6 L/min or less)")


def test_toxicities_calculate_positive_pressure_is_crs_grade_4(clinician_client):
    _complete_patient(clinician_client)
    data = {
        **CRS_CALCULATED_GRADE_3,
        "hypotension": "false",
        "crs_hypotension": "none",
        "crs_oxygen": "positive_pressure",
    }
    assert _calculate(clinician_client, data).context["form"].outcomes_by_name["CRS"].grade == 4


def test_toxicities_nasal_cannula_needs_a_flow(clinician_client):
    _complete_patient(clinician_client)
    data = {**CRS_CALCULATED_GRADE_3, "hypotension": "false", "crs_hypotension": "none", "crs_oxygen": "nasal_cannula"}
    assert _errors(_calculate(clinician_client, data)) == {
        "crs_oxygen_flow_l_min": ["Enter the nasal cannula flow in L/min."]
    }


NO_FEVER_ERROR = (
    "Fever is absent: ASTCT CRS needs a fever of 38.0 °C or more unless tocilizumab, antipyretics or steroids "
    "have already been given."
)
BEFORE_TOCILIZUMAB = {**PATIENT, "prior_tocilizumab_doses": "0"}


def test_toxicities_crs_without_fever_before_tocilizumab_or_steroids_cannot_be_calculated(clinician_client):
    _complete_patient(clinician_client, {**BEFORE_TOCILIZUMAB, "prior_steroids": "false"})
    response = _calculate(clinician_client, {**CRS_CALCULATED_GRADE_3, "fever": "false"})
    assert _errors(response) == {"crs_grade": [NO_FEVER_ERROR]}


def test_toxicities_crs_steroids_starting_now_does_not_waive_fever(clinician_client):
    # "Steroids given, or starting now" may mean not given yet: it must not waive fever by itself.
    _complete_patient(clinician_client, {**BEFORE_TOCILIZUMAB, "prior_steroids": "true"})
    response = _calculate(clinician_client, {**CRS_CALCULATED_GRADE_3, "fever": "false"})
    assert _errors(response) == {"crs_grade": [NO_FEVER_ERROR]}


def test_toxicities_crs_fever_not_recorded_says_so(clinician_client):
    _complete_patient(clinician_client, BEFORE_TOCILIZUMAB)
    response = _calculate(clinician_client, {**CRS_CALCULATED_GRADE_3, "fever": ""})
    assert _errors(response) == {"crs_grade": [NO_FEVER_ERROR.replace("absent", "not recorded")]}


def test_toxicities_crs_without_fever_after_antipyretics_or_steroids_ticked_is_graded(clinician_client):
    _complete_patient(clinician_client, {**BEFORE_TOCILIZUMAB, "prior_steroids": "true"})
    data = {**CRS_CALCULATED_GRADE_3, "fever": "false", "crs_antipyretics_or_steroids_given": "on"}
    response = _calculate(clinician_client, data)
    outcome = response.context["form"].outcomes_by_name["CRS"]
    assert (outcome.grade, outcome.notes) == (
        3,
        ("Fever is not required: antipyretics or steroids have already been given.",),
    )
    assert "Fever is not required: antipyretics or steroids have already been given." in response.content.decode()


def test_toxicities_crs_without_fever_after_tocilizumab_is_graded(clinician_client):
    _complete_patient(clinician_client, {**PATIENT, "prior_steroids": "false"})
    response = _calculate(clinician_client, {**CRS_CALCULATED_GRADE_3, "fever": "false"})
    outcome = response.context["form"].outcomes_by_name["CRS"]
    assert (outcome.grade, outcome.notes) == (3, ("Fever is not required: tocilizumab has been given.",))


def test_toxicities_antipyretics_question_asked_only_before_tocilizumab(clinician_client):
    name = 'name="crs_antipyretics_or_steroids_given"'
    _complete_patient(clinician_client, BEFORE_TOCILIZUMAB)
    asked = clinician_client.get("/wizard/toxicities/").content.decode()
    _complete_patient(clinician_client)  # tocilizumab given
    not_asked = clinician_client.get("/wizard/toxicities/").content.decode()
    assert (name in asked, name in not_asked) == (True, False)
    # Once fever is recorded the question no longer applies: the page hides it (data-hide-values).
    assert re.search(r'<div data-reveal-for="fever" data-hide-values="true">.{0,500}' + name, asked, re.S)


def test_toxicities_stale_antipyretics_tick_is_ignored_once_fever_is_present(clinician_client):
    _complete_patient(clinician_client, {**BEFORE_TOCILIZUMAB, "prior_steroids": "false"})
    data = {**CRS_CALCULATED_GRADE_3, "crs_antipyretics_or_steroids_given": "on"}
    assert _calculate(clinician_client, data).context["form"].outcomes_by_name["CRS"].notes == ()


def test_toxicities_crs_hypotension_must_agree_with_hypotension_now(clinician_client):
    _complete_patient(clinician_client)
    response = _calculate(clinician_client, {**CRS_CALCULATED_GRADE_3, "hypotension": "false"})
    assert _errors(response) == {"crs_hypotension": ["“Hypotension now” above says No: correct one of the two."]}


def test_toxicities_calculate_needs_every_finding(clinician_client):
    _complete_patient(clinician_client)
    response = _post(clinician_client, "/wizard/toxicities/", {**CRS_CALCULATED_GRADE_3, "crs_oxygen": ""})
    assert _errors(response) == {"crs_oxygen": ["Choose one to calculate the grade."]}


ICANS_FINDINGS = {
    "crs_grade": "absent",
    "icans_grade": "calculate",
    "icans_consciousness": "not_depressed",
    "icans_seizure": "none",
    "icans_motor": "none",
    "icans_raised_icp": "none",
    "carhlh_grade": "absent",
}


def test_toxicities_icans_at_age_11_takes_the_capd_total(clinician_client):
    _complete_patient(clinician_client, {**PATIENT, "age_years": "11"})
    response = _calculate(clinician_client, {**ICANS_FINDINGS, "icans_capd_total": "9"}, "ICANS")
    outcome = response.context["form"].outcomes_by_name["ICANS"]
    assert (outcome.grade, outcome.result.set_by_text) == (3, "CAPD total 9 (9 or more)")


def test_toxicities_icans_at_age_11_refuses_an_ice_score(clinician_client):
    _complete_patient(clinician_client, {**PATIENT, "age_years": "11"})
    response = _calculate(clinician_client, {**ICANS_FINDINGS, "icans_ice_score": "7"}, "ICANS")
    assert _errors(response) == {
        "icans_ice_score": ["The ICE score is for age 12 and over without developmental delay; enter the CAPD total."]
    }


def test_toxicities_icans_at_age_12_takes_the_ice_score(clinician_client):
    _complete_patient(clinician_client, {**PATIENT, "age_years": "12"})
    response = _calculate(clinician_client, {**ICANS_FINDINGS, "icans_ice_score": "3"}, "ICANS")
    outcome = response.context["form"].outcomes_by_name["ICANS"]
    assert (outcome.grade, outcome.result.set_by_text) == (2, "ICE score 3 (3 to 6)")


def test_toxicities_icans_at_age_12_with_developmental_delay_takes_capd(clinician_client):
    _complete_patient(clinician_client, {**PATIENT, "age_years": "12"})
    data = {**ICANS_FINDINGS, "icans_developmental_delay": "on", "icans_capd_total": "8"}
    assert _calculate(clinician_client, data, "ICANS").context["form"].outcomes_by_name["ICANS"].grade == 1


def test_toxicities_icans_capd_0_alone_is_not_graded(clinician_client):
    _complete_patient(clinician_client, {**PATIENT, "age_years": "8"})
    response = _calculate(clinician_client, {**ICANS_FINDINGS, "icans_capd_total": "0"}, "ICANS")
    assert _errors(response) == {"icans_grade": ["No finding grades ICANS (CAPD total 0 and no other finding)."]}


def test_toxicities_page_says_capd_0_does_not_grade(clinician_client):
    _complete_patient(clinician_client, {**PATIENT, "age_years": "8"})
    page = clinician_client.get("/wizard/toxicities/").content.decode()
    assert "<strong>0 shows no delirium features</strong>, so it does not grade ICANS (like ICE 10)." in page


def test_toxicities_page_cites_lee_2019_from_the_reference_row(clinician_client):
    Reference.objects.filter(key="lee-2019").update(pmid="11111111")  # read from the row, never hard-coded
    _complete_patient(clinician_client)
    html = clinician_client.get("/wizard/toxicities/").content.decode()
    assert (
        '<span class="reference-text">Lee DW, et al. Biol Blood Marrow Transplant. 2019;25(4):625-638.</span> '
        '<a href="https://doi.org/10.1016/j.bbmt.2018.12.758" rel="noopener">doi:10.1016/j.bbmt.2018.12.758</a> '
        '<a href="https://pubmed.ncbi.nlm.nih.gov/11111111/" rel="noopener">PubMed 11111111</a>'
    ) in html


def test_toxicities_page_says_carhlh_severity_is_clinician_entered_not_astct(clinician_client):
    _complete_patient(clinician_client)
    html = clinician_client.get("/wizard/toxicities/").content.decode()
    carhlh = html[html.index('id="carhlh-heading"') : html.index('class="grading-source')]
    assert (
        "It is clinician-identified, with a clinician-entered severity: 1 mild, 2 needs directed therapy, 3 severe, "
        "4 life-threatening." in carhlh,
        "carHLH severity (clinician-entered; not an ASTCT grade)" in carhlh,
        "ASTCT)" in carhlh,
    ) == (True, True, False)


@pytest.mark.parametrize("typed", ["1e1", "+3", "\u0663", "1_0", "0x3"])
def test_toxicities_ice_score_must_be_a_plain_whole_number(clinician_client, typed):
    _complete_patient(clinician_client, {**PATIENT, "age_years": "14"})
    response = _calculate(clinician_client, {**ICANS_FINDINGS, "icans_ice_score": typed}, "ICANS")
    assert _errors(response) == {"icans_ice_score": ["Enter a whole number from 0 to 10."]}
    assert response.context["form"]["icans_ice_score"].value() == typed


@pytest.mark.parametrize("typed", ["1e1", "+9", "\u0669", "9_0"])
def test_toxicities_capd_total_must_be_a_plain_whole_number(clinician_client, typed):
    _complete_patient(clinician_client, {**PATIENT, "age_years": "11"})
    response = _calculate(clinician_client, {**ICANS_FINDINGS, "icans_capd_total": typed}, "ICANS")
    assert _errors(response) == {"icans_capd_total": ["Enter a whole number from 0 to 32."]}


@pytest.mark.parametrize("typed", ["6e0", "+6", "Infinity", "\u0666"])
def test_toxicities_flow_must_be_a_plain_number(clinician_client, typed):
    _complete_patient(clinician_client)
    data = {**CRS_CALCULATED_GRADE_3, "hypotension": "false", "crs_hypotension": "none", "crs_oxygen": "nasal_cannula"}
    response = _calculate(clinician_client, {**data, "crs_oxygen_flow_l_min": typed})
    assert _errors(response) == {"crs_oxygen_flow_l_min": [PLAIN_NUMBER_MESSAGE]}


def test_toxicities_ice_score_out_of_range(clinician_client):
    _complete_patient(clinician_client, {**PATIENT, "age_years": "14"})
    response = _calculate(clinician_client, {**ICANS_FINDINGS, "icans_ice_score": "11"}, "ICANS")
    assert _errors(response) == {"icans_ice_score": ["Enter a value from 0 to 10."]}


def test_toxicities_carhlh_needs_the_late_onset_answer(clinician_client):
    _complete_patient(clinician_client)
    data = {"crs_grade": "absent", "icans_grade": "absent", "carhlh_grade": "3"}
    response = _post(clinician_client, "/wizard/toxicities/", data)
    assert _errors(response) == {"late_onset_isolated": ["Choose an answer for carHLH (Not recorded is an answer)."]}


def test_toxicities_late_onset_question_is_marked_required_and_shown_only_with_carhlh(clinician_client):
    _complete_patient(clinician_client)
    html = clinician_client.get("/wizard/toxicities/").content.decode()
    block = re.search(
        r'<div class="choices-inline" data-reveal-for="carhlh_grade" data-reveal-values="1 2 3 4">(.*?)'
        r"</fieldset>",
        html,
        re.S,
    ).group(1)
    legend = re.search(r"<legend[^>]*>(.*?)</legend>", block, re.S).group(1)
    assert re.sub(r"\s+", " ", legend).strip() == (
        'Late, isolated onset (carHLH arising late, without active CRS)<span class="asteriskField">*</span>'
    )


def test_toxicities_fever_and_hypotension_are_optional_and_sent_as_not_recorded(clinician_client):
    _complete_all(clinician_client, toxicities={"crs_grade": "3", "icans_grade": "absent", "carhlh_grade": "absent"})
    inputs = Assessment.objects.get().inputs
    assert (inputs["fever"], inputs["hypotension"], inputs["toxicities"]) == (None, None, [{"type": "CRS", "grade": 3}])


# --- Enter goes forward; New patient asks first --------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/wizard/toxicities/"])
def test_every_step_makes_next_the_forms_first_submit_button(clinician_client, path):
    """Enter (and a phone keypad's Go) submits a form's first submit button in document order: Next."""
    _complete_patient(clinician_client)
    html = clinician_client.get(path).content.decode()
    buttons = re.findall(r'<button type="submit"([^>]*)>', html)
    for_the_wizard = [b for b in buttons if 'form="wizard-form"' in b or html.index(b) > html.index('id="wizard-form"')]
    assert for_the_wizard[0] == ' form="wizard-form" name="action" value="next" hidden tabindex="-1"'


def test_wizard_step_has_no_one_tap_reset(clinician_client):
    html = clinician_client.get("/").content.decode()
    button = r'<button type="submit" form="wizard-form" name="action" value="new_patient"[^>]*>([^<]*)<'
    new_patient = re.findall(button, html)
    assert (re.findall(r'<form[^>]*action="/wizard/reset/"', html), new_patient) == (
        [],
        ["New patient (clears these answers: asks first)"],
    )


def test_former_steps_lead_to_the_step_that_asks_them_now(clinician_client):
    responses = [clinician_client.get(f"/wizard/{slug}/") for slug in ("treatment", "institution")]
    assert [(r.status_code, r["Location"]) for r in responses] == [(302, "/"), (302, "/")]


def test_answers_kept_by_the_former_four_step_wizard_move_to_the_two_steps(clinician_client):
    session = clinician_client.session
    session["bedside_wizard"] = {
        "answers": {
            "patient": {"weight_kg": "20", "age_years": "8", "fever": "true", "hypotension": "false"},
            "treatment": {"prior_tocilizumab_doses": "1", "prior_steroids": "true"},
            "institution": {"institution": "musc"},
        }
    }
    session.save()
    form = clinician_client.get("/").context["form"]
    assert [form[name].value() for name in ("weight_kg", "prior_tocilizumab_doses", "institution")] == [
        "20",
        "1",
        "musc",
    ]
    assert clinician_client.session["bedside_wizard"]["answers"] == {
        "patient": {
            "weight_kg": "20",
            "age_years": "8",
            "prior_tocilizumab_doses": "1",
            "prior_steroids": "true",
            "institution": "musc",
        },
        "toxicities": {"fever": "true", "hypotension": "false"},
    }


# --- Back and Forward ------------------------------------------------------------------------------


def test_back_keeps_the_answers_of_both_steps_even_unvalidated(clinician_client):
    _complete_patient(clinician_client)
    response = _post(clinician_client, "/wizard/toxicities/", {"crs_grade": "2", "icans_ice_score": "two"}, "back")
    assert response["Location"] == "/"
    patient_form = clinician_client.get("/").context["form"]
    toxicities_form = clinician_client.get("/wizard/toxicities/").context["form"]
    assert (patient_form["weight_kg"].value(), toxicities_form["icans_ice_score"].value()) == ("20", "two")


def test_forward_after_back_keeps_every_later_answer(clinician_client):
    _complete_patient(clinician_client, {**PATIENT, "institution": "musc"})
    _post(clinician_client, "/wizard/toxicities/", {**CRS_CALCULATED_GRADE_3, "crs_grade": "calculate"}, "back")
    assert _post(clinician_client, "/", {**PATIENT, "institution": "musc"})["Location"] == "/wizard/toxicities/"
    toxicities_form = clinician_client.get("/wizard/toxicities/").context["form"]
    assert (toxicities_form["crs_grade"].value(), toxicities_form["crs_hypotension"].value()) == (
        "calculate",
        "one_vasopressor",
    )
    assert clinician_client.get("/").context["form"]["institution"].value() == "musc"


def test_step_link_saves_the_current_step_before_leaving(clinician_client):
    _complete_patient(clinician_client)
    response = clinician_client.post("/wizard/toxicities/", {"crs_grade": "2", "goto": "patient"})
    assert response["Location"] == "/"
    assert clinician_client.get("/wizard/toxicities/").context["form"]["crs_grade"].value() == "2"


def test_later_step_sends_the_user_to_the_first_incomplete_one(clinician_client):
    _post(clinician_client, "/", {**PATIENT, "weight_kg": ""})
    response = clinician_client.get("/wizard/toxicities/")
    assert (response["Location"], _messages(response)) == ("/", ["Complete “Patient and treatment” first."])


def test_answers_posted_to_a_step_that_cannot_be_used_yet_are_kept(clinician_client):
    response = clinician_client.post("/wizard/toxicities/", {"crs_grade": "2", "action": "next"})
    assert response["Location"] == "/"
    _complete_patient(clinician_client)
    assert clinician_client.get("/wizard/toxicities/").context["form"]["crs_grade"].value() == "2"


def test_changing_age_invalidates_a_capd_based_grade(clinician_client):
    _complete_patient(clinician_client)
    _post(clinician_client, "/wizard/toxicities/", {**ICANS_FINDINGS, "icans_capd_total": "9"}, "back")
    _post(clinician_client, "/", {**PATIENT, "age_years": "14"})
    response = _post(clinician_client, "/wizard/toxicities/", {**ICANS_FINDINGS, "icans_capd_total": "9"})
    assert _errors(response) == {
        "icans_capd_total": ["The CAPD total is for age under 12 or developmental delay; enter the ICE score."]
    }


def test_unknown_step_is_404(clinician_client):
    assert clinician_client.get("/wizard/nowhere/").status_code == 404


# --- Center and finishing --------------------------------------------------------------------------


def test_patient_step_offers_every_published_institution(clinician_client):
    form = clinician_client.get("/").context["form"]
    assert [slug for slug, _ in form.fields["institution"].choices] == [
        "chop",
        "cnh",
        "musc",
        "nih",
        "seattle",
        "stjude",
    ]


def test_patient_step_defaults_to_the_users_last_center(clinician, clinician_client):
    InstitutionChoiceFactory(user=clinician, institution=Institution.objects.get(slug="stjude"))
    assert clinician_client.get("/").context["form"]["institution"].value() == "stjude"


def test_finish_stores_a_bedside_assessment_over_every_institution(clinician, clinician_client):
    response = _complete_all(clinician_client)
    assessment = Assessment.objects.get()
    assert response["Location"] == f"/assessments/{assessment.id}/"
    assert (assessment.source, assessment.created_by, assessment.institution_requested) == ("bedside", clinician, "")
    assert [r["institution"]["slug"] for r in assessment.recommendations] == [
        "chop",
        "cnh",
        "musc",
        "nih",
        "seattle",
        "stjude",
    ]
    assert assessment.inputs == {
        "weight_kg": 20,
        "age_years": 8,
        "toxicities": [{"type": "CRS", "grade": 3}],
        "prior_tocilizumab_doses": 1,
        "prior_steroids": True,
        "car_target": "CD19",
        "days_since_infusion": None,
        "fever": True,
        "hypotension": True,
        "late_onset_isolated": None,
        "thrombocytopenia_or_coagulopathy": False,
        "concurrent_tnf_blocker": False,
        "ecoli_protein_hypersensitivity": False,
        "active_infection": False,
        "creatinine_clearance_ml_min": None,
        "institution": "cnh",
    }


def test_finish_records_how_each_grade_was_reached(clinician_client):
    data = {**CRS_CALCULATED_GRADE_3, "carhlh_grade": "2", "late_onset_isolated": "unknown"}
    _complete_all(clinician_client, toxicities=data)
    assert AssessmentGrading.objects.get().toxicities == [
        {
            "type": "CRS",
            "grade": 3,
            "method": "computed",
            "set_by": ["hypotension requiring one vasopressor (with or without vasopressin)"],
            "findings": [
                "fever of 38.0 °C or more: grade 1",
                "hypotension requiring one vasopressor (with or without vasopressin): grade 3",
            ],
            "notes": [],
            # The helper's answers as typed, so "Change answers" can fill the wizard in again.
            "answers": {
                "crs_hypotension": "one_vasopressor",
                "crs_oxygen": "none",
                "crs_antipyretics_or_steroids_given": "",
                "crs_oxygen_flow_l_min": "",
            },
        },
        {"type": "carHLH", "grade": 2, "method": "picked", "set_by": [], "findings": [], "notes": []},
    ]


def test_finish_stores_nihs_trial_regimen_worked_out_for_the_weight(clinician_client):
    data = {"crs_grade": "absent", "icans_grade": "absent", "carhlh_grade": "3", "late_onset_isolated": "false"}
    _complete_patient(clinician_client, {**PATIENT, "weight_kg": "12", "institution": "nih"})
    _post(clinician_client, "/wizard/toxicities/", data)
    assert AssessmentLiterature.objects.get().regimens == [
        {
            "institution": "nih",
            "study_key": "lichtenstein-shah",
            "study_label": "Lichtenstein et al; Shah et al",
            "references": ["Lichtenstein DA, et al. Blood 2021", "Shah NN, et al. J Clin Oncol 2020"],
            "dose_basis": "mg/kg/dose",
            "amount": {"low": Decimal("2.5"), "high": Decimal("4")},
            "interval_hours": 12,
            "routes": ["SC"],
            "weight_kg": Decimal("12"),
            "per_dose_mg": {"low": Decimal("30"), "high": Decimal("48")},
            "per_day_mg": {"low": Decimal("60"), "high": Decimal("96")},
            "doses_per_day": 2,
            "arithmetic": [
                "2.5 to 4 mg/kg/dose x 12 kg = 30 to 48 mg per dose",
                "2 doses a day x 30 to 48 mg = 60 to 96 mg/day",
            ],
        }
    ]


def test_finish_remembers_the_institution_for_next_time(clinician, clinician_client):
    _complete_all(clinician_client, institution="seattle")
    assert InstitutionChoice.objects.get(user=clinician).institution.slug == "seattle"


def test_institution_choice_remember_replaces_an_existing_choice(clinician):
    InstitutionChoiceFactory(user=clinician, institution=Institution.objects.get(slug="stjude"))
    institution_choice_remember(user=clinician, institution_slug="musc")
    assert list(InstitutionChoice.objects.filter(user=clinician).values_list("institution__slug", flat=True)) == [
        "musc"
    ]


def test_institution_choice_remember_writes_in_one_upsert_so_concurrent_finishes_cannot_collide(clinician):
    # A read-then-create lets two finishes both see "no row" and both INSERT: one hits the unique
    # constraint (a 500). A single INSERT ... ON CONFLICT DO UPDATE leaves no gap between read and write.
    with CaptureQueriesContext(connection) as queries:
        institution_choice_remember(user=clinician, institution_slug="cnh")
    writes = [q["sql"] for q in queries.captured_queries if "bedside_institutionchoice" in q["sql"]]
    assert (len(writes), writes[0].startswith("INSERT"), "ON CONFLICT" in writes[0]) == (1, True, True)
    institution_choice_remember(user=clinician, institution_slug="nih")
    assert InstitutionChoice.objects.get(user=clinician).institution.slug == "nih"


def test_finish_sends_the_same_answer_as_the_api(clinician_client, token_client):
    _complete_all(clinician_client)
    wizard_assessment = Assessment.objects.get()
    body = {**wizard_assessment.inputs, "institution": None}
    api_response = token_client.post("/api/v1/recommendations", jsonutil.dumps(body), content_type="application/json")
    assert jsonutil.loads(api_response.content)["recommendations"] == jsonutil.loads(
        jsonutil.dumps(wizard_assessment.recommendations)
    )


def test_finished_answers_stay_for_changes_and_the_page_says_so(clinician_client):
    response = _complete_all(clinician_client)
    page = clinician_client.get("/").content.decode()
    assert f'<a href="{response["Location"]}">your last recommendation</a>' in page


def test_new_patient_clears_every_answer(clinician_client):
    _complete_all(clinician_client)
    response = clinician_client.post("/wizard/reset/")
    assert (response["Location"], clinician_client.get("/").context["form"]["weight_kg"].value()) == ("/", None)


def test_new_patient_get_asks_first_and_clears_nothing(clinician_client):
    _complete_all(clinician_client)
    response = clinician_client.get("/wizard/reset/")
    html = response.content.decode()
    text = _text(html)
    assert response.status_code == 200
    assert "Clear all answers and start a new patient? This clears every answer now in the wizard." in text
    form = r'<form method="post" action="/wizard/reset/"[^>]*>\s*<input type="hidden" name="csrfmiddlewaretoken"'
    assert re.search(form, html)
    assert "Keep my answers" in text
    assert clinician_client.get("/").context["form"]["weight_kg"].value() == "20"


def test_new_patient_saves_what_was_typed_and_keep_my_answers_returns_to_that_step(clinician_client):
    _complete_patient(clinician_client)
    typed = {"fever": "true", "crs_grade": "3", "icans_grade": "2"}  # not sent with Next: New patient tapped
    response = _post(clinician_client, "/wizard/toxicities/", typed, action="new_patient")
    assert response["Location"] == "/wizard/reset/?step=toxicities"
    page = clinician_client.get(response["Location"]).content.decode()
    assert re.findall(r'<a class="btn btn-outline-secondary" href="([^"]*)">([^<]*)</a>', page) == [
        ("/wizard/toxicities/", "Keep my answers")
    ]
    form = clinician_client.get("/wizard/toxicities/").context["form"]
    assert [form[name].value() for name in ("fever", "crs_grade", "icans_grade")] == ["true", "3", "2"]
    assert clinician_client.get("/").context["form"]["weight_kg"].value() == "20"


def test_new_patient_from_an_unfinished_first_step_keeps_what_was_typed(clinician_client):
    response = _post(clinician_client, "/", {"weight_kg": "44 lb", "age_years": "8"}, action="new_patient")
    assert response["Location"] == "/wizard/reset/?step=patient"
    assert "Keep my answers" in _text(clinician_client.get(response["Location"]).content.decode())
    form = clinician_client.get("/").context["form"]
    assert [form[name].value() for name in ("weight_kg", "age_years")] == ["44 lb", "8"]


def test_new_patient_confirmed_after_typing_clears_what_was_typed(clinician_client):
    _post(clinician_client, "/", {"weight_kg": "31"}, action="new_patient")
    assert clinician_client.post("/wizard/reset/")["Location"] == "/"
    assert clinician_client.get("/").context["form"]["weight_kg"].value() is None


def test_new_patient_question_goes_back_to_the_first_step_for_an_unknown_step(clinician_client):
    _complete_patient(clinician_client)
    page = clinician_client.get("/wizard/reset/?step=nowhere").content.decode()
    assert '<a class="btn btn-outline-secondary" href="/">Keep my answers</a>' in page


# --- Change answers: the wizard filled in again from a stored assessment ---------------------------

CRS_AND_ICANS_CALCULATED = {
    "fever": "unknown",
    "hypotension": "false",
    "crs_grade": "calculate",
    "crs_hypotension": "none",
    "crs_oxygen": "nasal_cannula",
    "crs_oxygen_flow_l_min": "7",
    "crs_antipyretics_or_steroids_given": "on",
    "icans_grade": "calculate",
    "icans_ice_score": "",
    "icans_capd_total": "10",
    "icans_consciousness": "awakens_to_voice",
    "icans_seizure": "none",
    "icans_motor": "none",
    "icans_raised_icp": "none",
    "carhlh_grade": "2",
    "late_onset_isolated": "false",
}


def _typed(client: Client) -> dict:
    return client.session["bedside_wizard"]["answers"]


def test_change_answers_fills_the_wizard_again_with_every_answer_after_a_new_patient(clinician_client):
    patient = {**PATIENT, "weight_kg": "20.5", "age_years": "6.25", "prior_tocilizumab_doses": "0"}
    patient |= {"safety_screen": "some", **dict.fromkeys(SAFETY_QUESTIONS, "false"), "active_infection": "true"}
    patient |= {"days_since_infusion": "9", "creatinine_clearance_ml_min": "80.5", "institution": "stjude"}
    _complete_patient(clinician_client, patient)
    finished = _post(clinician_client, "/wizard/toxicities/", CRS_AND_ICANS_CALCULATED)
    assessment = Assessment.objects.get()
    assert finished["Location"] == f"/assessments/{assessment.id}/"
    typed = _typed(clinician_client)
    clinician_client.post("/wizard/reset/", follow=True)
    assert _typed(clinician_client) == {}

    response = clinician_client.post(f"/wizard/from/{assessment.id}/")
    assert response["Location"] == "/wizard/toxicities/"
    assert _typed(clinician_client) == typed
    page = clinician_client.get("/wizard/toxicities/")
    assert [str(m) for m in get_messages(page.wsgi_request)] == [
        "Every answer of this assessment is filled in again: change what you need."
    ]
    assert f'<a href="/assessments/{assessment.id}/">your last recommendation</a>' in page.content.decode()
    # Sent again unchanged, the answers give the same inputs and the same grades, reached the same way.
    again = _post(clinician_client, "/wizard/toxicities/", _typed(clinician_client)["toxicities"])
    second = Assessment.objects.exclude(pk=assessment.pk).get()
    assert again["Location"] == f"/assessments/{second.id}/"
    assert second.inputs == assessment.inputs
    assert second.bedside_grading.toxicities == assessment.bedside_grading.toxicities


def test_change_answers_keeps_the_answers_as_typed_while_the_wizard_holds_them(clinician_client):
    _complete_patient(clinician_client, {**PATIENT, "weight_kg": "20.000"})
    _post(clinician_client, "/wizard/toxicities/", CRS_CALCULATED_GRADE_3)
    assessment = Assessment.objects.get()
    response = clinician_client.post(f"/wizard/from/{assessment.id}/")
    assert (response["Location"], _typed(clinician_client)["patient"]["weight_kg"]) == (
        "/wizard/toxicities/",
        "20.000",
    )


def test_change_answers_asks_before_replacing_another_patients_answers_in_progress(clinician_client):
    _complete_all(clinician_client)
    assessment = Assessment.objects.get()
    clinician_client.post("/wizard/reset/")
    _post(clinician_client, "/", {"weight_kg": "31", "age_years": "4"})
    asked = clinician_client.post(f"/wizard/from/{assessment.id}/")
    assert asked.status_code == 200
    assert "Replace the answers in progress? The wizard holds answers for another patient, not yet finished." in (
        _text(asked.content.decode())
    )
    assert _typed(clinician_client)["patient"]["weight_kg"] == "31"
    replaced = clinician_client.post(f"/wizard/from/{assessment.id}/", {"replace": "yes"})
    assert (replaced["Location"], _typed(clinician_client)["patient"]["weight_kg"]) == ("/wizard/toxicities/", "20")


def test_change_answers_of_an_api_assessment_fills_in_its_grades_as_picked(clinician_client):
    assessment = AssessmentFactory()
    clinician_client.post(f"/wizard/from/{assessment.id}/")
    answers = _typed(clinician_client)
    patient = answers["patient"]
    assert (patient["weight_kg"], patient["safety_screen"], patient["institution"]) == ("20", "none", "")
    assert [answers["toxicities"][name] for name in ("crs_grade", "icans_grade", "carhlh_grade", "fever")] == [
        "3",
        "absent",
        "absent",
        "unknown",
    ]


def test_change_answers_of_a_computed_grade_without_its_findings_asks_for_them_again(clinician_client):
    assessment = AssessmentFactory(source=Assessment.Source.BEDSIDE)
    AssessmentGrading.objects.create(
        assessment=assessment,
        toxicities=[{"type": "CRS", "grade": 3, "method": "computed", "set_by": ["x"], "findings": [], "notes": []}],
    )
    clinician_client.post(f"/wizard/from/{assessment.id}/")
    toxicities = _typed(clinician_client)["toxicities"]
    assert [toxicities[name] for name in ("crs_grade", "crs_hypotension", "crs_oxygen")] == ["calculate", "", ""]


def test_change_answers_is_a_post_and_needs_login(clinician_client, client):
    assessment = AssessmentFactory()
    assert clinician_client.get(f"/wizard/from/{assessment.id}/").status_code == 405
    assert client.post(f"/wizard/from/{assessment.id}/")["Location"] == (
        f"/accounts/login/?next=/wizard/from/{assessment.id}/"
    )


def test_new_patient_get_without_answers_says_there_are_none(clinician_client):
    assert "The wizard has no answers in progress." in _text(clinician_client.get("/wizard/reset/").content.decode())


def test_new_patient_get_requires_login(client, db):
    assert client.get("/wizard/reset/")["Location"] == "/accounts/login/?next=/wizard/reset/"


# --- /start/: the EHR link -------------------------------------------------------------------------


START_QUERY = (
    "weight_kg=20.5&age_years=8&fever=true&hypotension=false&car_target=CD19"
    "&prior_tocilizumab_doses=2&prior_steroids=true&institution=musc"
)


def test_start_get_shows_the_link_values_and_changes_nothing(clinician_client):
    _complete_all(clinician_client)
    response = clinician_client.get("/start/?weight_kg=31&fever=yes&colour=blue&institution=musc")
    text = _text(response.content.decode())
    assert response.status_code == 200
    assert "Weight (kg) 31 weight_kg" in text
    assert "Your center: whose protocol to show first Medical University of South Carolina" in text
    assert "Invalid value, fever: must be true or false" in text
    assert "Unknown parameter colour" in text
    assert "Starting replaces the answers you have in progress in the wizard." in text
    assert (
        'action="/start/?weight_kg=31&amp;fever=yes&amp;colour=blue&amp;institution=musc"' in response.content.decode()
    )
    assert "Start a new patient with these answers" in text
    form = clinician_client.get("/").context["form"]
    assert (form["weight_kg"].value(), form["age_years"].value()) == ("20", "8")  # the answers in progress stay


def test_start_post_without_csrf_token_is_refused(clinician):
    client = Client(enforce_csrf_checks=True)
    client.force_login(clinician)
    assert client.post("/start/?weight_kg=31").status_code == 403


def test_start_post_prefills_answers_and_goes_to_the_first_step(clinician_client):
    response = clinician_client.post(f"/start/?{START_QUERY}")
    assert (response.status_code, response["Location"]) == (302, "/")
    patient_form = clinician_client.get("/").context["form"]
    assert [
        patient_form[f].value()
        for f in ("weight_kg", "age_years", "car_target", "prior_tocilizumab_doses", "prior_steroids", "institution")
    ] == ["20.5", "8", "CD19", "2", "true", "musc"]
    assert clinician_client.session["bedside_wizard"]["answers"]["toxicities"] == {
        "fever": "true",
        "hypotension": "false",
    }
    assert clinician_client.get("/wizard/toxicities/").status_code == 302  # the safety answer is still needed
    assert _messages(response) == [
        "Filled in from the link: weight_kg, age_years, fever, hypotension, car_target, prior_tocilizumab_doses, "
        "prior_steroids, institution. Check every answer."
    ]


def test_start_link_with_an_allergy_still_asks_the_other_safety_questions(clinician_client):
    clinician_client.post("/start/?weight_kg=20&ecoli_protein_hypersensitivity=true")
    data = {name: value for name, value in PATIENT.items() if name != "safety_screen"}
    response = _post(clinician_client, "/", {**data, "ecoli_protein_hypersensitivity": "true"})
    assert _errors(response) == {"safety_screen": ["Choose “No, none of these”, or “Yes” and answer each question."]}


def test_start_ignores_invalid_and_unknown_parameters_with_a_message(clinician_client):
    response = clinician_client.post(
        "/start/?weight_kg=500&fever=yes&toxicities=CRS&institution=nowhere&age_years=9&colour=blue"
    )
    assert response.status_code == 302
    assert _messages(response) == [
        "Filled in from the link: age_years. Check every answer.",
        "Ignored invalid values: weight_kg: Enter a value from 1 to 150 kg.; fever: must be true or false; "
        "institution: no published protocol for 'nowhere'.",
        "Ignored unknown parameters: toxicities, colour.",
    ]
    assert clinician_client.get("/").context["form"]["weight_kg"].value() is None


def test_start_link_numbers_must_be_plain_decimals(clinician_client):
    query = "weight_kg=1e2&age_years=%2B8&prior_tocilizumab_doses=1_0&days_since_infusion=7"
    response = clinician_client.post(f"/start/?{query}")
    assert _messages(response) == [
        "Filled in from the link: days_since_infusion. Check every answer.",
        f"Ignored invalid values: weight_kg: {WEIGHT_NOT_KG}; age_years: {AGE_NOT_YEARS}; "
        "prior_tocilizumab_doses: Enter a whole number of doses.",
    ]


def test_start_link_weight_counts_the_value_not_the_spelling(clinician_client):
    clinician_client.post("/start/?weight_kg=20.0000")
    assert clinician_client.get("/").context["form"]["weight_kg"].value() == "20.0000"


def test_start_post_replaces_answers_from_an_earlier_patient(clinician_client):
    _complete_all(clinician_client)
    clinician_client.post("/start/?weight_kg=31")
    form = clinician_client.get("/").context["form"]
    assert (form["weight_kg"].value(), form["age_years"].value()) == ("31", None)


def test_start_then_finish_uses_the_prefilled_numbers_exactly(clinician_client):
    clinician_client.post("/start/?weight_kg=20.125&age_years=8&prior_tocilizumab_doses=1&prior_steroids=true")
    patient = {**PATIENT, "weight_kg": clinician_client.get("/").context["form"]["weight_kg"].value()}
    _complete_patient(clinician_client, patient)
    _post(clinician_client, "/wizard/toxicities/", CRS_CALCULATED_GRADE_3)
    assert Assessment.objects.get().inputs["weight_kg"] == Decimal("20.125")


def test_weight_with_many_decimals_is_used_to_the_gram(clinician_client):
    # 44 lb = 19.95806428 kg: accepted, kept as typed in the box, used as 19.958 kg (the API's quantization)
    _complete_patient(clinician_client, {**PATIENT, "weight_kg": "19.95806428"})
    assert _post(clinician_client, "/wizard/toxicities/", CRS_CALCULATED_GRADE_3).status_code == 302
    assessment = Assessment.objects.get()
    cnh = next(r for r in assessment.recommendations if r["institution"]["slug"] == "cnh")
    # 2 mg/kg x 19.958 kg = 39.916 mg -> 39.9 mg per dose
    assert (assessment.inputs["weight_kg"], cnh["steps"][0]["per_dose_mg"]) == (
        Decimal("19.958"),
        {"low": Decimal("39.9"), "high": Decimal("39.9")},
    )
    assert clinician_client.get("/").context["form"]["weight_kg"].value() == "19.95806428"
