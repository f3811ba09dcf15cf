"""Safe-notation filters, result words, and reading a link's parameters: no database."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from bedside import presentation, wizard
from bedside.templatetags import notation
from evidence.models import Reference
from protocols.models import ProtocolVersion

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (Decimal("40.0"), "mg", "40 mg"),
        (40, "mg", "40 mg"),
        (Decimal("0.5"), "mg", "0.5 mg"),
        (Decimal("480.55"), "mg", "480.6 mg"),
        (Decimal("20.125"), "kg", "20.125 kg"),
        (Decimal("20.100"), "kg", "20.1 kg"),
        (Decimal("2.25"), "mg/kg/dose", "2.25 mg/kg/dose"),
        (Decimal("0.27"), "mL", "0.27 mL"),
    ],
)
def test_amount_filter_writes_safe_notation(value, unit, text):
    assert notation.amount(value, unit) == text


def test_amount_filter_leaves_an_empty_value_empty():
    assert (notation.amount(None), notation.amount("")) == ("", "")


def test_amount_filter_refuses_a_float():
    with pytest.raises(TypeError):
        notation.amount(0.1, "mg")


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        ({"low": Decimal("8"), "high": Decimal("10")}, "mg/kg/day", "8 to 10 mg/kg/day"),
        ({"low": 40, "high": 40}, "mg", "40 mg"),
        ({"low": Decimal("0.27"), "high": Decimal("0.27")}, "mL", "0.27 mL"),
        (None, "mg", ""),
    ],
)
def test_dose_range_filter_says_to_not_a_dash(value, unit, text):
    assert notation.dose_range(value, unit) == text


def test_routes_words_say_subcut_not_sc():
    assert notation.routes_words(["IV", "SC"]) == "IV or subcut"


@pytest.mark.parametrize(
    ("step", "text"),
    [
        ({"interval_hours": 6, "interval_is_maximum": False}, "every 6 hours"),
        (
            {"interval_hours": 6, "interval_is_maximum": True},
            "no more often than every 6 hours, at most 4 doses a day",
        ),
        (
            {"interval_hours": 24, "interval_is_maximum": True},
            "no more often than every 24 hours, at most 1 dose a day",
        ),
        (
            {"interval_hours": None, "interval_is_maximum": False},
            "not specified by this protocol - confirm with pharmacy",
        ),
    ],
)
def test_interval_words(step, text):
    assert notation.interval_words(step) == text


def test_differs_compares_stored_ranges_exactly():
    assert (
        notation.differs({"low": 95, "high": 95}, {"low": 100, "high": 100}),
        notation.differs({"low": Decimal("40.0"), "high": 40}, {"low": 40, "high": 40}),
    ) == (True, False)


def test_chosen_slug_prefers_the_page_address_then_the_wizard_choice():
    slugs = ["chop", "cnh", "musc"]
    assert [
        presentation.chosen_slug_for({"institution": "cnh"}, "musc", slugs),
        presentation.chosen_slug_for({"institution": "cnh"}, "nowhere", slugs),
        presentation.chosen_slug_for({"institution": None}, None, slugs),
        presentation.chosen_slug_for({"institution": None}, None, ["cnh"]),
    ] == ["musc", "cnh", None, "cnh"]


def test_toxicity_rows_say_how_each_grade_was_reached():
    inputs = {
        "toxicities": [{"type": "CRS", "grade": 2}, {"type": "ICANS", "grade": 1}, {"type": "carHLH", "grade": 3}]
    }
    grading = [
        {"type": "CRS", "grade": 2, "method": "computed", "set_by": ["blow-by oxygen"]},
        {"type": "ICANS", "grade": 1, "method": "picked", "set_by": []},
    ]
    assert presentation.toxicity_rows(inputs, grading) == [
        {
            "type": "CRS",
            "label": "CRS grade 2 (ASTCT)",
            "short": "CRS grade 2",
            "basis": "Calculated from findings; set by: blow-by oxygen.",
        },
        {
            "type": "ICANS",
            "label": "ICANS grade 1 (ASTCT)",
            "short": "ICANS grade 1",
            "basis": "Picked by the clinician.",
        },
        {
            "type": "carHLH",
            "label": "carHLH clinician-entered severity 3 (severe)",
            "short": "carHLH severity 3",
            "basis": ("Clinician-entered: carHLH has no consensus definition and no ASTCT grade."),
        },
    ]


def test_toxicity_rows_basis_says_what_waived_fever():
    inputs = {"toxicities": [{"type": "CRS", "grade": 3}]}
    grading = [
        {
            "type": "CRS",
            "grade": 3,
            "method": "computed",
            "set_by": ["facemask, non-rebreather or Venturi mask"],
            "notes": ["Fever is not required: tocilizumab has been given."],
        }
    ]
    assert presentation.toxicity_rows(inputs, grading)[0]["basis"] == (
        "Calculated from findings; set by: facemask, non-rebreather or Venturi mask. "
        "Fever is not required: tocilizumab has been given."
    )


def test_present_recommendation_groups_warnings_and_names_the_status():
    rec = {
        "status": "consider",
        "protocol": {"version": 1, "published_at": None, "approved_by": "x"},
        "steps": [],
        "warnings": [
            {"code": "infection", "severity": "warning", "text": "A"},
            {"code": "iv_off_label", "severity": "info", "text": "B"},
        ],
    }
    shown = presentation.present_recommendation(rec)
    assert (shown["status_text"], [g["heading"] for g in shown["warning_groups"]], shown["key_warnings"]) == (
        "May be considered under this protocol",
        ["Warnings", "For information"],
        ["active infection"],
    )
    assert ([g["heading"] for g in shown["urgent_groups"]], [g["heading"] for g in shown["info_groups"]]) == (
        ["Warnings"],
        ["For information"],
    )


@pytest.mark.parametrize(
    ("status", "short", "symbol"),
    [
        ("indicated", "Indicated", "✓"),
        ("consider", "May be considered", "?"),
        ("not_indicated", "Not indicated", "○"),
        ("contraindicated", "Contraindicated", "✕"),
    ],
)
def test_present_recommendation_keeps_a_word_and_a_symbol_for_every_status(status, short, symbol):
    rec = {"status": status, "protocol": {"version": 1}, "steps": [], "warnings": []}
    shown = presentation.present_recommendation(rec)
    assert (shown["status_short"], shown["status_symbol"], shown["amounts_on_request"]) == (short, symbol, False)


@pytest.mark.parametrize(
    ("next_review", "flag"),
    [
        (None, "No review date set"),
        (date(2026, 1, 9), "Review overdue since 09 Jan 2026"),
        (date(2026, 1, 10), ""),
    ],
)
def test_review_flag(next_review, flag):
    version = ProtocolVersion(number=1, next_review=next_review)
    assert presentation.review_flag(version, today=date(2026, 1, 10)) == flag


def test_prefill_reads_api_named_parameters():
    prefill = wizard.prefill_from_query(
        {"weight_kg": "12.5", "prior_steroids": "TRUE", "active_infection": "false", "institution": "cnh"},
        frozenset({"cnh"}),
    )
    assert (prefill.answers, prefill.invalid, prefill.unknown) == (
        {
            "patient": {
                "weight_kg": "12.5",
                "prior_steroids": "true",
                "active_infection": "false",
                "institution": "cnh",
            },
        },
        (),
        (),
    )


def test_prefill_never_takes_grades_from_a_link():
    prefill = wizard.prefill_from_query({"toxicities": "CRS:4", "crs_grade": "4"}, frozenset())
    assert (prefill.answers, prefill.unknown) == ({}, ("toxicities", "crs_grade"))


def _reference(**fields):
    base = {"key": "r", "short_label": "r", "authors": "Lee DW, et al.", "title": "", "journal": "", "year": None}
    return Reference(**{**base, **fields})


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        (
            {"journal": "Biol Blood Marrow Transplant", "year": 2019, "volume": "25", "issue": "4", "pages": "625-638"},
            "Lee DW, et al. Biol Blood Marrow Transplant. 2019;25(4):625-638.",
        ),
        (
            {"authors": "Hines MR, Keenan C", "title": "Anakinra for carHLH", "journal": "Br J Haematol", "year": 2021},
            "Hines MR, Keenan C. Anakinra for carHLH. Br J Haematol. 2021.",
        ),
        ({"title": "Does it work?", "journal": "Blood", "year": 2020, "volume": "136"}, None),
        ({"journal": "Blood", "pages": "e1"}, "Lee DW, et al. Blood. e1."),
        ({}, "Lee DW, et al."),
    ],
)
def test_reference_text_has_no_double_periods_or_dangling_separators(fields, text):
    result = presentation.reference_text(_reference(**fields))
    expected = text or "Lee DW, et al. Does it work? Blood. 2020;136."
    assert (result, ".." in result, " ," in result) == (expected, False, False)


LETTER = {"label": "Diorio C, Vatsayan A, et al. Blood Adv 2022 (Table 1)", "doi": "10.1182/x"}


@pytest.mark.parametrize(
    ("approved_by", "locally_approved", "citations", "shown"),
    [
        ("Ana Pharmacist", True, [LETTER], "Approved for local use by Ana Pharmacist."),
        (
            "Not locally approved: loaded from the reviewed data file (Diorio et al., Blood Adv 2022, Table 1)",
            False,
            [LETTER, {"label": "Dreyzin A, et al. 2021"}],
            "From the published letter: Diorio C, Vatsayan A, et al. Blood Adv 2022 (Table 1). "
            "Not yet approved by a local pharmacist.",
        ),
        ("", False, [], "Not yet approved by a local pharmacist."),
        (None, True, [], "Not yet approved by a local pharmacist."),
    ],
)
def test_approval_text_says_the_source_and_whether_a_local_pharmacist_approved(
    approved_by, locally_approved, citations, shown
):
    rec = {
        "protocol": {"id": 1, "version": 1, "published_at": None, "approved_by": approved_by},
        "citations": citations,
    }
    rec["protocol"]["approved_locally"] = locally_approved
    assert presentation.approval_text(rec) == shown


NIH_REGIMEN = {
    "institution": "nih",
    "study_key": "lichtenstein-shah",
    "study_label": "Lichtenstein et al; Shah et al",
    "references": [],
    "dose_basis": "mg/kg/dose",
    "amount": {"low": Decimal("2.5"), "high": Decimal("4")},
    "interval_hours": 12,
    "routes": ["SC"],
    "weight_kg": Decimal("12"),
    "per_dose_mg": {"low": Decimal("30"), "high": Decimal("48")},
    "per_day_mg": {"low": Decimal("60"), "high": Decimal("96")},
    "doses_per_day": 2,
    "arithmetic": ["2.5 to 4 mg/kg/dose x 12 kg = 30 to 48 mg per dose"],
}


def _nih(status: str, interval_hours: int | None) -> dict:
    return {"institution": {"slug": "nih"}, "status": status, "steps": [{"interval_hours": interval_hours}]}


@pytest.mark.parametrize(
    ("rec", "shown"),
    [
        (_nih("indicated", None), 1),
        (_nih("consider", None), 1),
        (_nih("not_indicated", None), 0),
        (_nih("contraindicated", None), 0),
        (_nih("indicated", 12), 0),  # the protocol states a frequency: nothing to fill in
        ({**_nih("indicated", None), "institution": {"slug": "cnh"}}, 0),  # another center's trial
    ],
)
def test_literature_shown_only_with_its_own_center_where_the_protocol_states_no_frequency(rec, shown):
    assert len(presentation.literature_shown(rec, [NIH_REGIMEN])) == shown


def test_present_literature_says_the_regimen_in_safe_notation():
    words = presentation.present_literature(NIH_REGIMEN)
    assert (words["amount_text"], words["interval_text"], words["routes_text"], words["weight_text"]) == (
        "2.5 to 4 mg/kg/dose",
        "every 12 hours (2 doses a day)",
        "subcut",
        "12 kg",
    )
