"""Reading what the EHR sends: weight, age, allergies, drafted anakinra orders. Nothing is guessed."""

from datetime import date
from decimal import Decimal

import pytest

from cds_hooks.fhir_client import page_url_on_server
from cds_hooks.fhir_read import (
    AllergyFindings,
    SearchPage,
    age_years,
    anakinra_allergies,
    anakinra_drafts,
    body_weight,
    draft_reading,
    resources_in,
    search_page,
)
from engine.vocabulary import Route
from tests.ehr_support import SC, allergy_bundle, anakinra_draft, dose_rate, other_draft, weight_bundle

pytestmark = pytest.mark.unit


def _observation(value, *, when, status="final", code="kg"):
    return weight_bundle(value, code=code, when=when)["entry"][0]["resource"] | {"status": status}


def test_body_weight_uses_the_latest_result_in_kg():
    resources = [
        _observation(Decimal("18.5"), when="2026-10-01"),
        _observation(Decimal("20.25"), when="2026-11-20T08:00:00+01:00"),
        _observation(Decimal("30"), when="2026-11-21", status="entered-in-error"),
    ]

    weight = body_weight(resources)

    assert (weight.kg, weight.effective, weight.problem) == (Decimal("20.25"), "2026-11-20T08:00:00+01:00", "")


def test_body_weight_is_taken_to_the_gram():
    assert body_weight(resources_in(weight_bundle(Decimal("20.12351")))).kg == Decimal("20.124")


def test_body_weight_in_pounds_is_converted_exactly_to_the_gram():
    weight = body_weight(resources_in(weight_bundle(Decimal("44.092"), code="[lb_av]")))

    # 44.092 x 0.45359237 = 19.99979477804 kg
    assert (weight.kg, weight.stated, weight.problem) == (Decimal("20.000"), "44.092 [lb_av]", "")
    assert weight.conversion == (
        "recorded as 44.092 [lb_av], converted exactly (1 [lb_av] = 0.45359237 kg) and taken to the gram"
    )


def test_body_weight_in_grams_is_converted_to_kg():
    weight = body_weight(resources_in(weight_bundle(Decimal("20000"), code="g")))

    assert (weight.kg, weight.stated) == (Decimal("20.000"), "20000 g")


def test_body_weight_in_kg_states_no_conversion():
    weight = body_weight(resources_in(weight_bundle(Decimal("20"))))

    assert (weight.kg, weight.stated, weight.conversion) == (Decimal("20.000"), "", "")


def test_body_weight_in_another_unit_is_not_converted():
    weight = body_weight(resources_in(weight_bundle(Decimal("705"), code="[oz_av]")))

    assert weight.kg is None
    assert weight.problem == (
        "The latest body weight is not in a UCUM body-weight unit (kg, g, [lb_av]; unit: [oz_av])."
    )


def test_body_weight_latest_in_another_unit_hides_an_older_kg_value():
    resources = [
        _observation(Decimal("20"), when="2026-01-01"),
        _observation(Decimal("705"), when="2026-11-01", code="[oz_av]"),
    ]

    assert body_weight(resources).kg is None


def test_body_weight_missing_says_so():
    weight = body_weight([])

    assert (weight.kg, weight.problem) == (None, "No body weight (LOINC 29463-7) is recorded.")


def test_body_weight_other_loinc_code_is_not_a_weight():
    observation = _observation(Decimal("20"), when="2026-11-01")
    observation["code"]["coding"][0]["code"] = "8302-2"

    assert body_weight([observation]).kg is None


def test_age_years_counts_completed_years_from_a_full_birth_date():
    patient = {"resourceType": "Patient", "birthDate": "2018-11-24"}

    assert age_years(patient, today=date(2026, 11, 23)) == 7
    assert age_years(patient, today=date(2026, 11, 24)) == 8
    assert age_years({"resourceType": "Patient", "birthDate": "2018"}, today=date(2026, 11, 23)) is None
    assert age_years(None, today=date(2026, 11, 23)) is None
    bundle = {"resourceType": "Bundle", "entry": [{"resource": patient}]}
    assert age_years(bundle, today=date(2026, 11, 24)) == 8


def test_anakinra_allergies_by_name_and_not_refuted_or_resolved():
    bundle = allergy_bundle("Kineret (anakinra)", "penicillin", "anakinra", "Anakinra")
    entries = bundle["entry"]
    entries[2]["resource"]["verificationStatus"] = {"coding": [{"code": "refuted"}]}
    entries[3]["resource"]["clinicalStatus"] = {"coding": [{"code": "resolved"}]}

    assert anakinra_allergies(resources_in(bundle)) == AllergyFindings(
        recorded=["Kineret (anakinra)"], unidentified=0, others=("penicillin",)
    )


def test_anakinra_drafts_selected_only_for_order_select():
    first, second = anakinra_draft(draft_id="a1"), anakinra_draft(draft_id="a2")
    bundle = {"resourceType": "Bundle", "entry": [{"resource": r} for r in (first, other_draft(), second)]}

    assert [r["id"] for r in anakinra_drafts(bundle, ["MedicationRequest/a2"])] == ["a2"]
    assert [r["id"] for r in anakinra_drafts(bundle, None)] == ["a1", "a2"]


def test_anakinra_draft_recognised_through_a_contained_medication():
    draft = anakinra_draft()
    del draft["medicationCodeableConcept"]
    draft["medicationReference"] = {"reference": "#med"}
    draft["contained"] = [{"resourceType": "Medication", "id": "med", "code": {"coding": [{"display": "KINERET"}]}}]
    bundle = {"resourceType": "Bundle", "entry": [{"resource": draft}]}

    assert len(anakinra_drafts(bundle, None)) == 1


def test_draft_reading_mg_iv_every_6_hours():
    reading = draft_reading(anakinra_draft(Decimal("40")), weight_kg=Decimal("20"))

    assert (reading.dose.per_dose_mg, reading.dose.doses_per_day, reading.dose.route) == (
        Decimal("40"),
        Decimal("4"),
        Route.IV,
    )
    assert reading.description == "anakinra 40 mg IV every 6 hours"


def test_draft_reading_mg_per_kg_needs_the_weight():
    draft = anakinra_draft(Decimal("4"), unit="mg/kg", route=SC, every_hours=12)

    with_weight = draft_reading(draft, weight_kg=Decimal("20"))
    without_weight = draft_reading(draft, weight_kg=None)

    assert (with_weight.dose.per_dose_mg, with_weight.dose.doses_per_day) == (Decimal("80"), Decimal("2"))
    assert without_weight.dose.per_dose_mg is None
    assert without_weight.description == "anakinra dose not readable, subcut, every 12 hours"


def test_draft_reading_unknown_units_route_and_timing_are_not_read():
    draft = anakinra_draft(Decimal("1"), unit="mL", route={"system": "http://snomed.info/sct", "code": "26643006"})
    draft["dosageInstruction"][0]["timing"]["repeat"]["periodUnit"] = "wk"

    reading = draft_reading(draft, weight_kg=Decimal("20"))

    assert (reading.dose.per_dose_mg, reading.dose.doses_per_day, reading.dose.route) == (None, None, None)
    assert reading.description == "anakinra dose not readable, route not readable, frequency not readable"


def test_draft_reading_mg_dose_is_the_dose_whatever_the_mg_per_kg_beside_it():
    # The review case: ordered 2 mg/kg listed first, calculated 400 mg; read as 400 mg, not 40 mg.
    draft = anakinra_draft(
        dose_and_rate=[dose_rate(Decimal("2"), "mg/kg", "ordered"), dose_rate(400, "mg", "calculated")]
    )

    reading = draft_reading(draft, weight_kg=Decimal("20"))

    assert (reading.dose.per_dose_mg, reading.dose.mg_per_kg, reading.dose.unread) == (Decimal("400"), Decimal("2"), ())
    assert reading.description == "anakinra 400 mg (and 2 mg/kg) IV every 6 hours"


def test_draft_reading_untyped_mg_dose_beside_mg_per_kg_is_the_dose():
    draft = anakinra_draft(dose_and_rate=[dose_rate(Decimal("2"), "mg/kg"), dose_rate(100, "mg")])

    reading = draft_reading(draft, weight_kg=Decimal("60"))

    assert (reading.dose.per_dose_mg, reading.dose.mg_per_kg) == (Decimal("100"), Decimal("2"))


def test_draft_reading_mg_per_kg_alone_is_multiplied_by_the_weight():
    draft = anakinra_draft(dose_and_rate=[dose_rate(Decimal("2"), "mg/kg", "ordered")])

    reading = draft_reading(draft, weight_kg=Decimal("20"))

    assert (reading.dose.per_dose_mg, reading.dose.mg_per_kg) == (Decimal("40"), None)
    assert reading.description == "anakinra 40 mg (2 mg/kg) IV every 6 hours"


def test_draft_reading_mg_doses_that_disagree_are_not_chosen_between():
    draft = anakinra_draft(dose_and_rate=[dose_rate(40, "mg", "ordered"), dose_rate(400, "mg", "calculated")])

    reading = draft_reading(draft, weight_kg=Decimal("20"))

    assert reading.dose.per_dose_mg is None
    assert reading.dose.unread == (
        "The draft states different mg doses (400 mg, 40 mg): which one is meant is not guessed.",
    )


def test_draft_reading_mg_doses_within_0_1_mg_agree_and_the_calculated_one_is_taken():
    draft = anakinra_draft(
        dose_and_rate=[dose_rate(Decimal("50.3"), "mg"), dose_rate(Decimal("50.31"), "mg", "calculated")]
    )

    reading = draft_reading(draft, weight_kg=Decimal("20"))

    assert (reading.dose.per_dose_mg, reading.dose.unread) == (Decimal("50.31"), ())


def test_draft_reading_timing_code_without_repeat_is_not_read_but_shown():
    draft = anakinra_draft(every_hours=None)
    draft["dosageInstruction"][0]["timing"] = {"code": {"text": "Q1H"}}

    reading = draft_reading(draft, weight_kg=Decimal("60"))

    assert (reading.dose.per_dose_mg, reading.dose.doses_per_day) == (Decimal("100"), None)
    assert reading.description == "anakinra 100 mg, IV, frequency not readable (timing: Q1H)"


def test_draft_reading_as_needed_schedule_is_a_most_often():
    draft = anakinra_draft(Decimal("40"))
    draft["dosageInstruction"][0]["asNeededBoolean"] = True

    reading = draft_reading(draft, weight_kg=Decimal("20"))

    assert (reading.dose.doses_per_day, reading.dose.interval_is_maximum) == (Decimal("4"), True)
    assert reading.description == "anakinra 40 mg IV up to every 6 hours (as needed)"


def test_draft_reading_several_dosage_instructions_says_the_others_were_not_matched():
    draft = anakinra_draft(Decimal("40"))
    draft["dosageInstruction"].append(anakinra_draft(Decimal("20"))["dosageInstruction"][0])

    reading = draft_reading(draft, weight_kg=Decimal("20"))

    assert reading.dose.unread == (
        "The draft has 2 dosage instructions: only the first was matched; the others were checked only "
        "against the protocol's maximum.",
    )
    assert (reading.dose.highest_per_dose_mg, reading.dose.highest_per_day_mg) == (Decimal("40"), Decimal("160"))
    assert reading.description == "anakinra 40 mg IV every 6 hours (first of 2 dosage instructions)"


@pytest.mark.parametrize(
    ("dose", "period", "expected"),
    [
        (Decimal("1E+120"), 6, (None, Decimal("4"))),
        (Decimal("40"), Decimal("1E-30"), (Decimal("40"), None)),
        (Decimal("40"), Decimal("1E+30"), (Decimal("40"), None)),
    ],
)
def test_draft_reading_numbers_too_large_or_small_to_be_a_dose_or_schedule_are_not_read(dose, period, expected):
    draft = anakinra_draft(dose)
    draft["dosageInstruction"][0]["timing"]["repeat"]["period"] = period

    reading = draft_reading(draft, weight_kg=Decimal("20"))

    assert (reading.dose.per_dose_mg, reading.dose.doses_per_day) == expected


def test_body_weight_of_an_unusable_size_is_not_read():
    weight = body_weight(resources_in(weight_bundle(Decimal("1E+40"))))

    assert (weight.kg, weight.problem) == (None, "The latest body weight's value is not a usable number.")


@pytest.mark.parametrize(
    ("value", "unit", "expected_mg"),
    [
        (Decimal("0.04"), "g", Decimal("40")),
        (Decimal("40000"), "ug", Decimal("40")),
        (Decimal("40"), "mg", Decimal("40")),
    ],
)
def test_draft_reading_mass_units_are_converted_to_mg_exactly(value, unit, expected_mg):
    reading = draft_reading(anakinra_draft(value, unit=unit), weight_kg=Decimal("20"))

    assert reading.dose.per_dose_mg == expected_mg
    assert reading.dose.unread == ()


def test_draft_reading_second_dosage_and_range_high_count_for_the_highest_dose():
    draft = anakinra_draft(Decimal("40"))
    extra = anakinra_draft(Decimal("2"), unit="g")["dosageInstruction"][0]
    draft["dosageInstruction"].append(extra)
    ranged = anakinra_draft(
        dose_and_rate=[
            {
                "doseRange": {
                    "low": {"value": 100, "system": "http://unitsofmeasure.org", "code": "mg"},
                    "high": {"value": 3, "system": "http://unitsofmeasure.org", "code": "g"},
                }
            }
        ]
    )

    reading = draft_reading(draft, weight_kg=Decimal("20"))
    ranged_reading = draft_reading(ranged, weight_kg=Decimal("20"))

    assert (reading.dose.per_dose_mg, reading.dose.highest_per_dose_mg) == (Decimal("40"), Decimal("2000"))
    assert reading.dose.highest_per_day_mg == Decimal("8000")
    assert (ranged_reading.dose.per_dose_mg, ranged_reading.dose.highest_per_dose_mg) == (None, Decimal("3000"))
    assert "The draft states a dose range: a range is not one dose, so it is not matched." in ranged_reading.dose.unread


# --- Search results: an error or a short list is never an absence ---------------------------------------------


def test_search_page_null_is_no_data():
    assert search_page(None) == SearchPage(resources=[], problem="")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (
            {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]},
            "the EHR sent an OperationOutcome (error timeout) instead of the data",
        ),
        (
            {"resourceType": "OperationOutcome", "issue": [{"severity": "warning", "code": "Free <b>text</b>"}]},
            "the EHR sent an OperationOutcome (warning) instead of the data",
        ),
        (
            {"resourceType": "OperationOutcome"},
            "the EHR sent an OperationOutcome (no issue stated) instead of the data",
        ),
        ("AllergyIntolerance", "the EHR sent something that is not a FHIR resource"),
        ({"entry": []}, "the EHR sent something that is not a FHIR resource"),
    ],
)
def test_search_page_error_or_not_fhir_is_a_problem(value, problem):
    assert search_page(value) == SearchPage(resources=[], problem=problem)


def test_search_page_counts_matches_and_reads_total_and_next():
    included = {"resource": {"resourceType": "Patient"}, "search": {"mode": "include"}}
    bundle = allergy_bundle("penicillin", "latex") | {
        "total": 7,
        "link": [{"relation": "self", "url": "https://a/x"}, {"relation": "next", "url": "https://a/x?page=2"}],
    }
    bundle["entry"].append(included)

    page = search_page(bundle)

    assert (len(page.resources), page.problem, page.next_url, page.total, page.matches) == (
        3,
        "",
        "https://a/x?page=2",
        7,
        2,
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://ehr.example.org/fhir/r4/AllergyIntolerance?page=2",
            "https://ehr.example.org/fhir/r4/AllergyIntolerance?page=2",
        ),
        ("https://ehr.example.org/fhir/r4?_getpages=abc", "https://ehr.example.org/fhir/r4?_getpages=abc"),
        ("AllergyIntolerance?page=2", "https://ehr.example.org/fhir/r4/AllergyIntolerance?page=2"),
        ("https://ehr.example.org/fhir/r4/x#frag", "https://ehr.example.org/fhir/r4/x"),
        ("https://ehr.example.org/fhir/r4x/AllergyIntolerance", None),
        ("https://ehr.example.org/other", None),
        ("http://ehr.example.org/fhir/r4/AllergyIntolerance", None),
        ("https://ehr.example.org:8443/fhir/r4/AllergyIntolerance", None),
        ("https://ehr.example.org.evil.org/fhir/r4/AllergyIntolerance", None),
        ("https://user@ehr.example.org/fhir/r4/AllergyIntolerance", None),
        ("https://ehr.example.org/fhir/r4/../admin", None),
        ("https://ehr.example.org/fhir/r4/%2e%2e/admin", None),
        ("//evil.example.org/fhir/r4/x", None),
        ("https://[bad/fhir/r4", None),
    ],
)
def test_page_url_on_server_only_under_the_allowed_base(url, expected):
    assert page_url_on_server(url, "https://ehr.example.org/fhir/r4") == expected
