"""The result page, the printable order summary and the reading pages: content and query counts."""

from __future__ import annotations

import itertools
import re
from datetime import timedelta
from decimal import Decimal
from html import unescape

import pytest
from django.utils import timezone

from anakinra_cds import jsonutil
from assessments.models import Assessment
from assessments.services import assessment_create
from bedside.services import bedside_assessment_create
from engine.inputs import RecommendationRequest
from evidence.models import Reference
from protocols.models import Protocol, VersionStatus
from protocols.services import protocol_version_draft_create, protocol_version_publish
from tests.factories import (
    DosingStepFactory,
    IndicationRuleFactory,
    InstitutionFactory,
    ProtocolVersionFactory,
    UserFactory,
)

pytestmark = pytest.mark.integration

CRS_3_AFTER_TOCILIZUMAB_AND_STEROIDS = {
    "weight_kg": Decimal("20"),
    "age_years": Decimal("8"),
    "toxicities": [{"type": "CRS", "grade": 3}],
    "prior_tocilizumab_doses": 1,
    "prior_steroids": True,
    "car_target": "CD19",
    "fever": True,
    "hypotension": True,
}
CRS_GRADING = [
    {
        "type": "CRS",
        "grade": 3,
        "method": "computed",
        "set_by": ["hypotension requiring one vasopressor (with or without vasopressin)"],
        "findings": [],
        "notes": [],
    }
]


def _bedside_assessment(user, institution: str = "cnh", **overrides) -> Assessment:
    request = RecommendationRequest.model_validate(
        {**CRS_3_AFTER_TOCILIZUMAB_AND_STEROIDS, **overrides, "institution": institution}
    )
    return bedside_assessment_create(request=request, gradings=CRS_GRADING, user=user)


def _api_assessment(user, institution: str | None) -> Assessment:
    request = RecommendationRequest.model_validate({**CRS_3_AFTER_TOCILIZUMAB_AND_STEROIDS, "institution": institution})
    return assessment_create(
        patient=request.to_patient(),
        inputs=request.echo(),
        institution_slug=institution,
        created_by=user,
        source=Assessment.Source.API,
    )


def _text(response) -> str:
    """The page's visible text with whitespace collapsed."""
    return _visible(response.content.decode())


def _visible(html: str) -> str:
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()


def _publish_new_cnh_version(pharmacist, *, amount: Decimal, next_review=None):
    protocol = Protocol.objects.get(institution__slug="cnh")
    version = ProtocolVersionFactory(protocol=protocol, number=2, next_review=next_review, change_reason="new dose")
    IndicationRuleFactory(
        version=version,
        applies_to_crs=True,
        min_prior_tocilizumab_doses=1,
        requires_steroids=True,
        summary="third-line use, after tocilizumab and steroids",
    )
    DosingStepFactory(version=version, amount_low=amount, amount_high=amount, interval_hours=6, route_iv=True)
    return protocol_version_publish(version=version, approved_by=pharmacist)


# --- Result page -----------------------------------------------------------------------------------


def _chosen(text: str) -> str:
    """The chosen center's whole answer (answer card and details), as visible text."""
    return text[text.index("anakinra for ") : text.index("Every other center")]


def _answer_card(text: str) -> str:
    """The answer card alone: from what it is for to its actions."""
    return text[text.index("anakinra for ") : text.index("Printable summary Change answers")]


def test_result_page_answer_card_comes_first_with_status_order_line_and_source(clinician, clinician_client):
    assessment = _bedside_assessment(clinician)
    text = _text(clinician_client.get(f"/assessments/{assessment.id}/"))
    card = _answer_card(text)
    assert re.fullmatch(
        r"anakinra for CRS grade 3 · 20 kg · 8 years Children's National Hospital ✓ Indicated by this protocol "
        r"Initial dosing \(initial\) anakinra 40 mg IV every 6 hours \(2 mg/kg/dose; max 100 mg/dose, 400 mg/day\) "
        r"Per dose 40 mg Per day 160 mg/day Volume per dose 0\.27 mL at 150 mg/mL "
        r"Protocol version 1 \(in this app since \d+ \w+ \d{4}\)\. From the published letter: Diorio C, Vatsayan A, "
        r"et al\. Blood Adv 2022 \(Table 1\)\. Not yet approved by a local pharmacist\. ",
        card,
    ), card
    # The card is the first thing in the page's main content.
    assert text.index("Log out") + len("Log out ") == text.index("anakinra for ")


def test_result_page_details_follow_with_the_reason_and_the_arithmetic(clinician, clinician_client):
    assessment = _bedside_assessment(clinician)
    chosen = _chosen(_text(clinician_client.get(f"/assessments/{assessment.id}/")))
    details = chosen[chosen.index("How this answer was reached") :]
    assert details.startswith(
        "How this answer was reached CRS grade 3 with tocilizumab given (1 dose) and steroids given or starting: "
        "third-line use, after tocilizumab and steroids Initial dosing (initial) "
        "2 mg/kg/dose x 20 kg = 40 mg per dose 4 doses a day x 40 mg = 160 mg/day "
        "Caps max 100 mg per dose (not reached); max 400 mg per day (not reached) Duration Days to 2 weeks, "
        "including the taper."
    )


def test_result_page_title_names_the_status_and_the_center(clinician, clinician_client):
    assessment = _bedside_assessment(clinician, ecoli_protein_hypersensitivity=True)
    html = clinician_client.get(f"/assessments/{assessment.id}/").content.decode()
    title = re.search(r"<title>([^<]+)</title>", html).group(1)
    assert unescape(title) == ("Contraindicated: Children's National Hospital - anakinra recommendation - Anakinra CDS")


def test_result_page_heading_takes_focus_and_the_status_is_a_status_region(clinician, clinician_client):
    assessment = _bedside_assessment(clinician)
    html = clinician_client.get(f"/assessments/{assessment.id}/").content.decode()
    assert re.search(
        r'<h1 class="answer-center" id="answer-heading" tabindex="-1" autofocus data-focus-on-load '
        r'aria-describedby="answer-status">Children&#x27;s National Hospital</h1>\s*<div role="status">\s*'
        r'<p class="status status-indicated" id="answer-status">',
        html,
    )


def _volumes(html: str) -> list[str]:
    return re.findall(r'<span class="volume">([^<]+)</span>', html)


def test_result_page_never_shows_a_volume_without_its_concentration(clinician, clinician_client):
    assessment = _bedside_assessment(clinician)
    html = clinician_client.get(f"/assessments/{assessment.id}/").content.decode()
    table = html[html.index('<table class="table compare-table') : html.index("</table>", html.index("compare-table"))]
    volumes = _volumes(html)
    assert (len(_volumes(table)) > 0, html.count(" mL<"), volumes.count("0.27 mL at 150 mg/mL") > 0) == (True, 0, True)
    assert all(re.fullmatch(r"[0-9.]+( to [0-9.]+)? mL at [0-9.]+ mg/mL", v) for v in volumes), volumes


SEVERE_CRS_AND_ICANS = [{"type": "CRS", "grade": 4}, {"type": "ICANS", "grade": 4}]


def test_print_page_offers_a_circle_one_route_choice_never_iv_or_subcut(clinician, clinician_client):
    assessment = _bedside_assessment(clinician, institution="chop", toxicities=SEVERE_CRS_AND_ICANS)
    text = _text(clinician_client.get(f"/assessments/{assessment.id}/print/"))
    assert "anakinra 40 mg/day IV / subcut (circle one) (2 mg/kg/day;" in text
    assert "Route (circle one) IV / subcut Caps" in text
    assert "IV or subcut" not in text


def test_print_page_says_a_most_often_interval_as_a_maximum_never_a_schedule(clinician, clinician_client):
    assessment = _bedside_assessment(clinician, institution="seattle", toxicities=SEVERE_CRS_AND_ICANS)
    text = _text(clinician_client.get(f"/assessments/{assessment.id}/print/"))
    assert (
        "anakinra 40 mg IV no more often than every 6 hours, at most 4 doses a day (2 mg/kg/dose; "
        "max 100 mg/dose, 400 mg/day) 40 mg at most 160 mg/day"
    ) in text
    assert "at most 4 doses a day (no more often than every 6 hours) x 40 mg = at most 160 mg/day" in text
    assert ("up to every" in text, " 4 doses a day x" in text) == (False, False)


def test_result_page_says_a_most_often_interval_as_a_maximum(clinician, clinician_client):
    assessment = _bedside_assessment(clinician, institution="seattle", toxicities=SEVERE_CRS_AND_ICANS)
    card = _answer_card(_text(clinician_client.get(f"/assessments/{assessment.id}/")))
    assert (
        "anakinra 40 mg IV no more often than every 6 hours, at most 4 doses a day (2 mg/kg/dose; max 100 mg/dose, "
        "400 mg/day) Per dose 40 mg Per day at most 160 mg/day"
    ) in card


def test_print_page_states_caps_plainly_from_the_data(clinician, clinician_client):
    text = _text(clinician_client.get(f"/assessments/{_bedside_assessment(clinician).id}/print/"))
    assert "Caps max 100 mg per dose (not reached); max 400 mg per day (not reached)" in text


@pytest.mark.parametrize(
    ("path", "institution", "weight_kg", "caps"),
    [
        # cnh 60 kg: 2 x 60 = 120 mg > 100 mg/dose -> 100 mg; 4 x 100 = 400 mg/day, the per-day cap not exceeded:
        # the flag stands beside the per-dose cap only (it used to follow both caps).
        ("", "cnh", 60, "Caps max 100 mg per dose ( cap applied ); max 400 mg per day (not reached)"),
        ("print/", "cnh", 60, "Caps max 100 mg per dose ( cap applied ); max 400 mg per day (not reached)"),
        # cnh 50.001 kg: 2 x 50.001 = 100.002 mg, shown 100 mg: the cap changed nothing shown (0.1 mg).
        (
            "print/",
            "cnh",
            Decimal("50.001"),
            "Caps max 100 mg per dose (not reached); max 400 mg per day (not reached)",
        ),
        # chop 51 kg: 102 mg/day; ceiling 510 mg/day capped at 400: the per-day cap acted on the ceiling only.
        ("", "chop", 51, "Caps max 400 mg per day (not reached by this amount; caps the escalation ceiling)"),
    ],
)
def test_caps_line_puts_cap_applied_beside_the_cap_that_acted(
    clinician, clinician_client, path, institution, weight_kg, caps
):
    assessment = _bedside_assessment(clinician, institution=institution, weight_kg=weight_kg)
    text = _text(clinician_client.get(f"/assessments/{assessment.id}/{path}"))
    assert caps in text  # (the flag is in <strong>, hence the spaces)


def test_print_page_says_where_the_protocol_comes_from_and_that_no_local_pharmacist_approved_it(
    clinician, clinician_client
):
    text = _text(clinician_client.get(f"/assessments/{_bedside_assessment(clinician).id}/print/"))
    assert re.search(
        r"Protocol version 1 \(in this app since \d+ \w+ \d{4} \d\d:\d\d UTC\)\. From the published letter: "
        r"Diorio C, Vatsayan A, et al\. Blood Adv 2022 \(Table 1\)\. Not yet approved by a local pharmacist\. ",
        text,
    )
    assert "Not locally approved" not in text


def test_print_page_names_the_pharmacist_who_approved_a_new_version(clinician, pharmacist, clinician_client):
    _publish_new_cnh_version(pharmacist, amount=Decimal("3"))
    text = _text(clinician_client.get(f"/assessments/{_bedside_assessment(clinician).id}/print/"))
    assert re.search(
        rf"Protocol version 2 \(in this app since \d+ \w+ \d{{4}} \d\d:\d\d UTC\)\. "
        rf"Approved for local use by {pharmacist.get_full_name()}\. ",
        text,
    )


def test_result_page_names_the_pharmacist_who_approved_a_new_version(clinician, pharmacist, clinician_client):
    _publish_new_cnh_version(pharmacist, amount=Decimal("3"))
    card = _answer_card(_text(clinician_client.get(f"/assessments/{_bedside_assessment(clinician).id}/")))
    assert re.search(
        rf"Protocol version 2 \(in this app since \d+ \w+ \d{{4}}\)\. "
        rf"Approved for local use by {pharmacist.get_full_name()}\. $",
        card,
    )
    assert "published letter" not in card


def test_print_page_shows_the_concentration_and_the_small_volume_note(clinician, clinician_client):
    assessment = _bedside_assessment(clinician, weight_kg=Decimal("3"))
    text = _text(clinician_client.get(f"/assessments/{assessment.id}/print/"))
    assert (
        "0.04 mL at 150 mg/mL Below 0.1 mL at 150 mg/mL, the volume is shown to 0.01 mL only: "
        "confirm with pharmacy how to measure it."
    ) in text


def test_result_page_compares_every_other_center_in_one_table(clinician, clinician_client):
    assessment = _bedside_assessment(clinician)
    html = clinician_client.get(f"/assessments/{assessment.id}/").content.decode()
    table = html[html.index('<table class="table compare-table') : html.index("</table>", html.index("compare-table"))]
    centers = re.findall(r'<th scope="row"[^>]*><a href="#center-([a-z]+)">', table)
    assert centers == ["chop", "musc", "nih", "seattle", "stjude"]


ICANS_3_BEFORE_TOCILIZUMAB = {
    "weight_kg": Decimal("45"),
    "toxicities": [{"type": "ICANS", "grade": 3}],
    "prior_tocilizumab_doses": 0,
}


def _compare_rows(html: str) -> dict[str, str]:
    """Each center's rows of the comparison table as visible text, by center slug."""
    table = html[html.index('<table class="table compare-table') : html.index("</table>", html.index("compare-table"))]
    chunks = re.split(r'(?=<th scope="row"[^>]*><a href="#center-)', table)[1:]
    return {re.search(r'#center-([a-z]+)"', c).group(1): _visible(c) for c in chunks}


def test_result_page_compare_row_of_a_not_indicated_center_shows_amounts_only_on_request(clinician, clinician_client):
    assessment = _bedside_assessment(clinician, institution="seattle", **ICANS_3_BEFORE_TOCILIZUMAB)
    html = clinician_client.get(f"/assessments/{assessment.id}/").content.decode()
    cnh = _compare_rows(html)["cnh"]
    assert cnh == (
        "Children's National Hospital v1 ○ Not indicated by this protocol "
        "ICANS grade 3: third-line use, after tocilizumab and steroids; needs prior tocilizumab and steroids "
        "given or starting; tocilizumab not yet given "
        "Amounts only if the criteria were met (not an order) Initial dosing "
        "anakinra 90 mg IV every 6 hours (2 mg/kg/dose; max 100 mg/dose, 400 mg/day) "
        "Per dose: 90 mg; per day: 360 mg/day; 0.6 mL at 150 mg/mL none"
    )
    # The amounts sit in a closed disclosure: shown only when asked for.
    row = html[html.index('href="#center-cnh"') : html.index('href="#center-musc"')]
    assert re.findall(r"<details[^>]*>", row) == ['<details class="amounts-on-request">']
    assert row.index("<summary>Amounts only if the criteria were met (not an order)</summary>") < row.index("90 mg")


def test_result_page_compare_row_of_a_consider_center_says_may_be_considered(clinician, clinician_client):
    assessment = _bedside_assessment(clinician)
    seattle = _compare_rows(clinician_client.get(f"/assessments/{assessment.id}/").content.decode())["seattle"]
    assert "May be considered under this protocol" in seattle
    assert "May be considered: anakinra 40 mg IV no more often than every 6 hours" in seattle
    assert "only if the criteria were met" not in seattle.lower()


def test_result_page_indicated_center_has_no_qualifier(clinician, clinician_client):
    card = _answer_card(_text(clinician_client.get(f"/assessments/{_bedside_assessment(clinician).id}/")))
    assert ("Only if the criteria" in card, "May be considered" in card, "<details" in card) == (False, False, False)


def test_result_page_chosen_card_of_a_not_indicated_center_shows_its_amounts_only_on_request(
    clinician, clinician_client
):
    assessment = _bedside_assessment(clinician, **ICANS_3_BEFORE_TOCILIZUMAB)
    html = clinician_client.get(f"/assessments/{assessment.id}/").content.decode()
    card = _answer_card(_visible(html))
    assert card.startswith(
        "anakinra for ICANS grade 3 · 45 kg · 8 years Children's National Hospital ○ Not indicated by this protocol "
        "ICANS grade 3: third-line use, after tocilizumab and steroids; needs prior tocilizumab and steroids given "
        "or starting; tocilizumab not yet given Amounts only if the criteria were met (not an order) "
        "Only if the criteria were met - not indicated now. For comparison only; not an order. "
        "Initial dosing (initial) Only if the criteria were met - not indicated now: anakinra 90 mg IV every 6 hours"
    )
    answer = html[html.index('class="answer-card') : html.index('class="answer-details"')]
    assert re.findall(r"<details[^>]*>", answer) == ['<details class="amounts-on-request">']


def test_print_page_of_a_not_indicated_center_heads_its_amounts_as_no_order(clinician, clinician_client):
    assessment = _bedside_assessment(clinician, **ICANS_3_BEFORE_TOCILIZUMAB)
    text = _text(clinician_client.get(f"/assessments/{assessment.id}/print/"))
    assert "tocilizumab not yet given Amounts only if the criteria were met (not indicated now): not an order" in text
    assert " Orders " not in text
    assert "Only if the criteria were met - not indicated now: anakinra 90 mg IV every 6 hours" in text


def test_result_page_puts_warnings_in_the_answer_card_and_information_after(clinician, clinician_client):
    assessment = _bedside_assessment(clinician, institution="musc", active_infection=True)
    html = clinician_client.get(f"/assessments/{assessment.id}/").content.decode()
    card = html[html.index('class="answer-card') : html.index('class="answer-details"')]
    details = html[html.index('class="answer-details"') : html.index('id="compare-heading"')]
    heading = r'<p class="warning-heading"><span class="warning-symbol" aria-hidden="true">.</span> ([^<]+)</p>'
    assert (re.findall(heading, card), re.findall(heading, details)) == (["Warnings"], ["For information"])
    # Right under the order lines: the last order comes before the warning.
    assert card.rindex('class="order"') < card.index("warning-warning")


def test_result_page_puts_the_st_jude_rounding_warning_under_its_order_line(clinician, clinician_client):
    assessment = _bedside_assessment(
        clinician,
        institution="stjude",
        weight_kg=Decimal("36.4"),
        toxicities=[{"type": "carHLH", "grade": 3}],
        late_onset_isolated=False,
    )
    card = _answer_card(_text(clinician_client.get(f"/assessments/{assessment.id}/")))
    assert card.index("anakinra 100 mg IV or subcut every 6 hours") < card.index(
        "! Warnings Step 1 (Initial dosing): 400 mg/day"
    )


def test_result_page_shows_inputs_grading_basis_and_intended_use(clinician, clinician_client):
    assessment = _bedside_assessment(clinician)
    text = _text(clinician_client.get(f"/assessments/{assessment.id}/"))
    assert (
        "CRS grade 3 (ASTCT) Calculated from findings; set by: hypotension requiring one vasopressor "
        "(with or without vasopressin)." in text
    )
    assert "Weight used 20 kg Age 8 years Tocilizumab doses given 1 Steroids given or starting Yes" in text
    assert "For clinicians treating CAR T-cell toxicities (CRS, ICANS, carHLH) in children and young adults." in text


def test_result_page_shows_the_stored_answer_after_a_newer_protocol_version(clinician, pharmacist, clinician_client):
    assessment = _bedside_assessment(clinician)
    _publish_new_cnh_version(pharmacist, amount=Decimal("3"))
    text = _text(clinician_client.get(f"/assessments/{assessment.id}/"))
    newer = _bedside_assessment(clinician)
    newer_text = _text(clinician_client.get(f"/assessments/{newer.id}/"))
    assert "anakinra 40 mg IV every 6 hours" in text and "Protocol version 1" in text
    assert "anakinra 60 mg IV every 6 hours" in newer_text and "Protocol version 2" in newer_text


def test_result_page_links_each_source_by_doi_and_pubmed(clinician, clinician_client):
    assessment = _bedside_assessment(
        clinician, institution="stjude", toxicities=[{"type": "carHLH", "grade": 3}], late_onset_isolated=False
    )
    html = clinician_client.get(f"/assessments/{assessment.id}/").content.decode()
    chosen = html[html.index('id="center-stjude"') : html.index('id="compare-heading"')]
    assert re.findall(r'<a (?:class="ident" )?href="([^"]+)"', chosen) == [
        "https://doi.org/10.1182/bloodadvances.2022006983",
        "https://doi.org/10.1111/bjh.17662",
        "https://pubmed.ncbi.nlm.nih.gov/34263927/",
        # the label (reference 8), cited for the 100 mg in 0.67 mL volume and the IV off-label rule
        "https://www.accessdata.fda.gov/drugsatfda_docs/label/2012/103950s51361bl.pdf",
    ]


def test_result_page_institution_parameter_puts_that_center_first(clinician, clinician_client):
    assessment = _bedside_assessment(clinician)
    text = _text(clinician_client.get(f"/assessments/{assessment.id}/?institution=musc"))
    assert _answer_card(text).startswith("anakinra for CRS grade 3 · 20 kg · 8 years Medical University of South")


def test_result_page_for_an_api_assessment_without_institution_lists_every_center(clinician, clinician_client):
    assessment = _api_assessment(clinician, institution=None)
    response = clinician_client.get(f"/assessments/{assessment.id}/")
    assert (response.context["view"].chosen, len(response.context["view"].others)) == (None, 6)
    assert "Anakinra: every center's answer" in _text(response)


def test_result_page_unknown_assessment_is_404(clinician_client):
    assert clinician_client.get("/assessments/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_result_page_contraindicated_shows_no_dose(clinician, clinician_client):
    assessment = _bedside_assessment(clinician, ecoli_protein_hypersensitivity=True)
    text = _text(clinician_client.get(f"/assessments/{assessment.id}/"))
    assert _answer_card(text).startswith(
        "anakinra for CRS grade 3 · 20 kg · 8 years Children's National Hospital ✕ Contraindicated: do not give "
    )
    assert "No dose is given: anakinra is contraindicated for this patient." in text
    assert " mg IV every" not in text


# --- Literature beside a protocol (nih: Table 2's own trial) -----------------------------------------

NIH_SEVERE_CARHLH_12_KG = {
    "weight_kg": Decimal("12"),
    "age_years": Decimal("3"),
    "toxicities": [{"type": "carHLH", "grade": 3}],
    "late_onset_isolated": False,
}
NIH_LITERATURE = (
    "Literature, not an order: this center's own published trial, to discuss with pharmacy (the protocol states "
    "no frequency) Lichtenstein et al; Shah et al (the letter's Table 2) gave 2.5 to 4 mg/kg/dose every 12 hours "
    "(2 doses a day), subcut. For 12 kg: 2.5 to 4 mg/kg/dose x 12 kg = 30 to 48 mg per dose; "
    "2 doses a day x 30 to 48 mg = 60 to 96 mg/day."
)


def test_result_page_shows_nihs_trial_regimen_once_as_literature(clinician, clinician_client):
    assessment = _bedside_assessment(clinician, institution="nih", **NIH_SEVERE_CARHLH_12_KG)
    html = clinician_client.get(f"/assessments/{assessment.id}/").content.decode()
    text = _visible(html)
    assert (text.count(NIH_LITERATURE), text.count("Literature, not an order")) == (1, 1)
    # In the details, never among the order lines.
    assert html.index('class="answer-details"') < html.index('class="literature"')
    assert "30 to 48 mg" not in _answer_card(text)


def test_print_page_shows_nihs_trial_regimen_as_literature(clinician, clinician_client):
    assessment = _bedside_assessment(clinician, institution="nih", **NIH_SEVERE_CARHLH_12_KG)
    text = _text(clinician_client.get(f"/assessments/{assessment.id}/print/"))
    assert text.count(NIH_LITERATURE) == 1


def test_result_page_shows_no_literature_where_the_protocol_states_a_frequency(clinician, clinician_client):
    assessment = _bedside_assessment(clinician, **NIH_SEVERE_CARHLH_12_KG)  # cnh first; nih in the comparison
    text = _text(clinician_client.get(f"/assessments/{assessment.id}/"))
    assert text.count("Literature, not an order") == 1  # nih's full card, among the other centers
    assert "Literature, not an order" not in _chosen(text)


def test_api_answer_carries_protocol_steps_and_no_literature(clinician, token_client):
    response = token_client.post(
        "/api/v1/recommendations",
        data=jsonutil.dumps({**NIH_SEVERE_CARHLH_12_KG, "prior_tocilizumab_doses": 0, "prior_steroids": True}),
        content_type="application/json",
    )
    body = response.content.decode()
    assert (response.status_code, "Lichtenstein et al; Shah et al" in body, "30 to 48" in body) == (200, False, False)


# --- Print page ------------------------------------------------------------------------------------


def test_print_page_has_write_in_lines_signatures_and_the_basis(clinician, clinician_client):
    assessment = _bedside_assessment(clinician)
    text = _text(clinician_client.get(f"/assessments/{assessment.id}/print/"))
    assert "Patient details are written by hand, never stored. Patient name Record number Date of birth" in text
    assert (
        "Weight used 20 kg Age 8 years Toxicities and grades CRS grade 3 (ASTCT) Center Children's National Hospital "
        "Protocol version 1" in text
    )
    assert "anakinra 40 mg IV every 6 hours (2 mg/kg/dose; max 100 mg/dose, 400 mg/day)" in text
    assert "Taper Taper over 3 days to 1 week" in text
    assert f"Assessment {assessment.id}" in text
    assert "Prescriber Date, time Pharmacist Date, time" in text


def test_print_page_keeps_the_status_as_a_symbol_and_words(clinician, clinician_client):
    assessment = _bedside_assessment(clinician, institution="seattle")
    html = clinician_client.get(f"/assessments/{assessment.id}/print/").content.decode()
    assert re.search(
        r'<p class="status status-consider"><span class="status-symbol" aria-hidden="true">\?</span> '
        r'<span class="status-label">May be considered under this protocol</span></p>',
        html,
    )


def test_print_page_headings_go_down_one_level_at_a_time(clinician, clinician_client):
    assessment = _bedside_assessment(clinician)
    html = clinician_client.get(f"/assessments/{assessment.id}/print/").content.decode()
    levels = [int(level) for level in re.findall(r"<h([1-6])\b", html)]
    assert (levels[0], all(b - a <= 1 for a, b in itertools.pairwise(levels))) == (1, True), levels


def test_print_page_uses_safe_notation(clinician, clinician_client):
    assessment = _bedside_assessment(clinician, institution="musc", weight_kg=Decimal("20.5"))
    text = _text(clinician_client.get(f"/assessments/{assessment.id}/print/"))
    assert "anakinra 82 mg subcut every 12 hours (4 mg/kg/dose)" in text
    assert "0.55 mL" in text
    assert "20.5 kg" in text
    assert re.findall(r"\bSC\b|\bSQ\b|\d\.0 |(?<![\w.])\.\d", text) == []


def test_print_page_without_a_chosen_center_offers_the_choice(clinician, clinician_client):
    assessment = _api_assessment(clinician, institution=None)
    text = _text(clinician_client.get(f"/assessments/{assessment.id}/print/"))
    assert "Choose the center to print" in text and "Patient name" not in text


def test_print_page_stores_no_patient_identifier(clinician, clinician_client):
    assessment = _bedside_assessment(clinician)
    html = clinician_client.get(f"/assessments/{assessment.id}/print/").content.decode()
    assert re.findall(r"<input|<form", html[html.index('class="order-summary"') :]) == []


# --- A stored answer and the versions in force since ------------------------------------------------


def test_result_page_says_a_newer_version_is_in_force_without_changing_the_stored_answer(clinician, clinician_client):
    assessment = _bedside_assessment(clinician)
    stored = Assessment.objects.get(pk=assessment.pk).recommendations
    before = _text(clinician_client.get(f"/assessments/{assessment.id}/"))
    pharmacist = UserFactory(username="pub", role="pharmacist")
    newer = protocol_version_draft_create(protocol=Protocol.objects.get(institution__slug="cnh"), author=pharmacist)
    protocol_version_publish(version=newer, approved_by=pharmacist)

    after = _text(clinician_client.get(f"/assessments/{assessment.id}/"))

    assert "This answer used an earlier protocol version." not in before
    assert (
        "This answer used an earlier protocol version. Since it was worked out, Children's National Hospital "
        "published a newer version. This saved answer has not changed: it still shows what the earlier version "
        "gave. Children's National Hospital: this answer used version 1; version 2 is in force since"
    ) in after
    assert (
        "Before ordering from it, run it again with the same answers and use the new answer. "
        "Run it again with the same answers"
    ) in after
    assert Assessment.objects.get(pk=assessment.pk).recommendations == stored
    assert after.count("Protocol version 1") >= 1 and "Protocol version 2" not in after

    # "Run it again" fills the wizard with this answer's inputs; sent, they give an answer under version 2.
    assert clinician_client.post(f"/wizard/from/{assessment.id}/")["Location"] == "/wizard/toxicities/"
    step = clinician_client.get("/wizard/toxicities/")
    assert [str(m) for m in step.context["messages"]] == [
        "Every answer of this assessment is filled in again, except the findings behind its computed CRS grade "
        "(not kept with it): enter them again. Change what you need."
    ]
    answers = clinician_client.session["bedside_wizard"]["answers"]["toxicities"]
    findings = {"crs_hypotension": "one_vasopressor", "crs_oxygen": "none"}  # grade 3, as set before
    again = clinician_client.post("/wizard/toxicities/", {**answers, **findings, "action": "next"})
    rerun = Assessment.objects.exclude(pk=assessment.pk).get()
    assert (again["Location"], rerun.inputs) == (f"/assessments/{rerun.id}/", assessment.inputs)
    rerun_page = _text(clinician_client.get(again["Location"]))
    assert ("Protocol version 2" in rerun_page, "This answer used an earlier protocol version." in rerun_page) == (
        True,
        False,
    )


def test_print_of_an_answer_under_a_superseded_version_says_a_newer_version_is_in_force(clinician, clinician_client):
    assessment = _bedside_assessment(clinician)  # every center; cnh chosen
    before = _text(clinician_client.get(f"/assessments/{assessment.id}/print/"))
    pharmacist = UserFactory(username="pub-print", role="pharmacist")
    newer = protocol_version_draft_create(protocol=Protocol.objects.get(institution__slug="cnh"), author=pharmacist)
    protocol_version_publish(version=newer, approved_by=pharmacist)

    after = _text(clinician_client.get(f"/assessments/{assessment.id}/print/"))
    other_center = _text(clinician_client.get(f"/assessments/{assessment.id}/print/?institution=seattle"))

    assert "A newer version is in force" not in before
    # In the version line of the center printed: "Protocol version 1 (...). <source>. <approval>. A newer ..."
    assert re.search(
        r"Protocol version 1 \(in this app since [^)]+\)\. From the published letter: [^\n]+? Not yet approved by a "
        r"local pharmacist\. A newer version is in force: version 2 since \d+ \w+ \d{4} \d\d:\d\d UTC\. Run the "
        r"assessment again for it\.",
        after,
    ), after
    # The order is still the stored one (2 x 20 = 40 mg), and a center whose version is still in force prints
    # no notice.
    assert "anakinra 40 mg IV every 6 hours" in after
    assert "A newer version is in force" not in other_center


# --- Query counts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("institution", [None, "cnh"])
def test_result_page_query_count_is_fixed(clinician, clinician_client, django_assert_num_queries, institution):
    # One center (an API assessment for one institution) or all six: the same queries.
    assessment = _api_assessment(clinician, institution) if institution else _bedside_assessment(clinician)
    clinician_client.get(f"/assessments/{assessment.id}/")  # the published catalog is cached per process
    # session, user, assessment with its author, grading and literature, the catalog revision (is a newer
    # version in force?)
    with django_assert_num_queries(4):
        assert clinician_client.get(f"/assessments/{assessment.id}/").status_code == 200


@pytest.mark.parametrize("institution", [None, "cnh"])
def test_print_page_query_count_is_fixed(clinician, clinician_client, django_assert_num_queries, institution):
    assessment = _api_assessment(clinician, institution) if institution else _bedside_assessment(clinician)
    clinician_client.get(f"/assessments/{assessment.id}/print/")  # the published catalog is cached per process
    # session, user, assessment with its author, grading and literature, the catalog revision (is a newer
    # version in force?), as on the result page
    with django_assert_num_queries(4):
        assert clinician_client.get(f"/assessments/{assessment.id}/print/").status_code == 200


@pytest.mark.parametrize(
    ("query", "shown"),
    [("?toxicity=CRS&population=pediatric", 1), ("?toxicity=carHLH&population=pediatric", 3), ("", 9)],
)
def test_evidence_page_query_count_is_fixed(clinician_client, django_assert_num_queries, query, shown):
    with django_assert_num_queries(5):  # session, user, studies, their references, reference list
        response = clinician_client.get(f"/evidence/{query}")
    assert len(response.context["studies"]) == shown


@pytest.mark.parametrize("extra_institutions", [0, 2])
def test_protocol_list_query_count_is_fixed(clinician_client, django_assert_num_queries, extra_institutions):
    InstitutionFactory.create_batch(extra_institutions)
    with django_assert_num_queries(4):  # session, user, institutions with protocols, published versions
        response = clinician_client.get("/protocols/")
    assert len(response.context["rows"]) == 6 + extra_institutions


@pytest.mark.parametrize("versions", [1, 3])
def test_protocol_detail_query_count_is_fixed(clinician_client, django_assert_num_queries, versions):
    protocol = Protocol.objects.get(institution__slug="cnh")
    author = UserFactory(username="detail-author", role="pharmacist")
    for _ in range(2, versions + 1):
        # A full copy of the live version (one open version per protocol), published in turn.
        newer = protocol_version_draft_create(protocol=protocol, author=author)
        protocol_version_publish(version=newer, approved_by=None, approval_source="tests")
    # session, user, institution, versions, then the published version with citations, rules, steps, step citations
    with django_assert_num_queries(9):
        response = clinician_client.get("/protocols/cnh/")
    assert len(response.context["detail"].versions) == versions


# --- Reading pages ---------------------------------------------------------------------------------


def test_evidence_page_filters_by_toxicity_and_population(clinician_client):
    response = clinician_client.get("/evidence/?toxicity=carHLH&population=pediatric")
    assert [s.label for s in response.context["studies"]] == [
        "Lichtenstein et al; Shah et al",
        "Dreyzin et al",
        "Hines et al",
    ]


def test_evidence_page_adult_crs_studies(clinician_client):
    response = clinician_client.get("/evidence/?toxicity=CRS&population=adult")
    assert [s.label for s in response.context["studies"]] == [
        "Jatiani et al",
        "Oliai et al",
        "Gazeau et al",
        "Park et al",
    ]


def test_evidence_page_ignores_an_unknown_filter_with_a_message(clinician_client):
    response = clinician_client.get("/evidence/?toxicity=fever")
    assert (len(response.context["studies"]), "Unknown filter ignored" in response.content.decode()) == (9, True)


def test_evidence_page_links_references_by_doi_and_pubmed(clinician_client):
    html = clinician_client.get("/evidence/").content.decode()
    assert '<a href="https://doi.org/10.1111/bjh.17662" rel="noopener">doi:10.1111/bjh.17662</a>' in html
    assert '<a href="https://pubmed.ncbi.nlm.nih.gov/34263927/" rel="noopener">PubMed 34263927</a>' in html


def test_evidence_page_reference_without_volume_or_pages_has_clean_separators(clinician_client):
    Reference.objects.create(
        key="no-volume",
        short_label="Doe J. Blood 2024",
        authors="Doe J, et al.",
        title="Anakinra in practice.",
        journal="Blood",
        year=2024,
        pmid="12345678",
    )
    html = clinician_client.get("/evidence/").content.decode()
    assert (
        '<span class="reference-text">Doe J, et al. Anakinra in practice. Blood. 2024.</span> '
        '<a href="https://pubmed.ncbi.nlm.nih.gov/12345678/" rel="noopener">PubMed 12345678</a>'
    ) in html


def test_evidence_page_lists_lee_2019_without_an_empty_title(clinician_client):
    html = clinician_client.get("/evidence/").content.decode()
    assert (
        '<span class="reference-text">Lee DW, et al. Biol Blood Marrow Transplant. 2019;25(4):625-638.</span> '
        '<a href="https://doi.org/10.1016/j.bbmt.2018.12.758" rel="noopener">doi:10.1016/j.bbmt.2018.12.758</a> '
        '<a href="https://pubmed.ncbi.nlm.nih.gov/30592986/" rel="noopener">PubMed 30592986</a>'
    ) in html


def test_protocol_list_flags_protocols_without_a_review_date(clinician_client):
    text = _text(clinician_client.get("/protocols/"))
    assert text.count("No review date set") == 6


def test_protocol_detail_shows_governance_history_and_an_overdue_review(clinician_client, pharmacist):
    _publish_new_cnh_version(pharmacist, amount=Decimal("3"), next_review=timezone.localdate() - timedelta(days=1))
    response = clinician_client.get("/protocols/cnh/")
    text = _text(response)
    overdue = (timezone.localdate() - timedelta(days=1)).strftime("%d %b %Y")
    assert f"Review overdue since {overdue}." in text
    assert f"Checked and approved by {pharmacist.get_full_name()}" in text
    assert [(v.number, v.status) for v in response.context["detail"].versions] == [
        (2, VersionStatus.PUBLISHED),
        (1, VersionStatus.RETIRED),
    ]
    assert "3 mg/kg/dose" in text


def test_protocol_detail_shows_the_current_steps_as_data(clinician_client):
    text = _text(clinician_client.get("/protocols/stjude/"))
    assert "10 mg/kg/day; round to 100 mg multiples within 10%" in text
    assert "IV or subcut, every 6 hours" in text


def test_protocol_detail_for_an_institution_without_a_protocol(clinician_client):
    institution = InstitutionFactory()
    text = _text(clinician_client.get(f"/protocols/{institution.slug}/"))
    assert "No published protocol" in text


def test_protocol_detail_unknown_slug_is_404(clinician_client):
    assert clinician_client.get("/protocols/nowhere/").status_code == 404


# --- Clinical review round 2 on the pages --------------------------------------------------------------


def test_evidence_page_marks_doses_as_quoted_from_the_study(clinician_client):
    html = clinician_client.get("/evidence/").content.decode()
    assert '<q class="as-reported">2.5-4 mg/kg/dose twice daily, SC</q>' in html
    text = _visible(html)
    assert '"SC" there is the study\'s wording for subcutaneous (this app writes "subcut")' in text
    # The letter's wording kept: steroids and ruxolitinib; the caveat on infection risk; a leading zero.
    assert "with steroids (3) and ruxolitinib (1)" in text
    assert "(P = 0.17)" in text
    assert "could not be separated" in text


def test_evidence_page_reference_8_has_no_author_and_16_its_printed_source(clinician_client):
    html = clinician_client.get("/evidence/").content.decode()
    assert '<span class="reference-text">FDA Package Insert: Kineret.</span>' in html
    assert "Evidence for use of siltuximab or anakinra" in html and "In: Service UNH ed. 2019." in html


def test_chop_print_says_the_cap_lowered_only_the_escalation_ceiling(clinician, clinician_client):
    # 51 kg: 2 x 51 = 102 mg/day (not capped); ceiling 10 x 51 = 510 mg/day, capped at 400 mg/day
    assessment = _bedside_assessment(clinician, institution="chop", weight_kg=51)
    text = _text(clinician_client.get(f"/assessments/{assessment.id}/print/"))
    assert "escalation ceiling 10 mg/kg/day = 510 mg/day, capped at 400 mg/day" in text
    assert "max 400 mg per day (not reached by this amount; caps the escalation ceiling)" in text
    assert "cap applied" not in text


def test_cnh_grade_2_result_reads_may_be_considered(clinician, clinician_client):
    grading = [{**CRS_GRADING[0], "grade": 2, "set_by": ["hypotension not requiring vasopressors"]}]
    request = RecommendationRequest.model_validate(
        {**CRS_3_AFTER_TOCILIZUMAB_AND_STEROIDS, "toxicities": [{"type": "CRS", "grade": 2}], "institution": "cnh"}
    )
    assessment = bedside_assessment_create(request=request, gradings=grading, user=clinician)
    text = _text(clinician_client.get(f"/assessments/{assessment.id}/"))
    assert "May be considered under this protocol" in text
    assert "this center tapers anakinra once CRS/ICANS is grade 2 or lower" in text


def test_result_computed_under_earlier_rules_is_shown_as_answered_and_says_so(clinician, clinician_client):
    # An answer stored before clinical review round 2: chop at 51 kg with the ceiling's cap in capped_by, and
    # no max_escalation_capped_by or escalation_text (fields that did not exist then).
    assessment = _bedside_assessment(clinician, institution="chop", weight_kg=51)
    stored = assessment.recommendations
    chop = next(r for r in stored if r["institution"]["slug"] == "chop")
    step = chop["steps"][0]
    step["capped_by"] = ["max_daily_dose"]
    del step["max_escalation_capped_by"], step["escalation_text"]
    step["cap_notes"] = ["escalation ceiling 510 mg/day is above the 400 mg/day maximum: escalate up to 400 mg/day"]
    Assessment.objects.filter(pk=assessment.pk).update(recommendations=stored, rules_revision=1)

    text = _text(clinician_client.get(f"/assessments/{assessment.id}/"))
    # Shown as it was answered (the old words and flag), with the rules it was computed under.
    assert "escalation ceiling 510 mg/day is above the 400 mg/day maximum: escalate up to 400 mg/day" in text
    assert "max 400 mg per day ( cap applied )" in text  # (the flag is in <strong>)
    assert "Computed under earlier rules. Computed under the app's clinical rules revision 1" in text
    print_text = _text(clinician_client.get(f"/assessments/{assessment.id}/print/"))
    # The printout names the revision and where to read what differed; the whole note stays on the result page.
    assert (
        "Computed under earlier rules (the app's clinical rules revision 1): the amounts are as computed then; "
        "the assessment page says what differed. Run it again for the current rules." in print_text,
        "Computed under the app's clinical rules revision 1" in print_text,
    ) == (True, False)
    current = _text(clinician_client.get(f"/assessments/{_bedside_assessment(clinician).id}/"))
    assert "Computed under earlier rules" not in current


def test_protocol_page_shows_grade_bands_and_the_comparison_amounts(clinician_client):
    text = _text(clinician_client.get("/protocols/cnh/"))
    assert "Consider : CRS, ICANS grade 1 to 2, after 1 or more tocilizumab dose" in text  # (status in <strong>)
    assert ("400 mg/day: the per-day cap Children's National, Seattle Children's and CHOP state") in text
    seattle = _text(clinician_client.get("/protocols/seattle/"))
    assert "From 2 tocilizumab doses: the protocol places anakinra before a repeat tocilizumab dose" in seattle
