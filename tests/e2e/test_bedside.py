"""The bedside in real Chromium: two patients through the wizard, the doses shown, the printout on one
page, axe-core, and a 360 px phone. The expected doses are worked out by hand from clinical.md."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from bedside.services import bedside_assessment_create
from engine.inputs import RecommendationRequest
from tests.e2e.conftest import axe_violations, e2e_db, login, screenshot
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, e2e_db]

PHONE = {"width": 360, "height": 780}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _pdf_pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))


def _submit(page, name: str) -> None:
    """Press a submit button and wait for the next page to load (styles included)."""
    with page.expect_navigation():
        page.get_by_role("button", name=name, exact=True).click()


def _check(page, name: str, value: str) -> None:
    page.locator(f"input[name={name}][value='{value}']").check()


def _no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def _fill_patient(page, *, weight: str, age: str, car_target: str, fever: str, hypotension: str) -> None:
    page.get_by_label("Weight (kg)").fill(weight)
    page.get_by_label("Age (years)").fill(age)
    _check(page, "car_target", car_target)
    _check(page, "fever", fever)
    _check(page, "hypotension", hypotension)
    for name in (
        "ecoli_protein_hypersensitivity",
        "active_infection",
        "concurrent_tnf_blocker",
        "thrombocytopenia_or_coagulopathy",
    ):
        _check(page, name, "false")


def _fill_treatment(page, *, tocilizumab_doses: str, steroids: str) -> None:
    page.get_by_label("Tocilizumab doses given so far").fill(tocilizumab_doses)
    _check(page, "prior_steroids", steroids)


def _dose_cells(page, slug: str, row: int = 0) -> tuple[str, str]:
    cells = page.locator(f"#center-{slug} .dose-table tbody tr").nth(row)
    per_dose = cells.locator("td[data-label='Per dose']").inner_text().split("\n")
    per_day = cells.locator("td[data-label='Per day']").inner_text().split("\n")
    return " / ".join(p.strip() for p in per_dose if p.strip()), " / ".join(p.strip() for p in per_day if p.strip())


def test_wizard_crs_patient_gets_the_cnh_dose_and_a_one_page_printout(watched_page, live_server, request):
    # 20 kg, CRS grade 3 (one vasopressor) after tocilizumab and steroids.
    # CNH: 2 mg/kg/dose x 20 kg = 40 mg IV every 6 hours; 4 doses = 160 mg/day (caps 100 mg/dose, 400 mg/day).
    page = watched_page
    UserFactory(username="e2e-clin", role="clinician")
    login(page, live_server, username="e2e-clin")

    _fill_patient(page, weight="20", age="8", car_target="CD19", fever="true", hypotension="true")
    screenshot(page, request, "wizard-patient")
    assert axe_violations(page) == []
    _submit(page, "Next")

    _fill_treatment(page, tocilizumab_doses="1", steroids="true")
    _submit(page, "Next")

    _check(page, "crs_grade", "calculate")
    _check(page, "crs_hypotension", "one_vasopressor")
    _check(page, "crs_oxygen", "nasal_cannula")
    page.get_by_label("Nasal cannula flow (L/min)").fill("6")
    _check(page, "icans_grade", "absent")
    _check(page, "carhlh_grade", "absent")
    with page.expect_navigation():
        page.locator("#crs-helper").get_by_role("button", name="Calculate grade").click()
    assert page.locator(".grade-outcome p").first.inner_text() == (
        "CRS grade 3, set by: hypotension requiring one vasopressor (with or without vasopressin)."
    )
    screenshot(page, request, "wizard-toxicities")
    assert axe_violations(page) == []
    _submit(page, "Next")

    assert page.locator("input[name=institution]:checked").count() == 0
    _check(page, "institution", "cnh")
    screenshot(page, request, "wizard-institution")
    assert axe_violations(page) == []
    _submit(page, "Get recommendations")

    assert page.get_by_role("heading", level=2, name="Your center: Children's National Hospital").is_visible()
    order = page.locator("#center-cnh .dose-table td[data-label='Order']").first.inner_text()
    assert order == "anakinra 40 mg IV every 6 hours (2 mg/kg/dose; max 100 mg/dose, 400 mg/day)"
    assert _dose_cells(page, "cnh") == ("40 mg", "160 mg/day")
    assert page.locator("#center-cnh .arithmetic li").all_inner_texts() == [
        "2 mg/kg/dose x 20 kg = 40 mg per dose",
        "4 doses a day x 40 mg = 160 mg/day",
    ]
    assert page.locator(".compare-table tbody th[scope=row]").count() == 5
    screenshot(page, request, "result")
    assert axe_violations(page) == []

    with page.expect_navigation():
        page.get_by_role("link", name="Printable order summary").click()
    assert page.get_by_role("button", name="Print").is_visible()
    screenshot(page, request, "print")
    assert axe_violations(page) == []
    assert (_pdf_pages(page.pdf(format="Letter")), _pdf_pages(page.pdf(format="A4"))) == (1, 1)


def test_wizard_carhlh_patient_on_a_phone_gets_the_rounded_st_jude_dose(watched_page, live_server, request):
    # 38 kg, 14 years: ICANS from ICE 5 (grade 2) and carHLH severity 3. St. Jude: 10 mg/kg/day x 38 kg =
    # 380 mg/day, 4 doses of 95 mg; the nearest 100 mg vial changes the dose by 5.3% (within 10%), so
    # 100 mg every 6 hours, 400 mg/day, with the calculated 95 mg and 380 mg/day shown beside it.
    page = watched_page
    page.set_viewport_size(PHONE)
    UserFactory(username="e2e-phone", role="clinician")
    login(page, live_server, username="e2e-phone")

    _fill_patient(page, weight="38", age="14", car_target="CD19", fever="true", hypotension="false")
    assert _no_sideways_scroll(page)
    _submit(page, "Next")
    _fill_treatment(page, tocilizumab_doses="0", steroids="false")
    assert _no_sideways_scroll(page)
    _submit(page, "Next")

    _check(page, "crs_grade", "absent")
    _check(page, "icans_grade", "calculate")
    page.get_by_label("ICE score (0 to 10)").fill("5")
    for name, value in (
        ("icans_consciousness", "not_depressed"),
        ("icans_seizure", "none"),
        ("icans_motor", "none"),
        ("icans_raised_icp", "none"),
        ("carhlh_grade", "3"),
        ("late_onset_isolated", "false"),
    ):
        _check(page, name, value)
    assert _no_sideways_scroll(page)
    _submit(page, "Next")
    _check(page, "institution", "stjude")
    assert _no_sideways_scroll(page)
    screenshot(page, request, "phone-institution")
    _submit(page, "Get recommendations")

    assert page.locator(".toxicity-list li").all_inner_texts() == [
        "ICANS grade 2 (ASTCT)\nCalculated from findings; set by: ICE score 5 (3 to 6). "
        "ICE score used: age 12 years or over.",
        "carHLH clinician-entered severity 3 (severe)\nClinician-entered: carHLH has no consensus definition and no "
        "ASTCT grade.",
    ]
    assert _dose_cells(page, "stjude") == ("100 mg / calculated 95 mg", "400 mg/day / calculated 380 mg/day")
    assert _no_sideways_scroll(page)
    screenshot(page, request, "phone-result")

    with page.expect_navigation():
        page.get_by_role("link", name="Printable order summary").click()
    assert page.locator(".signature").count() == 2
    assert _no_sideways_scroll(page)
    screenshot(page, request, "phone-print")


def test_print_fits_one_page_for_every_center_in_the_fullest_case(watched_page, live_server, request):
    # Every toxicity at grade 4 and every warning: the longest printout any center gives.
    user = UserFactory(username="e2e-print", role="clinician")
    body = {
        "weight_kg": Decimal("120.125"),
        "age_years": Decimal("35"),
        "toxicities": [{"type": "CRS", "grade": 4}, {"type": "ICANS", "grade": 4}, {"type": "carHLH", "grade": 4}],
        "prior_tocilizumab_doses": 2,
        "prior_steroids": True,
        "car_target": "CD22",
        "days_since_infusion": 30,
        "fever": True,
        "hypotension": True,
        "late_onset_isolated": False,
        "thrombocytopenia_or_coagulopathy": True,
        "concurrent_tnf_blocker": True,
        "active_infection": True,
        "creatinine_clearance_ml_min": Decimal("20"),
        "institution": "musc",
    }
    gradings = [
        {"type": "CRS", "grade": 4, "method": "picked", "set_by": [], "findings": [], "notes": []},
        {"type": "ICANS", "grade": 4, "method": "picked", "set_by": [], "findings": [], "notes": []},
        {"type": "carHLH", "grade": 4, "method": "picked", "set_by": [], "findings": [], "notes": []},
    ]
    assessment = bedside_assessment_create(
        request=RecommendationRequest.model_validate(body), gradings=gradings, user=user
    )
    page = watched_page
    login(page, live_server, username="e2e-print")
    pages = {}
    for slug in ("chop", "cnh", "musc", "nih", "seattle", "stjude"):
        page.goto(f"{live_server.url}/assessments/{assessment.id}/print/?institution={slug}")
        pages[slug] = (_pdf_pages(page.pdf(format="Letter")), _pdf_pages(page.pdf(format="A4")))
        if slug == "musc":
            screenshot(page, request, "print-musc-fullest")
    assert pages == dict.fromkeys(pages, (1, 1))
