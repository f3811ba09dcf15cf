"""The bedside in real Chromium, as a resident at 3 a.m. would meet it: four patients on a 360 x 740 phone,
Enter that goes forward, the answer on the first screen, a grade calculated in place, New patient that
asks first, printouts of one page at 9 pt or more, axe-core at every impact level, a visible focus ring on
everything reachable by Tab, and text at 200%. The expected doses are worked out by hand from clinical.md."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from assessments.models import Assessment
from bedside.services import bedside_assessment_create
from engine.inputs import RecommendationRequest
from protocols.models import Protocol
from protocols.services import protocol_version_draft_create, protocol_version_publish
from tests.e2e import wizard
from tests.e2e.bedside_checks import (
    ALL_IMPACTS,
    PRINT_MIN_PX,
    accessible_name,
    border_contrasts,
    focus_indicator_problems,
    overflowing,
    printed_pages,
    smallest_print_text,
    text_at_200_percent,
)
from tests.e2e.conftest import axe_violations, e2e_db, login, screenshot
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, e2e_db]

PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}
THREE_PHONE_SCREENS = 3 * PHONE["height"]  # 2,220 px


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _no_axe_violations(page) -> None:
    assert axe_violations(page, impacts=ALL_IMPACTS) == [], page.url


def _answer(page, name: str, value: str) -> None:
    page.locator(f"input[name={name}][value='{value}']").check()


def _enter(page, selector: str) -> None:
    """Press Enter in a field (a phone keypad's Go does the same) and wait for the next page."""
    with page.expect_navigation():
        page.locator(selector).press("Enter")


# --- Four patients on a phone ----------------------------------------------------------------------


def _crs_3_from_findings(page) -> None:
    # Fever; hypotension on one vasopressor (grade 3) and 6 L/min by nasal cannula (grade 2): grade 3.
    _answer(page, "fever", "true")
    _answer(page, "hypotension", "true")
    _answer(page, "crs_grade", "calculate")
    _answer(page, "crs_hypotension", "one_vasopressor")
    _answer(page, "crs_oxygen", "nasal_cannula")
    page.get_by_label("Nasal cannula flow (L/min)").fill("6")


def _icans_4_from_the_ice_helper(page) -> None:
    # ICE 1 is grade 3; deep focal motor weakness is grade 4: the most severe finding sets grade 4.
    _answer(page, "icans_grade", "calculate")
    page.get_by_label("ICE score (0 to 10)").fill("1")
    for name, value in (
        ("icans_consciousness", "not_depressed"),
        ("icans_seizure", "none"),
        ("icans_motor", "deep_focal_weakness"),
        ("icans_raised_icp", "none"),
    ):
        _answer(page, name, value)


def _severe_carhlh(page) -> None:
    _answer(page, "carhlh_grade", "3")
    _answer(page, "late_onset_isolated", "false")


PATIENTS = {
    # cnh: 2 mg/kg/dose x 20 kg = 40 mg IV every 6 hours, 4 doses = 160 mg/day, 40 / 150 = 0.27 mL.
    "cnh": {
        "first_step": {"weight_kg": "20", "age_years": "8", "prior_tocilizumab_doses": "1", "prior_steroids": True},
        "toxicities": _crs_3_from_findings,
        "calculate": ("#crs-helper", "#crs-result", "CRS grade 3"),
        "enter_in": "#id_crs_oxygen_flow_l_min",
        "order": "anakinra 40 mg IV every 6 hours (2 mg/kg/dose; max 100 mg/dose, 400 mg/day)",
        "facts": [("Per dose", "40 mg"), ("Per day", "160 mg/day"), ("Volume per dose", "0.27 mL at 150 mg/mL")],
        "warnings": [],
    },
    # seattle, ICANS grade 4 with steroids: 2 mg/kg/dose x 45 kg = 90 mg IV no more often than every 6 hours,
    # at most 4 doses = 360 mg/day (caps 100 mg/dose and 400 mg/day not reached); 90 / 150 = 0.6 mL.
    "seattle": {
        "first_step": {"weight_kg": "45", "age_years": "15", "prior_tocilizumab_doses": "1", "prior_steroids": True},
        "toxicities": _icans_4_from_the_ice_helper,
        "calculate": ("#icans-helper", "#icans-result", "ICANS grade 4"),
        "enter_in": "#id_icans_ice_score",
        "order": (
            "anakinra 90 mg IV no more often than every 6 hours, at most 4 doses a day "
            "(2 mg/kg/dose; max 100 mg/dose, 400 mg/day)"
        ),
        "facts": [("Per dose", "90 mg"), ("Per day", "at most 360 mg/day"), ("Volume per dose", "0.6 mL at 150 mg/mL")],
        "warnings": [],
    },
    # nih, severe carHLH: 8 to 10 mg/kg/day x 12 kg = 96 to 120 mg/day subcut; no frequency stated, so no
    # per-dose amount. The center's own trial (Table 2): 2.5 to 4 mg/kg/dose x 12 kg = 30 to 48 mg twice daily.
    "nih": {
        "first_step": {"weight_kg": "12", "age_years": "3", "prior_tocilizumab_doses": "1", "prior_steroids": True},
        "toxicities": _severe_carhlh,
        "calculate": None,
        "enter_in": "input[name=late_onset_isolated][value=false]",
        "order": (
            "anakinra 96 to 120 mg/day subcut (8 to 10 mg/kg/day); frequency not specified by this protocol - "
            "confirm with pharmacy"
        ),
        "facts": [("Per dose", "not specified (no frequency)"), ("Per day", "96 to 120 mg/day")],
        "warnings": [
            "Frequency not specified by this protocol - confirm with pharmacy. Only per-day amounts are given; "
            "no per-dose amount has been calculated."
        ],
    },
    # stjude, carHLH first line: 10 mg/kg/day x 36.4 kg = 364 mg/day, 4 doses of 91 mg; the nearest 100 mg
    # vial changes it by 9.9% (within 10%): 100 mg every 6 hours = 400 mg/day, 11 mg/kg/day (clinical.md).
    "stjude": {
        "first_step": {
            "weight_kg": "36.4",
            "age_years": "13",
            "prior_tocilizumab_doses": "0",
            "prior_steroids": False,
        },
        "toxicities": _severe_carhlh,
        "calculate": None,
        "enter_in": "input[name=carhlh_grade][value='3']",
        "order": (
            "anakinra 100 mg IV or subcut every 6 hours (10 mg/kg/day; rounded from 91 mg to a multiple of 100 mg)"
        ),
        "facts": [
            ("Per dose", "100 mg (calculated 91 mg)"),
            ("Per day", "400 mg/day (calculated 364 mg/day)"),
            ("Volume per dose", "0.67 mL at 150 mg/mL"),
        ],
        "warnings": [
            "Step 1 (Initial dosing): 400 mg/day (11 mg/kg/day) after rounding to the nearest vial: above "
            "10 mg/kg/day, the highest per-kg daily amount any of the six centers reports."
        ],
    },
}


def _first_step(page, values: dict) -> None:
    page.get_by_label("Weight (kg)").fill(values["weight_kg"])
    page.get_by_label("Age (years)").fill(values["age_years"])
    page.get_by_label("Tocilizumab doses given so far").fill(values["prior_tocilizumab_doses"])
    _answer(page, "prior_steroids", "true" if values["prior_steroids"] else "false")
    _answer(page, "safety_screen", "none")


@pytest.mark.parametrize("slug", list(PATIENTS))
def test_patient_on_a_phone_gets_the_answer_on_the_first_screen(watched_page, live_server, request, slug):
    patient = PATIENTS[slug]
    page = watched_page
    page.set_viewport_size(PHONE)
    UserFactory(username=f"phone-{slug}", role="clinician")
    login(page, live_server, username=f"phone-{slug}")

    # Step 1; Enter in the weight box goes forward.
    _first_step(page, patient["first_step"])
    _answer(page, "institution", slug)
    assert overflowing(page) == []
    _no_axe_violations(page)
    _enter(page, "#id_weight_kg")
    assert page.url == f"{live_server.url}/wizard/toxicities/"

    # Step 2: a grade calculated from findings lands where the grade is shown.
    patient["toxicities"](page)
    if patient["calculate"]:
        helper, result, grade = patient["calculate"]
        with page.expect_navigation():
            page.locator(helper).get_by_role("button", name="Calculate grade").click()
        expect(page.locator(f"{result} .grade-outcome strong")).to_have_text(grade)
        expect(page.locator(result)).to_be_in_viewport()
        screenshot(page, request, "calculated")
    assert overflowing(page) == []
    _no_axe_violations(page)
    _enter(page, patient["enter_in"])  # Enter goes forward here too: to the recommendation

    # The answer card: status, the order line with its amounts, and any warning, on the first screen.
    assert page.url.startswith(f"{live_server.url}/assessments/")
    card = page.locator(".answer-card")
    expect(card.locator(".status-label")).to_have_text("Indicated by this protocol")
    assert card.locator(".order-line").all_inner_texts() == [patient["order"]] + (
        [
            "anakinra 60 to 84 mg/day subcut (5 to 7 mg/kg/day); frequency not specified by this protocol - "
            "confirm with pharmacy"
        ]
        if slug == "nih"
        else []
    )
    facts = card.locator(".order-facts").first
    assert (
        list(zip(facts.locator("dt").all_inner_texts(), facts.locator("dd").all_inner_texts(), strict=True))
        == (patient["facts"])
    )
    assert card.locator(".warning-warning li, .warning-critical li").all_inner_texts() == patient["warnings"]
    order_line = card.locator(".order-line").first.bounding_box()
    assert (page.evaluate("window.scrollY"), order_line["y"] + order_line["height"] <= PHONE["height"]) == (0, True)
    # The chosen center's whole answer (card and details) within three phone screens.
    assert page.locator(".chosen-answer").bounding_box()["height"] <= THREE_PHONE_SCREENS
    assert page.evaluate("document.activeElement.id") == "answer-heading"
    assert page.title().startswith("Indicated: ")
    assert overflowing(page) == []
    _no_axe_violations(page)
    screenshot(page, request, "result")

    # The printout: one page, no text below 9 pt.
    with page.expect_navigation():
        page.get_by_role("link", name="Printable summary").click()
    _no_axe_violations(page)
    assert overflowing(page) == []
    assert smallest_print_text(page)[0] >= PRINT_MIN_PX
    assert printed_pages(page) == (1, 1)
    screenshot(page, request, "print")


def test_nih_result_shows_the_trial_regimen_once_as_literature(watched_page, live_server):
    page = watched_page
    UserFactory(username="nih-lit", role="clinician")
    login(page, live_server, username="nih-lit")
    _first_step(page, PATIENTS["nih"]["first_step"])
    _answer(page, "institution", "nih")
    wizard.submit(page)
    _severe_carhlh(page)
    wizard.submit(page, "Get recommendations")
    literature = page.locator(".literature")
    expect(literature).to_have_count(1)
    assert " ".join(literature.inner_text().split()) == (
        "Literature, not an order: this center's own published trial, to discuss with pharmacy (the protocol "
        "states no frequency) Lichtenstein et al; Shah et al (the letter's Table 2) gave 2.5 to 4 mg/kg/dose "
        "every 12 hours (2 doses a day), subcut. For 12 kg: 2.5 to 4 mg/kg/dose x 12 kg = 30 to 48 mg per dose; "
        "2 doses a day x 30 to 48 mg = 60 to 96 mg/day."
    )
    assert page.locator(".answer-card .literature").count() == 0  # never among the order lines


# --- Fewest actions from login to the result -------------------------------------------------------


class Actions:
    """Every click, fill, check (a selection) or key press is one action."""

    def __init__(self, page) -> None:
        self.page = page
        self.count = 0

    def fill(self, label: str, text: str) -> None:
        self.page.get_by_label(label).fill(text)
        self.count += 1

    def choose(self, name: str, value: str) -> None:
        self.page.locator(f"input[name={name}][value='{value}']").check()
        self.count += 1

    def press_enter(self, label: str) -> None:
        with self.page.expect_navigation():
            self.page.get_by_label(label).press("Enter")
        self.count += 1

    def click(self, button: str) -> None:
        with self.page.expect_navigation():
            self.page.get_by_role("button", name=button, exact=True).click()
        self.count += 1


def test_cnh_crs_3_at_20_kg_from_login_to_result_in_at_most_12_actions(watched_page, live_server):
    page = watched_page
    page.set_viewport_size(PHONE)
    UserFactory(username="fewest", role="clinician")
    page.goto(f"{live_server.url}/")  # a new user, sent to log in
    actions = Actions(page)
    actions.fill("Username", "fewest")
    actions.fill("Password", "a-long-test-password")
    actions.press_enter("Password")
    actions.fill("Weight (kg)", "20")
    actions.fill("Age (years)", "8")
    actions.fill("Tocilizumab doses given so far", "1")
    actions.choose("prior_steroids", "true")
    actions.choose("safety_screen", "none")
    actions.choose("institution", "cnh")
    actions.press_enter("Tocilizumab doses given so far")
    actions.choose("crs_grade", "3")
    actions.click("Get recommendations")

    assert wizard.first_step_shown(page, "cnh") == {
        "order": "anakinra 40 mg IV every 6 hours (2 mg/kg/dose; max 100 mg/dose, 400 mg/day)",
        "per_dose": "40 mg",
    }
    assert actions.count <= 12, actions.count


# --- Nothing lost by one tap -----------------------------------------------------------------------


NEW_PATIENT = "New patient (clears these answers: asks first)"


def test_new_patient_asks_first_and_keeps_every_answer_until_confirmed(watched_page, live_server):
    page = watched_page
    page.set_viewport_size(PHONE)
    UserFactory(username="reset", role="clinician")
    login(page, live_server, username="reset")
    _first_step(page, PATIENTS["cnh"]["first_step"])
    _answer(page, "institution", "cnh")
    wizard.submit(page)
    _crs_3_from_findings(page)  # typed on the second step, never sent with Next

    wizard.submit(page, NEW_PATIENT)
    expect(page.get_by_role("heading", level=1)).to_have_text("Clear all answers and start a new patient?")
    _no_axe_violations(page)
    with page.expect_navigation():
        page.get_by_role("link", name="Keep my answers").click()
    assert page.url == f"{live_server.url}/wizard/toxicities/"
    for name, value in (("fever", "true"), ("crs_grade", "calculate"), ("crs_hypotension", "one_vasopressor")):
        expect(page.locator(f"input[name={name}][value='{value}']")).to_be_checked()
    expect(page.get_by_label("Nasal cannula flow (L/min)")).to_have_value("6")

    wizard.submit(page, NEW_PATIENT)
    wizard.submit(page, "Clear all answers and start a new patient")
    expect(page.get_by_label("Weight (kg)")).to_have_value("")


def test_change_answers_on_the_result_fills_in_every_answer_after_a_new_patient(watched_page, live_server):
    page = watched_page
    page.set_viewport_size(PHONE)
    UserFactory(username="again", role="clinician")
    login(page, live_server, username="again")
    _first_step(page, PATIENTS["cnh"]["first_step"])
    _answer(page, "institution", "cnh")
    wizard.submit(page)
    _crs_3_from_findings(page)
    wizard.submit(page, "Get recommendations")
    result_url = page.url
    _no_axe_violations(page)

    with page.expect_navigation():
        page.get_by_role("link", name="New patient").click()
    wizard.submit(page, "Clear all answers and start a new patient")
    page.get_by_label("Weight (kg)").fill("31")  # the next patient, begun
    wizard.submit(page)

    page.goto(result_url)
    wizard.submit(page, "Change answers")
    expect(page.get_by_role("heading", level=1)).to_have_text("Replace the answers in progress?")
    _no_axe_violations(page)
    wizard.submit(page, "Replace them with this assessment's answers")
    assert page.url == f"{live_server.url}/wizard/toxicities/"
    for name, value in (
        ("fever", "true"),
        ("hypotension", "true"),
        ("crs_grade", "calculate"),
        ("crs_hypotension", "one_vasopressor"),
        ("crs_oxygen", "nasal_cannula"),
        ("icans_grade", "absent"),
        ("carhlh_grade", "absent"),
    ):
        expect(page.locator(f"input[name={name}][value='{value}']")).to_be_checked()
    expect(page.get_by_label("Nasal cannula flow (L/min)")).to_have_value("6")
    _no_axe_violations(page)
    wizard.submit(page, "1 Patient and treatment (done)")
    for label, value in (("Weight (kg)", "20"), ("Age (years)", "8"), ("Tocilizumab doses given so far", "1")):
        expect(page.get_by_label(label)).to_have_value(value)
    for name, value in (("prior_steroids", "true"), ("safety_screen", "none"), ("institution", "cnh")):
        expect(page.locator(f"input[name={name}][value='{value}']")).to_be_checked()
    wizard.submit(page)
    wizard.submit(page, "Get recommendations")
    assert wizard.first_step_shown(page, "cnh")["order"] == PATIENTS["cnh"]["order"]


def test_answer_under_an_earlier_protocol_version_says_so_and_runs_again(watched_page, live_server):
    page = watched_page
    page.set_viewport_size(PHONE)
    user = UserFactory(username="stale", role="clinician")
    pharmacist = UserFactory(username="stale-pharm", role="pharmacist")
    assessment = _bedside_assessment(user, "cnh")
    newer = protocol_version_draft_create(protocol=Protocol.objects.get(institution__slug="cnh"), author=pharmacist)
    protocol_version_publish(version=newer, approved_by=pharmacist)
    login(page, live_server, username="stale")
    page.goto(f"{live_server.url}/assessments/{assessment.id}/")
    notice = page.locator("#newer-versions")
    expect(notice).to_contain_text("This answer used an earlier protocol version.")
    _no_axe_violations(page)
    assert focus_indicator_problems(page)[1] == []
    wizard.submit(page, "Run it again with the same answers")
    assert page.url == f"{live_server.url}/wizard/toxicities/"
    for name, value in (("fever", "true"), ("hypotension", "true"), ("crs_grade", "3")):
        expect(page.locator(f"input[name={name}][value='{value}']")).to_be_checked()
    wizard.submit(page, "Get recommendations")
    expect(page.locator(".answer-card .protocol-ref")).to_contain_text("Protocol version 2")
    expect(page.locator("#newer-versions")).to_have_count(0)


def test_failed_submit_moves_focus_to_the_error_summary_and_names_the_error_in_the_title(watched_page, live_server):
    page = watched_page
    UserFactory(username="errors", role="clinician")
    login(page, live_server, username="errors")
    page.get_by_label("Weight (kg)").fill("200")
    _enter(page, "#id_weight_kg")
    assert page.title() == "Error: Patient and treatment - Anakinra CDS"
    assert page.evaluate("document.activeElement.className") == "alert alert-danger error-summary"
    expect(page.locator(".error-summary a").first).to_have_text("Weight (kg)")
    _no_axe_violations(page)
    assert focus_indicator_problems(page)[1] == []


def test_failed_log_in_moves_focus_to_the_message_and_names_the_error_in_the_title(watched_page, live_server):
    page = watched_page
    UserFactory(username="wrong", role="clinician")
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("wrong")
    page.get_by_label("Password").fill("not-the-password")
    _enter(page, "#id_password")
    assert (page.title(), page.evaluate("document.activeElement.className")) == (
        "Error: Log in - Anakinra CDS",
        "alert alert-danger error-summary",
    )
    _no_axe_violations(page)


def test_contraindicated_result_takes_focus_on_its_heading_and_says_so_in_the_title(watched_page, live_server):
    page = watched_page
    UserFactory(username="contra", role="clinician")
    login(page, live_server, username="contra")
    _first_step(page, PATIENTS["cnh"]["first_step"])
    _answer(page, "safety_screen", "some")
    for name in wizard.SAFETY_QUESTIONS:
        _answer(page, name, "true" if name == "ecoli_protein_hypersensitivity" else "false")
    _answer(page, "institution", "cnh")
    wizard.submit(page)
    _answer(page, "crs_grade", "3")
    wizard.submit(page, "Get recommendations")
    assert page.title() == "Contraindicated: Children's National Hospital - anakinra recommendation - Anakinra CDS"
    assert page.evaluate("document.activeElement.id") == "answer-heading"
    assert accessible_name(page, "#answer-heading") == "Children's National Hospital"
    expect(page.locator(".answer-card [role=status]")).to_have_text("✕ Contraindicated: do not give")
    _no_axe_violations(page)


def test_questions_appear_only_when_they_apply(watched_page, live_server):
    page = watched_page
    page.set_viewport_size(PHONE)
    UserFactory(username="reveal", role="clinician")
    login(page, live_server, username="reveal")
    details = page.locator("#safety-details")
    expect(details).to_be_hidden()
    _answer(page, "safety_screen", "some")
    expect(details).to_be_visible()
    _answer(page, "safety_screen", "none")
    expect(details).to_be_hidden()

    _first_step(page, PATIENTS["stjude"]["first_step"])
    _answer(page, "institution", "stjude")
    wizard.submit(page)
    late_onset = page.locator("#div_id_late_onset_isolated")
    expect(late_onset).to_be_hidden()
    expect(page.locator("#crs-helper")).to_be_hidden()
    _answer(page, "carhlh_grade", "2")
    expect(late_onset).to_be_visible()
    expect(late_onset.locator(".asteriskField")).to_have_text("*")  # marked required where it is asked
    _answer(page, "crs_grade", "calculate")
    expect(page.locator("#crs-helper")).to_be_visible()
    antipyretics = page.get_by_label("Antipyretics or steroids have already been given (not only planned)")
    expect(antipyretics).to_be_visible()  # no tocilizumab yet and no fever recorded
    _answer(page, "fever", "true")
    expect(antipyretics).to_be_hidden()


# --- Every bedside page: axe at every impact, focus indicators, 200% text -------------------------


def _bedside_assessment(user, institution: str, **overrides):
    body = {
        "weight_kg": Decimal("20"),
        "age_years": Decimal("8"),
        "toxicities": [{"type": "CRS", "grade": 3}],
        "prior_tocilizumab_doses": 1,
        "prior_steroids": True,
        "fever": True,
        "hypotension": True,
        "institution": institution,
        **overrides,
    }
    gradings = [
        {"type": t["type"], "grade": t["grade"], "method": "picked", "set_by": [], "findings": [], "notes": []}
        for t in body["toxicities"]
    ]
    return bedside_assessment_create(request=RecommendationRequest.model_validate(body), gradings=gradings, user=user)


def _bedside_pages(live_server, assessment) -> list[str]:
    return [
        "/",
        "/wizard/toxicities/",
        f"/assessments/{assessment.id}/",
        f"/assessments/{assessment.id}/print/",
        "/wizard/reset/",
        "/start/?weight_kg=20&institution=cnh&fever=maybe",
        "/evidence/",
        "/protocols/",
        "/protocols/nih/",
    ]


def _signed_in_with_answers(page, live_server, username: str):
    user = UserFactory(username=username, role="clinician")
    login(page, live_server, username=username)
    _first_step(page, PATIENTS["cnh"]["first_step"])
    _answer(page, "institution", "cnh")
    wizard.submit(page)
    _answer(page, "crs_grade", "calculate")  # the CRS helper open: its questions are on the page too
    return _bedside_assessment(user, "seattle")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_every_bedside_page_has_no_axe_violation_at_any_impact(watched_page, live_server, viewport):
    page = watched_page
    page.set_viewport_size(viewport)
    page.goto(f"{live_server.url}/accounts/login/")
    _no_axe_violations(page)
    assessment = _signed_in_with_answers(page, live_server, "axe")
    for path in _bedside_pages(live_server, assessment):
        page.goto(f"{live_server.url}{path}")
        _no_axe_violations(page)
    # With every disclosure open too (a not-indicated center's amounts, each center in full, sources).
    page.goto(f"{live_server.url}/assessments/{assessment.id}/")
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    _no_axe_violations(page)


def test_every_focusable_element_shows_a_focus_indicator(watched_page, live_server):
    page = watched_page
    page.goto(f"{live_server.url}/accounts/login/")
    results = {"/accounts/login/": focus_indicator_problems(page)}
    assessment = _signed_in_with_answers(page, live_server, "focus")
    for path in _bedside_pages(live_server, assessment):
        page.goto(f"{live_server.url}{path}")
        if path == "/wizard/toxicities/":
            _answer(page, "crs_grade", "calculate")
            _answer(page, "icans_grade", "calculate")
        results[path] = focus_indicator_problems(page)
    assert {path: problems for path, (_, problems) in results.items()} == {path: [] for path in results}
    # Every page was really walked: at least its skip link, brand, sections and log out.
    assert min(seen for seen, _ in results.values()) >= 4, results


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_text_at_200_percent_never_scrolls_sideways(watched_page, live_server, viewport):
    page = watched_page
    page.set_viewport_size(viewport)
    text_at_200_percent(page)
    assessment = _signed_in_with_answers(page, live_server, "bigtext")
    assert page.evaluate("getComputedStyle(document.documentElement).fontSize") == "32px"
    found = {}
    for path in _bedside_pages(live_server, assessment):
        page.goto(f"{live_server.url}{path}")
        found[path] = overflowing(page)
    assert found == {path: [] for path in found}
    # At 1280 px and 200% text the comparison table stacks: its warnings column stays on screen.
    page.goto(f"{live_server.url}/assessments/{assessment.id}/")
    warnings = page.locator(".compare-table td[data-label='Key warnings']").first.bounding_box()
    assert warnings["x"] + warnings["width"] <= viewport["width"]


def test_stacked_table_cells_are_named_once(watched_page, live_server):
    page = watched_page
    page.set_viewport_size(PHONE)
    user = UserFactory(username="stacked", role="clinician")
    login(page, live_server, username="stacked")
    assessment = _bedside_assessment(user, "cnh")
    page.goto(f"{live_server.url}/assessments/{assessment.id}/")
    # The label "Per dose" is drawn above the value on a phone, but the cell is named by its value alone
    # (its column header already says "Per dose").
    musc = "tr:has(a[href='#center-musc']) td[data-label='Per dose']"
    label = page.evaluate(f"getComputedStyle(document.querySelector(\"{musc}\"), '::before').display")
    assert (label, page.locator(musc).inner_text(), accessible_name(page, musc)) == ("block", "80 mg", "80 mg")


# --- Printouts: every center, every status ---------------------------------------------------------


# Every toxicity at grade 4 and every warning: the longest printout each center gives.
FULLEST = {
    "weight_kg": Decimal("120.125"),
    "age_years": Decimal("35"),
    "toxicities": [{"type": "CRS", "grade": 4}, {"type": "ICANS", "grade": 4}, {"type": "carHLH", "grade": 4}],
    "prior_tocilizumab_doses": 2,
    "car_target": "CD22",
    "days_since_infusion": 30,
    "late_onset_isolated": False,
    "thrombocytopenia_or_coagulopathy": True,
    "concurrent_tnf_blocker": True,
    "active_infection": True,
    "creatinine_clearance_ml_min": Decimal("20"),
}


def test_printout_is_one_page_at_9_pt_or_more_for_every_center_and_status(watched_page, live_server, request):
    page = watched_page
    user = UserFactory(username="printer", role="clinician")
    assessments = {
        # Every toxicity at grade 4 and every warning: the longest printout each center gives.
        "fullest": _bedside_assessment(user, "musc", **FULLEST),
        "crs": _bedside_assessment(user, "seattle"),  # seattle: may be considered
        "icans_before_tocilizumab": _bedside_assessment(  # cnh: not indicated, amounts only if criteria met
            user, "cnh", weight_kg=Decimal("45"), toxicities=[{"type": "ICANS", "grade": 3}], prior_tocilizumab_doses=0
        ),
        "hypersensitivity": _bedside_assessment(user, "cnh", ecoli_protein_hypersensitivity=True),
    }
    login(page, live_server, username="printer")
    statuses, pages, smallest = set(), {}, {}
    for name, assessment in assessments.items():
        for slug in ("chop", "cnh", "musc", "nih", "seattle", "stjude"):
            page.goto(f"{live_server.url}/assessments/{assessment.id}/print/?institution={slug}")
            statuses.add(page.locator(".order-summary .status-label").inner_text())
            pages[(name, slug)] = printed_pages(page)
            smallest[(name, slug)] = smallest_print_text(page)[0]
            if (name, slug) == ("fullest", "musc"):
                screenshot(page, request, "print-fullest-musc")
    page.goto(f"{live_server.url}/assessments/{assessments['fullest'].id}/")
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    # Status and warning borders (information included) stand out at 3:1 or more.
    contrasts = border_contrasts(page, ".status, .warning-group")
    assert (len(contrasts) > 20, min(contrasts) >= 3) == (True, True), contrasts
    assert statuses == {
        "Indicated by this protocol",
        "May be considered under this protocol",
        "Not indicated by this protocol",
        "Contraindicated: do not give",
    }
    assert pages == dict.fromkeys(pages, (1, 1))
    assert min(smallest.values()) >= PRINT_MIN_PX, smallest


def test_fullest_printout_of_an_answer_under_a_superseded_version_stays_one_page(watched_page, live_server):
    # The longest printout (musc, every warning) of an answer whose protocol version has since been superseded:
    # the newer-version notice prints inside the version line, and the page stays one sheet at 9 pt or more.
    page = watched_page
    user = UserFactory(username="old-printer", role="clinician")
    assessment = _bedside_assessment(user, "musc", **FULLEST)
    pharmacist = UserFactory(username="old-printer-pub", role="pharmacist")
    newer = protocol_version_draft_create(protocol=Protocol.objects.get(institution__slug="musc"), author=pharmacist)
    protocol_version_publish(version=newer, approved_by=pharmacist)
    login(page, live_server, username="old-printer")
    page.goto(f"{live_server.url}/assessments/{assessment.id}/print/?institution=musc")
    notice = page.locator(".newer-version-print").inner_text()
    assert (notice.startswith("A newer version is in force: version 2 since "), notice.endswith(" for it.")) == (
        True,
        True,
    ), notice
    assert smallest_print_text(page)[0] >= PRINT_MIN_PX
    assert printed_pages(page) == (1, 1)


def test_fullest_printout_of_an_answer_under_earlier_rules_stays_one_page(watched_page, live_server):
    # The longest printout (musc, every warning) of an answer stored under rules revision 1: the printout names
    # the revision in one line (the full note, on the result page, would push it to a second sheet).
    page = watched_page
    user = UserFactory(username="rules-printer", role="clinician")
    assessment = _bedside_assessment(user, "musc", **FULLEST)
    Assessment.objects.filter(pk=assessment.pk).update(rules_revision=1)
    login(page, live_server, username="rules-printer")
    page.goto(f"{live_server.url}/assessments/{assessment.id}/print/?institution=musc")
    note = page.locator(".rules-note").inner_text()
    assert note.startswith("Computed under earlier rules (the app's clinical rules revision 1)"), note
    assert smallest_print_text(page)[0] >= PRINT_MIN_PX
    assert printed_pages(page) == (1, 1)
