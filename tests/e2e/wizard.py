"""Walking the bedside wizard in the browser, shared by the end-to-end tests that need the bedside
result for a patient (the EHR link, the governance workflow, the bedside tests)."""

from __future__ import annotations

SAFETY_QUESTIONS = (
    "ecoli_protein_hypersensitivity",
    "active_infection",
    "concurrent_tnf_blocker",
    "thrombocytopenia_or_coagulopathy",
)


def answer(page, name: str, value: str) -> None:
    page.locator(f"input[name={name}][value='{value}']").check()


def submit(page, name: str = "Next") -> None:
    with page.expect_navigation():
        page.get_by_role("button", name=name, exact=True).click()


def start_from_link(page, link_url: str) -> None:
    """Open a /start/ link and confirm it: the link only shows its values; the button fills the wizard."""
    with page.expect_navigation():
        page.goto(link_url)
    submit(page, "Start a new patient with these answers")


def _yes_no(value: bool | None) -> str:
    return "true" if value else "false"


def answer_patient_step(page, patient: dict, *, weight_and_age: bool = True) -> None:
    """The first step for `patient` (API field names): weight, age, prior treatment, safety, center."""
    if weight_and_age:
        page.get_by_label("Weight (kg)").fill(str(patient["weight_kg"]))
        page.get_by_label("Age (years)").fill(str(patient["age_years"]))
    page.get_by_label("Tocilizumab doses given so far").fill(str(patient["prior_tocilizumab_doses"]))
    answer(page, "prior_steroids", _yes_no(patient["prior_steroids"]))
    if any(patient.get(name) for name in SAFETY_QUESTIONS):
        answer(page, "safety_screen", "some")
        for name in SAFETY_QUESTIONS:
            answer(page, name, _yes_no(patient.get(name)))
    else:
        answer(page, "safety_screen", "none")
    answer(page, "institution", patient["institution"])
    if "car_target" in patient:
        answer(page, "car_target", patient["car_target"])


def answer_toxicities_step(page, patient: dict) -> None:
    """The second step: fever and hypotension now (when given) and each grade picked, not computed."""
    for name in ("fever", "hypotension"):
        if name in patient:
            answer(page, name, _yes_no(patient[name]))
    grades = {t["type"]: t["grade"] for t in patient["toxicities"]}
    for toxicity, field in (("CRS", "crs_grade"), ("ICANS", "icans_grade"), ("carHLH", "carhlh_grade")):
        answer(page, field, str(grades[toxicity]) if toxicity in grades else "absent")
    if "carHLH" in grades:
        answer(page, "late_onset_isolated", _yes_no(patient.get("late_onset_isolated")))


def walk(page, patient: dict, *, fill_patient_step: bool = True) -> None:
    """Answer both steps for `patient` and finish on the result page.

    With `fill_patient_step=False` the weight and age are taken as already filled (an EHR link)."""
    answer_patient_step(page, patient, weight_and_age=fill_patient_step)
    submit(page)
    answer_toxicities_step(page, patient)
    submit(page, "Get recommendations")


def first_step_shown(page, slug: str) -> dict[str, str]:
    """The order line and per-dose amount the result page shows first for `slug` (the chosen center)."""
    order = page.locator(f"#center-{slug} .answer-card .order").first
    per_dose = order.locator(".order-facts dd").first  # the ordered amount is bold; "(calculated ...)" follows
    amount = per_dose.locator("strong")
    return {
        "order": order.locator(".order-text").inner_text(),
        "per_dose": (amount if amount.count() else per_dose).inner_text().strip(),
    }
