"""Reading what the EHR sends: weight, age, allergies, drafted anakinra orders. Nothing is guessed."""

from datetime import date
from decimal import Decimal

import pytest

from cds_hooks.fhir_read import age_years, anakinra_allergies, anakinra_drafts, body_weight, draft_reading, resources_in
from engine.vocabulary import Route
from tests.ehr_support import SC, allergy_bundle, anakinra_draft, other_draft, weight_bundle

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


def test_body_weight_in_pounds_is_not_converted():
    weight = body_weight(resources_in(weight_bundle(Decimal("44"), code="[lb_av]")))

    assert weight.kg is None
    assert weight.problem == "The latest body weight is not in UCUM kg (unit: [lb_av]); it is not converted."


def test_body_weight_latest_in_pounds_hides_an_older_kg_value():
    resources = [
        _observation(Decimal("20"), when="2026-01-01"),
        _observation(Decimal("44"), when="2026-11-01", code="g"),
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

    assert anakinra_allergies(resources_in(bundle)) == ["Kineret (anakinra)"]


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
    draft = anakinra_draft(Decimal("1"), unit="g", route={"system": "http://snomed.info/sct", "code": "26643006"})
    draft["dosageInstruction"][0]["timing"]["repeat"]["periodUnit"] = "wk"

    reading = draft_reading(draft, weight_kg=Decimal("20"))

    assert (reading.dose.per_dose_mg, reading.dose.doses_per_day, reading.dose.route) == (None, None, None)
    assert reading.description == "anakinra dose not readable, route not readable, frequency not readable"
