"""Walking the bedside wizard in the browser, shared by the end-to-end tests that need the bedside
result for a patient (the EHR link, the governance workflow)."""

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


def walk(page, patient: dict, *, fill_patient_step: bool = True) -> None:
    """Answer every step for `patient` (API field names; grades picked, not computed) and finish.

    With `fill_patient_step=False` the weight and age are taken as already filled (an EHR link)."""
    if fill_patient_step:
        page.get_by_label("Weight (kg)").fill(str(patient["weight_kg"]))
        page.get_by_label("Age (years)").fill(str(patient["age_years"]))
    answer(page, "car_target", patient.get("car_target", "other"))
    answer(page, "fever", _yes_no(patient.get("fever")))
    answer(page, "hypotension", _yes_no(patient.get("hypotension")))
    for name in SAFETY_QUESTIONS:
        answer(page, name, _yes_no(patient.get(name)))
    submit(page)
    page.get_by_label("Tocilizumab doses given so far").fill(str(patient["prior_tocilizumab_doses"]))
    answer(page, "prior_steroids", _yes_no(patient["prior_steroids"]))
    submit(page)
    grades = {t["type"]: t["grade"] for t in patient["toxicities"]}
    for toxicity, field in (("CRS", "crs_grade"), ("ICANS", "icans_grade"), ("carHLH", "carhlh_grade")):
        answer(page, field, str(grades[toxicity]) if toxicity in grades else "absent")
    if "carHLH" in grades:
        answer(page, "late_onset_isolated", _yes_no(patient.get("late_onset_isolated")))
    submit(page)
    answer(page, "institution", patient["institution"])
    submit(page, "Get recommendations")


def first_step_shown(page, slug: str) -> dict[str, str]:
    """The order line and per-dose amount the result page shows for `slug`'s first step."""
    row = page.locator(f"#center-{slug} .dose-table tbody tr").first
    return {
        "order": row.locator("td[data-label='Order']").inner_text(),
        "per_dose": row.locator("td[data-label='Per dose']").inner_text().split("\n")[0].strip(),
    }
