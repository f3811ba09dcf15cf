"""The words of a result are built once (engine.text.StepWords), by the presentation layer, and card detail is
rendered from templates with every data value markdown-escaped (docs/architecture/wording.md)."""

from __future__ import annotations

import ast
import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from cds_hooks import cards
from cds_hooks.fhir_read import DraftReading, Weight
from cds_hooks.templatetags.card_markdown import markdown_escape
from engine.data import Citation, ProtocolData, Rule, Step, StepResult
from engine.dosing import step_dose
from engine.order_check import DraftDose, order_check
from engine.present import step_dict
from engine.text import StepWords, step_words
from engine.vocabulary import DoseBasis, Route, StepKind, Toxicity

pytestmark = pytest.mark.unit

D = Decimal
ROOT = Path(__file__).resolve().parents[2]


def _step(name: str = "Starting dose", **overrides) -> Step:
    values = dict(
        kind=StepKind.INITIAL,
        name=name,
        toxicities=frozenset({Toxicity.CRS, Toxicity.ICANS}),
        dose_basis=DoseBasis.MG_PER_KG_PER_DOSE,
        amount_low=D(2),
        amount_high=D(2),
        routes=(Route.IV,),
        interval_hours=6,
        min_grade=2,
        max_grade=4,
        max_single_dose_mg=D(100),
        citations=(Citation(key="ref1", label="Reference one", doi="10.1000/one"),),
    )
    values.update(overrides)
    return Step(**values)


def _protocol(*steps: Step) -> ProtocolData:
    return ProtocolData(
        institution_slug="test",
        institution_name="Test Center",
        version_id=1,
        version_number=3,
        published_at=datetime(2026, 1, 2, 12, 0, tzinfo=UTC),
        approved_by="P. Harmacist",
        rules=(Rule(toxicities=frozenset(Toxicity), summary="test rule"),),
        steps=steps or (_step(),),
    )


def _facts() -> cards.Facts:
    weight = Weight(kg=D(20), effective="2026-01-02", problem="")
    return cards.Facts(weight=weight, age_years=9, allergies=cards.AllergyCheck())


def hand_worked_card(step: Step | None = None) -> dict:
    """2 mg/kg/dose every 6 hours at 20 kg: 40 mg per dose, 160 mg/day; the draft is 40 mg IV every 6 hours."""
    protocol = _protocol(step or _step())
    draft = DraftReading(
        dose=DraftDose(per_dose_mg=D(40), doses_per_day=D(4), route=Route.IV),
        interval_hours=D(6),
        description="anakinra 40 mg IV every 6 hours",
    )
    check = order_check(protocol=protocol, weight_kg=D(20), draft=draft.dose)
    setting = cards.CardSetting(base_url="https://cds.example", protocol=protocol, institution_slug="test")
    return cards.dose_card(check=check, draft=draft, request={}, facts=_facts(), setting=setting)


def _result() -> StepResult:
    return step_dose(step=_step(), weight_kg=D(20), concentration_mg_per_ml=D(150))


def test_step_words_are_frozen_and_equal_when_built_from_the_same_numbers():
    words = step_words(_result())
    with pytest.raises(dataclasses.FrozenInstanceError):
        words.order_text = "changed"  # type: ignore[misc]
    assert words == step_words(_result())
    assert (words.order_text, words.arithmetic) == (
        "anakinra 40 mg IV every 6 hours (2 mg/kg/dose; max 100 mg/dose)",
        ("2 mg/kg/dose x 20 kg = 40 mg per dose", "4 doses a day x 40 mg = 160 mg/day"),
    )


def test_step_result_carries_numbers_and_no_words():
    names = {f.name for f in dataclasses.fields(StepResult)}
    assert not names & {"order_text", "arithmetic", "cap_notes", "rounding", "escalation_text"}
    assert [n for n in ("order_text", "arithmetic", "cap_notes", "escalation_text") if hasattr(StepResult, n)] == []


def test_engine_data_does_not_import_the_words():
    tree = ast.parse((ROOT / "engine" / "data.py").read_text(encoding="utf-8"))
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert {"engine.text", "engine"} & imported == set()


def test_step_dict_uses_the_words_it_is_given():
    result = _result()
    words = dataclasses.replace(step_words(result), order_text="given once")
    assert step_dict(result, words)["order_text"] == "given once"


def test_dose_card_builds_each_steps_words_once(monkeypatch):
    built: list[StepResult] = []

    def counted(result: StepResult) -> StepWords:
        built.append(result)
        return step_words(result)

    monkeypatch.setattr(cards, "step_words", counted)
    hand_worked_card()
    assert len(built) == 1


def test_markdown_escape_shows_every_special_character_literally():
    assert markdown_escape("a\\b`c*d_e[f]g<h>i|j~k#l") == "a\\\\b\\`c\\*d\\_e\\[f\\]g\\<h\\>i\\|j\\~k\\#l"


def test_markdown_escape_leaves_plain_words_and_ampersands():
    assert markdown_escape("2 mg/kg/dose x 20 kg = 40 mg & more") == "2 mg/kg/dose x 20 kg = 40 mg & more"


def test_card_detail_escapes_markdown_in_data_and_not_html():
    detail = hand_worked_card(_step(name="Dose <b> & *x*"))["detail"]
    assert "**Dose \\<b\\> & \\*x\\*** (CRS, ICANS, grades 2 to 4): anakinra 40 mg IV" in detail
    assert "&amp;" not in detail and "&lt;" not in detail


def test_card_detail_of_a_hand_worked_case():
    # 2 mg/kg/dose x 20 kg = 40 mg, every 6 hours: 4 x 40 = 160 mg/day; the draft is exactly that.
    card = hand_worked_card()
    assert (
        card["summary"]
        == "Anakinra 40 mg matches the Test Center protocol (Starting dose) for 20 kg; indication not assessed"
    )
    assert card["detail"] == EXPECTED_DETAIL


EXPECTED_DETAIL = "\n".join(
    (
        "**Indication not assessed.** The EHR does not send the toxicity, its grade, or prior "
        "tocilizumab and steroids, so this card only checks the dose arithmetic. Open the bedside "
        "wizard (link below) to enter them and see the protocol's recommendation.",
        "",
        "#### Check",
        "",
        "- The draft matches what this protocol gives for this weight: Starting dose.",
        "",
        "#### Inputs used",
        "",
        "| Input | Value | Source |",
        "|---|---|---|",
        "| Weight | 20 kg | Observation LOINC 29463-7, 2026-01-02 |",
        "| Age | 9 years | Patient.birthDate |",
        "| Drafted order | anakinra 40 mg IV every 6 hours | MedicationRequest/(no id) |",
        "| Anakinra allergy | none recorded for anakinra | AllergyIntolerance |",
        "| Toxicity and grade | not sent by the EHR | enter in the bedside wizard |",
        "| Prior tocilizumab and steroids | not sent by the EHR | enter in the bedside wizard |",
        "",
        "#### What the protocol gives for 20 kg",
        "",
        "**Starting dose** (CRS, ICANS, grades 2 to 4): anakinra 40 mg IV every 6 hours (2 "
        "mg/kg/dose; max 100 mg/dose)",
        "",
        "- 2 mg/kg/dose x 20 kg = 40 mg per dose",
        "- 4 doses a day x 40 mg = 160 mg/day",
        "",
        "#### Warnings and notes",
        "",
        "- Info: IV use is off-label: the labelled route is subcutaneous (Kineret US label).",
        "- Info: This protocol version states no cross-center comparison amounts, so its doses were"
        " not compared with the highest amounts the centers report - confirm with pharmacy.",
        "",
        "#### Caps",
        "",
        "- Starting dose: 100 mg per dose",
        "",
        "#### Citations",
        "",
        "- [Reference one](https://doi.org/10.1000/one)",
        "",
        "Test Center anakinra protocol, version 3, published 2026-01-02, approved by P. Harmacist. "
        "Decision support only: the prescriber and a pharmacist verify every order.",
    )
)
