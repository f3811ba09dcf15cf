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
from bedside.models import AssessmentGrading, InstitutionChoice
from bedside.services import institution_choice_remember
from evidence.models import Reference
from protocols.models import Institution
from tests.factories import AssessmentFactory, InstitutionChoiceFactory

pytestmark = pytest.mark.integration

PATIENT = {
    "weight_kg": "20",
    "age_years": "8",
    "car_target": "CD19",
    "days_since_infusion": "",
    "fever": "true",
    "hypotension": "true",
    "thrombocytopenia_or_coagulopathy": "false",
    "concurrent_tnf_blocker": "false",
    "ecoli_protein_hypersensitivity": "false",
    "active_infection": "false",
    "creatinine_clearance_ml_min": "",
}
PLAIN_NUMBER_MESSAGE = "Enter a number using the digits 0-9 and at most one decimal point (for example 20.5)."
# What Python's Decimal or int would take but no clinician means: exponents, signs, specials, hex, separators,
# non-ASCII digits (Arabic-Indic and full-width twenty, written as escapes).
NOT_PLAIN_NUMBERS = [
    *("1e2", "2E1", "+20", "-20", "NaN", "Infinity", "inf", "0x14", "1_0", "2 0", "20..5", "."),
    *("\u0662\u0660", "\uff12\uff10"),
]
TREATMENT = {"prior_tocilizumab_doses": "1", "prior_steroids": "true"}
CRS_CALCULATED_GRADE_3 = {
    "crs_grade": "calculate",
    "crs_hypotension": "one_vasopressor",
    "crs_oxygen": "none",
    "icans_grade": "absent",
    "carhlh_grade": "absent",
}


def _post(client: Client, url: str, data: dict, action: str = "next"):
    return client.post(url, {**data, "action": action})


def _complete_up_to_toxicities(client: Client, patient: dict | None = None, treatment: dict | None = None) -> None:
    assert _post(client, "/", patient or PATIENT).status_code == 302
    assert _post(client, "/wizard/treatment/", treatment or TREATMENT).status_code == 302


def _complete_all(client: Client, toxicities: dict | None = None, institution: str = "cnh"):
    _complete_up_to_toxicities(client)
    assert _post(client, "/wizard/toxicities/", toxicities or CRS_CALCULATED_GRADE_3).status_code == 302
    return _post(client, "/wizard/institution/", {"institution": institution})


def _errors(response) -> dict[str, list[str]]:
    form = response.context["form"]
    return {name: list(errors) for name, errors in form.errors.items()}


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- Login -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/wizard/treatment/",
        "/wizard/toxicities/",
        "/wizard/institution/",
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


# --- Step 1: patient -------------------------------------------------------------------------------


def test_wizard_home_is_the_patient_step(clinician_client):
    response = clinician_client.get("/")
    assert (response.status_code, response.context["step"].slug) == (200, "patient")


@pytest.mark.parametrize(
    ("field", "typed", "message"),
    [
        ("weight_kg", "151", "Enter a value from 1 to 150 kg."),
        ("weight_kg", "0.5", "Enter a value from 1 to 150 kg."),
        ("weight_kg", "44 lb", PLAIN_NUMBER_MESSAGE),
        # quantized to the gram before the range check, like the API: 150.0005 -> 150.001 kg
        ("weight_kg", "150.0005", "Enter a value from 1 to 150 kg."),
        ("weight_kg", "", "This field is required."),
        ("age_years", "41", "Enter a value from 0 to 40 years."),
        ("days_since_infusion", "400", "Enter a value from 0 to 365 days."),
        ("days_since_infusion", "2.5", "Enter a whole number of days."),
        ("creatinine_clearance_ml_min", "301", "Enter a value from 0 to 300 mL/min."),
        ("ecoli_protein_hypersensitivity", "", "Choose an answer."),
        ("fever", "maybe", "Select a valid choice. maybe is not one of the available choices."),
        ("car_target", "", "Choose the CAR target."),
    ],
)
def test_patient_step_validates_next_to_the_field_and_keeps_what_was_typed(clinician_client, field, typed, message):
    response = _post(clinician_client, "/", {**PATIENT, field: typed})
    assert (response.status_code, _errors(response)) == (200, {field: [message]})
    assert response.context["form"][field].value() == typed


@pytest.mark.parametrize("typed", NOT_PLAIN_NUMBERS)
@pytest.mark.parametrize("field", ["weight_kg", "age_years", "days_since_infusion", "creatinine_clearance_ml_min"])
def test_patient_step_numbers_must_be_plain_decimals_and_stay_as_typed(clinician_client, field, typed):
    response = _post(clinician_client, "/", {**PATIENT, field: typed})
    expected = "Enter a whole number of days." if field == "days_since_infusion" else PLAIN_NUMBER_MESSAGE
    assert (response.status_code, _errors(response)) == (200, {field: [expected]})
    assert response.context["form"][field].value() == typed


def test_patient_step_decimal_comma_gets_its_own_message(clinician_client):
    response = _post(clinician_client, "/", {**PATIENT, "weight_kg": "20,5"})
    assert _errors(response) == {"weight_kg": ["Use a point for decimals, not a comma (for example 20.5)."]}


@pytest.mark.parametrize(
    ("typed", "stored"),
    [(" 20 ", Decimal("20")), ("20.0000", Decimal("20")), ("20.5000", Decimal("20.5")), ("020.125", Decimal("20.125"))],
)
def test_patient_step_weight_counts_the_value_not_the_spelling(clinician_client, typed, stored):
    assert _post(clinician_client, "/", {**PATIENT, "weight_kg": typed}).status_code == 302
    _post(clinician_client, "/wizard/treatment/", TREATMENT)
    _post(clinician_client, "/wizard/toxicities/", CRS_CALCULATED_GRADE_3)
    assert _post(clinician_client, "/wizard/institution/", {"institution": "cnh"}).status_code == 302
    weight = Assessment.objects.get().inputs["weight_kg"]
    assert (weight, str(weight)) == (stored, str(stored))


def test_patient_step_shows_a_typed_weight_back_in_the_text_box(clinician_client):
    response = _post(clinician_client, "/", {**PATIENT, "weight_kg": "44 lb"})
    assert re.search(rb'name="weight_kg" value="44 lb"', response.content) is not None


def test_patient_step_error_summary_links_to_each_field(clinician_client):
    response = _post(clinician_client, "/", {**PATIENT, "weight_kg": "151", "fever": ""})
    summary = re.findall(r'<li><a href="(#[^"]+)">([^<]+)</a>: ([^<]+)</li>', response.content.decode())
    assert summary == [
        ("#id_weight_kg", "Weight (kg)", "Enter a value from 1 to 150 kg."),
        ("#id_fever_0", "Fever of 38.0 °C or more now", "Choose an answer."),
    ]


def test_patient_step_valid_goes_to_prior_treatment(clinician_client):
    response = _post(clinician_client, "/", PATIENT)
    assert (response.status_code, response["Location"]) == (302, "/wizard/treatment/")


# --- Step 2: prior treatment -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        (
            {"prior_tocilizumab_doses": "11", "prior_steroids": "true"},
            {"prior_tocilizumab_doses": ["Enter a value from 0 to 10 doses."]},
        ),
        (
            {"prior_tocilizumab_doses": "1.5", "prior_steroids": "true"},
            {"prior_tocilizumab_doses": ["Enter a whole number of doses."]},
        ),
        ({"prior_tocilizumab_doses": "1"}, {"prior_steroids": ["Choose an answer."]}),
    ],
)
def test_treatment_step_validates_next_to_the_field(clinician_client, data, errors):
    _post(clinician_client, "/", PATIENT)
    response = _post(clinician_client, "/wizard/treatment/", data)
    assert (response.status_code, _errors(response)) == (200, errors)


# --- Step 3: toxicities and grades -----------------------------------------------------------------


def test_toxicities_step_needs_at_least_one_toxicity(clinician_client):
    _complete_up_to_toxicities(clinician_client)
    response = _post(
        clinician_client,
        "/wizard/toxicities/",
        {"crs_grade": "absent", "icans_grade": "absent", "carhlh_grade": "absent"},
    )
    assert _errors(response) == {"__all__": ["Mark at least one toxicity as present, with a grade."]}


def test_toxicities_step_needs_a_choice_for_each_toxicity(clinician_client):
    _complete_up_to_toxicities(clinician_client)
    response = _post(clinician_client, "/wizard/toxicities/", {"crs_grade": "2"})
    assert _errors(response) == {
        "icans_grade": ["Choose a grade, Not present, or Calculate."],
        "carhlh_grade": ["Choose a severity, or Not present."],
    }


def test_toxicities_calculate_shows_the_grade_and_the_finding_that_set_it(clinician_client):
    _complete_up_to_toxicities(clinician_client)
    response = _post(clinician_client, "/wizard/toxicities/", CRS_CALCULATED_GRADE_3, action="calculate")
    assert response.status_code == 200
    assert (
        "<strong>CRS grade 3</strong>, set by: hypotension requiring one vasopressor (with or without vasopressin)."
        in response.content.decode()
    )


def test_toxicities_calculate_exactly_6_l_min_is_crs_grade_2(clinician_client):
    _complete_up_to_toxicities(clinician_client, patient={**PATIENT, "hypotension": "false"})
    data = {
        **CRS_CALCULATED_GRADE_3,
        "crs_hypotension": "none",
        "crs_oxygen": "nasal_cannula",
        "crs_oxygen_flow_l_min": "6",
    }
    response = _post(clinician_client, "/wizard/toxicities/", data, action="calculate")
    outcome = response.context["form"].outcomes_by_name["CRS"]
    assert (outcome.grade, outcome.result.set_by_text) == (2, "low-flow nasal cannula, 6 L/min (6 L/min or less)")


def test_toxicities_calculate_positive_pressure_is_crs_grade_4(clinician_client):
    _complete_up_to_toxicities(clinician_client, patient={**PATIENT, "hypotension": "false"})
    data = {**CRS_CALCULATED_GRADE_3, "crs_hypotension": "none", "crs_oxygen": "positive_pressure"}
    response = _post(clinician_client, "/wizard/toxicities/", data, action="calculate")
    assert response.context["form"].outcomes_by_name["CRS"].grade == 4


def test_toxicities_nasal_cannula_needs_a_flow(clinician_client):
    _complete_up_to_toxicities(clinician_client, patient={**PATIENT, "hypotension": "false"})
    data = {**CRS_CALCULATED_GRADE_3, "crs_hypotension": "none", "crs_oxygen": "nasal_cannula"}
    response = _post(clinician_client, "/wizard/toxicities/", data, action="calculate")
    assert _errors(response) == {"crs_oxygen_flow_l_min": ["Enter the nasal cannula flow in L/min."]}


NO_FEVER_ERROR = (
    "Fever is absent: ASTCT CRS needs a fever of 38.0 °C or more unless tocilizumab, antipyretics or steroids "
    "have already been given."
)


def test_toxicities_crs_without_fever_before_tocilizumab_or_steroids_cannot_be_calculated(clinician_client):
    _complete_up_to_toxicities(
        clinician_client,
        patient={**PATIENT, "fever": "false"},
        treatment={"prior_tocilizumab_doses": "0", "prior_steroids": "false"},
    )
    response = _post(clinician_client, "/wizard/toxicities/", CRS_CALCULATED_GRADE_3, action="calculate")
    assert _errors(response) == {"crs_grade": [NO_FEVER_ERROR]}


def test_toxicities_crs_steroids_starting_now_does_not_waive_fever(clinician_client):
    # "Steroids given, or starting now" may mean not given yet: it must not waive fever by itself.
    _complete_up_to_toxicities(
        clinician_client,
        patient={**PATIENT, "fever": "false"},
        treatment={"prior_tocilizumab_doses": "0", "prior_steroids": "true"},
    )
    response = _post(clinician_client, "/wizard/toxicities/", CRS_CALCULATED_GRADE_3, action="calculate")
    assert _errors(response) == {"crs_grade": [NO_FEVER_ERROR]}


def test_toxicities_crs_without_fever_after_antipyretics_or_steroids_ticked_is_graded(clinician_client):
    _complete_up_to_toxicities(
        clinician_client,
        patient={**PATIENT, "fever": "false"},
        treatment={"prior_tocilizumab_doses": "0", "prior_steroids": "true"},
    )
    data = {**CRS_CALCULATED_GRADE_3, "crs_antipyretics_or_steroids_given": "on"}
    response = _post(clinician_client, "/wizard/toxicities/", data, action="calculate")
    outcome = response.context["form"].outcomes_by_name["CRS"]
    assert (outcome.grade, outcome.notes) == (
        3,
        ("Fever is not required: antipyretics or steroids have already been given.",),
    )
    assert "Fever is not required: antipyretics or steroids have already been given." in response.content.decode()


def test_toxicities_crs_without_fever_after_tocilizumab_is_graded(clinician_client):
    _complete_up_to_toxicities(
        clinician_client,
        patient={**PATIENT, "fever": "false"},
        treatment={"prior_tocilizumab_doses": "1", "prior_steroids": "false"},
    )
    response = _post(clinician_client, "/wizard/toxicities/", CRS_CALCULATED_GRADE_3, action="calculate")
    outcome = response.context["form"].outcomes_by_name["CRS"]
    assert (outcome.grade, outcome.notes) == (3, ("Fever is not required: tocilizumab has been given.",))


def test_toxicities_antipyretics_question_shown_only_without_fever_before_tocilizumab(clinician_client):
    name = 'name="crs_antipyretics_or_steroids_given"'
    _complete_up_to_toxicities(
        clinician_client,
        patient={**PATIENT, "fever": "false"},
        treatment={"prior_tocilizumab_doses": "0", "prior_steroids": "true"},
    )
    asked = clinician_client.get("/wizard/toxicities/").content.decode()
    _complete_up_to_toxicities(clinician_client)  # fever now, tocilizumab given
    not_asked = clinician_client.get("/wizard/toxicities/").content.decode()
    assert (name in asked, name in not_asked) == (True, False)


def test_toxicities_stale_antipyretics_tick_is_ignored_once_fever_is_present(clinician_client):
    _complete_up_to_toxicities(clinician_client, treatment={"prior_tocilizumab_doses": "0", "prior_steroids": "false"})
    data = {**CRS_CALCULATED_GRADE_3, "crs_antipyretics_or_steroids_given": "on"}
    response = _post(clinician_client, "/wizard/toxicities/", data, action="calculate")
    assert response.context["form"].outcomes_by_name["CRS"].notes == ()


def test_toxicities_crs_hypotension_must_agree_with_the_patient_step(clinician_client):
    _complete_up_to_toxicities(clinician_client, patient={**PATIENT, "hypotension": "false"})
    response = _post(clinician_client, "/wizard/toxicities/", CRS_CALCULATED_GRADE_3, action="calculate")
    assert _errors(response) == {
        "crs_hypotension": ["The Patient step says no hypotension now: correct one of the two."]
    }


def test_toxicities_calculate_needs_every_finding(clinician_client):
    _complete_up_to_toxicities(clinician_client)
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
    _complete_up_to_toxicities(clinician_client, patient={**PATIENT, "age_years": "11"})
    response = _post(clinician_client, "/wizard/toxicities/", {**ICANS_FINDINGS, "icans_capd_total": "9"}, "calculate")
    outcome = response.context["form"].outcomes_by_name["ICANS"]
    assert (outcome.grade, outcome.result.set_by_text) == (3, "CAPD total 9 (9 or more)")


def test_toxicities_icans_at_age_11_refuses_an_ice_score(clinician_client):
    _complete_up_to_toxicities(clinician_client, patient={**PATIENT, "age_years": "11"})
    response = _post(clinician_client, "/wizard/toxicities/", {**ICANS_FINDINGS, "icans_ice_score": "7"}, "calculate")
    assert _errors(response) == {
        "icans_ice_score": ["The ICE score is for age 12 and over without developmental delay; enter the CAPD total."]
    }


def test_toxicities_icans_at_age_12_takes_the_ice_score(clinician_client):
    _complete_up_to_toxicities(clinician_client, patient={**PATIENT, "age_years": "12"})
    response = _post(clinician_client, "/wizard/toxicities/", {**ICANS_FINDINGS, "icans_ice_score": "3"}, "calculate")
    outcome = response.context["form"].outcomes_by_name["ICANS"]
    assert (outcome.grade, outcome.result.set_by_text) == (2, "ICE score 3 (3 to 6)")


def test_toxicities_icans_at_age_12_with_developmental_delay_takes_capd(clinician_client):
    _complete_up_to_toxicities(clinician_client, patient={**PATIENT, "age_years": "12"})
    data = {**ICANS_FINDINGS, "icans_developmental_delay": "on", "icans_capd_total": "8"}
    response = _post(clinician_client, "/wizard/toxicities/", data, "calculate")
    assert response.context["form"].outcomes_by_name["ICANS"].grade == 1


def test_toxicities_icans_capd_0_alone_is_not_graded(clinician_client):
    _complete_up_to_toxicities(clinician_client, patient={**PATIENT, "age_years": "8"})
    response = _post(clinician_client, "/wizard/toxicities/", {**ICANS_FINDINGS, "icans_capd_total": "0"}, "calculate")
    assert _errors(response) == {"icans_grade": ["No finding grades ICANS (CAPD total 0 and no other finding)."]}


def test_toxicities_page_says_capd_0_does_not_grade(clinician_client):
    _complete_up_to_toxicities(clinician_client, patient={**PATIENT, "age_years": "8"})
    page = clinician_client.get("/wizard/toxicities/").content.decode()
    assert "<strong>0 shows no delirium features</strong>, so it does not grade ICANS (like ICE 10)." in page


def test_toxicities_page_cites_lee_2019_from_the_reference_row(clinician_client):
    Reference.objects.filter(key="lee-2019").update(pmid="11111111")  # read from the row, never hard-coded
    _complete_up_to_toxicities(clinician_client)
    html = clinician_client.get("/wizard/toxicities/").content.decode()
    assert (
        '<span class="reference-text">Lee DW, et al. Biol Blood Marrow Transplant. 2019;25(4):625-638.</span> '
        '<a href="https://doi.org/10.1016/j.bbmt.2018.12.758" rel="noopener">doi:10.1016/j.bbmt.2018.12.758</a> '
        '<a href="https://pubmed.ncbi.nlm.nih.gov/11111111/" rel="noopener">PubMed 11111111</a>'
    ) in html


def test_toxicities_page_says_carhlh_severity_is_clinician_entered_not_astct(clinician_client):
    _complete_up_to_toxicities(clinician_client)
    html = clinician_client.get("/wizard/toxicities/").content.decode()
    carhlh = html[html.index('id="carhlh-legend"') :]
    assert (
        "It is clinician-identified, with a clinician-entered severity: 1 mild, 2 needs directed therapy, 3 severe, "
        "4 life-threatening." in carhlh,
        "carHLH severity (clinician-entered; not an ASTCT grade)" in carhlh,
        "ASTCT)" in carhlh,
    ) == (True, True, False)


@pytest.mark.parametrize("typed", ["1e1", "+3", "\u0663", "1_0", "0x3"])
def test_toxicities_ice_score_must_be_a_plain_whole_number(clinician_client, typed):
    _complete_up_to_toxicities(clinician_client, patient={**PATIENT, "age_years": "14"})
    response = _post(clinician_client, "/wizard/toxicities/", {**ICANS_FINDINGS, "icans_ice_score": typed}, "calculate")
    assert _errors(response) == {"icans_ice_score": ["Enter a whole number from 0 to 10."]}
    assert response.context["form"]["icans_ice_score"].value() == typed


@pytest.mark.parametrize("typed", ["1e1", "+9", "\u0669", "9_0"])
def test_toxicities_capd_total_must_be_a_plain_whole_number(clinician_client, typed):
    _complete_up_to_toxicities(clinician_client, patient={**PATIENT, "age_years": "11"})
    data = {**ICANS_FINDINGS, "icans_capd_total": typed}
    response = _post(clinician_client, "/wizard/toxicities/", data, "calculate")
    assert _errors(response) == {"icans_capd_total": ["Enter a whole number from 0 to 32."]}


@pytest.mark.parametrize("typed", ["6e0", "+6", "Infinity", "\u0666"])
def test_toxicities_flow_must_be_a_plain_number(clinician_client, typed):
    _complete_up_to_toxicities(clinician_client, patient={**PATIENT, "hypotension": "false"})
    data = {**CRS_CALCULATED_GRADE_3, "crs_hypotension": "none", "crs_oxygen": "nasal_cannula"}
    response = _post(clinician_client, "/wizard/toxicities/", {**data, "crs_oxygen_flow_l_min": typed}, "calculate")
    assert _errors(response) == {"crs_oxygen_flow_l_min": [PLAIN_NUMBER_MESSAGE]}


def test_toxicities_ice_score_out_of_range(clinician_client):
    _complete_up_to_toxicities(clinician_client, patient={**PATIENT, "age_years": "14"})
    response = _post(clinician_client, "/wizard/toxicities/", {**ICANS_FINDINGS, "icans_ice_score": "11"}, "calculate")
    assert _errors(response) == {"icans_ice_score": ["Enter a value from 0 to 10."]}


def test_toxicities_carhlh_needs_the_late_onset_answer(clinician_client):
    _complete_up_to_toxicities(clinician_client)
    data = {"crs_grade": "absent", "icans_grade": "absent", "carhlh_grade": "3"}
    response = _post(clinician_client, "/wizard/toxicities/", data)
    assert _errors(response) == {"late_onset_isolated": ["Choose an answer for carHLH (Not recorded is an answer)."]}


# --- Back and Forward ------------------------------------------------------------------------------


def test_back_keeps_the_answers_of_both_steps_even_unvalidated(clinician_client):
    _post(clinician_client, "/", PATIENT)
    response = _post(clinician_client, "/wizard/treatment/", {"prior_tocilizumab_doses": "two"}, action="back")
    assert response["Location"] == "/"
    patient_form = clinician_client.get("/").context["form"]
    treatment_form = clinician_client.get("/wizard/treatment/").context["form"]
    assert (patient_form["weight_kg"].value(), treatment_form["prior_tocilizumab_doses"].value()) == ("20", "two")


def test_forward_after_back_keeps_every_later_answer(clinician_client):
    _complete_up_to_toxicities(clinician_client)
    _post(clinician_client, "/wizard/toxicities/", CRS_CALCULATED_GRADE_3)
    _post(clinician_client, "/wizard/institution/", {"institution": "musc"}, action="back")
    _post(clinician_client, "/wizard/toxicities/", CRS_CALCULATED_GRADE_3, action="back")
    _post(clinician_client, "/wizard/treatment/", TREATMENT, action="back")
    # Forward again through every step with Next.
    assert _post(clinician_client, "/", PATIENT)["Location"] == "/wizard/treatment/"
    assert clinician_client.get("/wizard/treatment/").context["form"]["prior_tocilizumab_doses"].value() == "1"
    assert _post(clinician_client, "/wizard/treatment/", TREATMENT)["Location"] == "/wizard/toxicities/"
    toxicities_form = clinician_client.get("/wizard/toxicities/").context["form"]
    assert (toxicities_form["crs_grade"].value(), toxicities_form["crs_hypotension"].value()) == (
        "calculate",
        "one_vasopressor",
    )
    assert _post(clinician_client, "/wizard/toxicities/", CRS_CALCULATED_GRADE_3)["Location"] == "/wizard/institution/"
    assert clinician_client.get("/wizard/institution/").context["form"]["institution"].value() == "musc"


def test_step_link_saves_the_current_step_before_leaving(clinician_client):
    _complete_up_to_toxicities(clinician_client)
    response = clinician_client.post("/wizard/toxicities/", {"crs_grade": "2", "goto": "patient"})
    assert response["Location"] == "/"
    assert clinician_client.get("/wizard/toxicities/").context["form"]["crs_grade"].value() == "2"


def test_later_step_sends_the_user_to_the_first_incomplete_one(clinician_client):
    _post(clinician_client, "/", PATIENT)
    response = clinician_client.get("/wizard/institution/")
    assert (response["Location"], _messages(response)) == ("/wizard/treatment/", ["Complete “Prior treatment” first."])


def test_answers_posted_to_a_step_that_cannot_be_used_yet_are_kept(clinician_client):
    response = clinician_client.post("/wizard/toxicities/", {"crs_grade": "2", "action": "next"})
    assert response["Location"] == "/"
    _complete_up_to_toxicities(clinician_client)
    assert clinician_client.get("/wizard/toxicities/").context["form"]["crs_grade"].value() == "2"


def test_changing_age_invalidates_a_capd_based_grade(clinician_client):
    _complete_up_to_toxicities(clinician_client)
    _post(clinician_client, "/wizard/toxicities/", {**ICANS_FINDINGS, "icans_capd_total": "9"})
    _post(clinician_client, "/", {**PATIENT, "age_years": "14"})
    response = clinician_client.get("/wizard/institution/")
    assert response["Location"] == "/wizard/toxicities/"


def test_unknown_step_is_404(clinician_client):
    assert clinician_client.get("/wizard/nowhere/").status_code == 404


# --- Institution and finishing ---------------------------------------------------------------------


def test_institution_step_offers_every_published_institution(clinician_client):
    _complete_up_to_toxicities(clinician_client)
    _post(clinician_client, "/wizard/toxicities/", CRS_CALCULATED_GRADE_3)
    form = clinician_client.get("/wizard/institution/").context["form"]
    assert [slug for slug, _ in form.fields["institution"].choices] == [
        "chop",
        "cnh",
        "musc",
        "nih",
        "seattle",
        "stjude",
    ]


def test_institution_step_defaults_to_the_users_last_choice(clinician, clinician_client):
    InstitutionChoiceFactory(user=clinician, institution=Institution.objects.get(slug="stjude"))
    _complete_up_to_toxicities(clinician_client)
    _post(clinician_client, "/wizard/toxicities/", CRS_CALCULATED_GRADE_3)
    assert clinician_client.get("/wizard/institution/").context["form"]["institution"].value() == "stjude"


def test_institution_step_requires_a_known_institution(clinician_client):
    _complete_up_to_toxicities(clinician_client)
    _post(clinician_client, "/wizard/toxicities/", CRS_CALCULATED_GRADE_3)
    response = _post(clinician_client, "/wizard/institution/", {"institution": "nowhere"})
    assert _errors(response) == {"institution": ["Choose one of the listed institutions."]}


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
        },
        {"type": "carHLH", "grade": 2, "method": "picked", "set_by": [], "findings": [], "notes": []},
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
    assert f'<a href="{response["Location"]}">your last assessment</a>' in page


def test_new_patient_clears_every_answer(clinician_client):
    _complete_all(clinician_client)
    response = clinician_client.post("/wizard/reset/")
    assert (response["Location"], clinician_client.get("/").context["form"]["weight_kg"].value()) == ("/", None)


def test_new_patient_get_asks_first_and_clears_nothing(clinician_client):
    _complete_all(clinician_client)
    response = clinician_client.get("/wizard/reset/")
    html = response.content.decode()
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    assert response.status_code == 200
    assert "Clear all answers and start a new patient? This clears every answer now in the wizard." in text
    form = r'<form method="post" action="/wizard/reset/"[^>]*>\s*<input type="hidden" name="csrfmiddlewaretoken"'
    assert re.search(form, html)
    assert "Keep my answers" in text
    assert clinician_client.get("/").context["form"]["weight_kg"].value() == "20"


def test_new_patient_get_without_answers_says_there_are_none(clinician_client):
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", clinician_client.get("/wizard/reset/").content.decode()))
    assert "The wizard has no answers in progress." in text


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
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))
    assert response.status_code == 200
    assert "Weight (kg) 31 weight_kg" in text
    assert "Institution whose protocol to show first Medical University of South Carolina" in text
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
    assert [patient_form[f].value() for f in ("weight_kg", "age_years", "fever", "hypotension", "car_target")] == [
        "20.5",
        "8",
        "true",
        "false",
        "CD19",
    ]
    assert clinician_client.get("/wizard/treatment/").status_code == 302  # patient step still needs safety answers
    assert _messages(response) == [
        "Filled in from the link: weight_kg, age_years, fever, hypotension, car_target, prior_tocilizumab_doses, "
        "prior_steroids, institution. Check every answer."
    ]


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
        f"Ignored invalid values: weight_kg: {PLAIN_NUMBER_MESSAGE}; age_years: {PLAIN_NUMBER_MESSAGE}; "
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
    query = "&".join(f"{k}={v}" for k, v in {**PATIENT, "weight_kg": "20.125"}.items() if v)
    clinician_client.post(f"/start/?{query}&prior_tocilizumab_doses=1&prior_steroids=true")
    patient = {**PATIENT, "weight_kg": clinician_client.get("/").context["form"]["weight_kg"].value()}
    _post(clinician_client, "/", patient)
    _post(clinician_client, "/wizard/treatment/", TREATMENT)
    _post(clinician_client, "/wizard/toxicities/", CRS_CALCULATED_GRADE_3)
    _post(clinician_client, "/wizard/institution/", {"institution": "cnh"})
    assert Assessment.objects.get().inputs["weight_kg"] == Decimal("20.125")


def test_weight_with_many_decimals_is_used_to_the_gram(clinician_client):
    # 44 lb = 19.95806428 kg: accepted, kept as typed in the box, used as 19.958 kg (the API's quantization)
    _complete_up_to_toxicities(clinician_client, patient={**PATIENT, "weight_kg": "19.95806428"})
    assert _post(clinician_client, "/wizard/toxicities/", CRS_CALCULATED_GRADE_3).status_code == 302
    _post(clinician_client, "/wizard/institution/", {"institution": "cnh"})
    assessment = Assessment.objects.get()
    cnh = next(r for r in assessment.recommendations if r["institution"]["slug"] == "cnh")
    # 2 mg/kg x 19.958 kg = 39.916 mg -> 39.9 mg per dose
    assert (assessment.inputs["weight_kg"], cnh["steps"][0]["per_dose_mg"]) == (
        Decimal("19.958"),
        {"low": Decimal("39.9"), "high": Decimal("39.9")},
    )
    assert clinician_client.get("/").context["form"]["weight_kg"].value() == "19.95806428"
