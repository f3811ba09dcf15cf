"""Checking a test patient's expected answer against the engine (pure: no database)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.data import DoseRange, PatientInputs, ProtocolData, Rule, Step, ToxicityGrade
from engine.vocabulary import DoseBasis, Route, Status, StepKind, Toxicity
from protocols.diff import FieldChange, RowDiff, SectionDiff, Snapshot, snapshot_diff
from protocols.patient_checks import PatientExpectation, expectation_check

pytestmark = pytest.mark.unit

D = Decimal


def _protocol(*steps: Step) -> ProtocolData:
    return ProtocolData(
        institution_slug="test",
        institution_name="Test",
        version_id=1,
        version_number=1,
        published_at=None,
        approved_by="",
        rules=(Rule(toxicities=frozenset({Toxicity.CRS}), summary="any CRS"),),
        steps=steps,
    )


def _step(name="Initial", **values) -> Step:
    base = {
        "kind": StepKind.INITIAL,
        "name": name,
        "toxicities": frozenset({Toxicity.CRS}),
        "dose_basis": DoseBasis.MG_PER_KG_PER_DOSE,
        "amount_low": D(2),
        "amount_high": D(2),
        "routes": (Route.IV,),
        "interval_hours": 6,
        "max_single_dose_mg": D(100),
    }
    return Step(**(base | values))


PATIENT = PatientInputs(
    weight_kg=D(60),
    age_years=D(10),
    toxicities=(ToxicityGrade(Toxicity.CRS, 3),),
    prior_tocilizumab_doses=1,
    prior_steroids=True,
)


def _expect(**values) -> PatientExpectation:
    return PatientExpectation(**({"test_patient_id": 1, "label": "60 kg", "patient": PATIENT} | values))


def test_expectation_passes_when_status_and_ranges_match():
    # 2 mg/kg/dose x 60 kg = 120 mg, capped at 100 mg; 4 doses a day = 400 mg/day.
    expectation = _expect(
        status=Status.INDICATED,
        step_name="Initial",
        per_dose_mg=DoseRange(D(100), D(100)),
        per_day_mg=DoseRange(D(400), D("400.0")),
    )

    outcome = expectation_check(expectation=expectation, protocol=_protocol(_step()))

    assert (outcome.passed, outcome.problems) == (True, ())


def test_expectation_reports_each_difference():
    expectation = _expect(
        status=Status.CONSIDER,
        step_name="Initial",
        per_dose_mg=DoseRange(D(80), D(80)),
        per_day_mg=DoseRange(D(320), D(320)),
    )

    outcome = expectation_check(expectation=expectation, protocol=_protocol(_step()))

    assert outcome.problems == (
        "status: expected consider, got indicated",
        "Initial, per dose: expected 80 mg, got 100 mg",
        "Initial, per day: expected 320 mg/day, got 400 mg/day",
    )


def test_expectation_of_no_per_dose_amount_is_checked_too():
    # A per-day basis with no interval gives no per-dose amount; expecting one is a failure.
    step = _step(dose_basis=DoseBasis.MG_PER_KG_PER_DAY, interval_hours=None, max_single_dose_mg=None)
    expectation = _expect(
        status=Status.INDICATED,
        step_name="Initial",
        per_dose_mg=DoseRange(D(30), D(30)),
        per_day_mg=DoseRange(D(120), D(120)),
    )

    outcome = expectation_check(expectation=expectation, protocol=_protocol(step))

    assert outcome.problems == ("Initial, per dose: expected 30 mg, got none",)


def test_expectation_for_a_missing_or_ambiguous_step_fails():
    missing = _expect(status=Status.INDICATED, step_name="Taper", per_day_mg=DoseRange(D(1), D(1)))
    twice = _expect(status=Status.INDICATED, step_name="Initial", per_day_mg=DoseRange(D(1), D(1)))

    missing_outcome = expectation_check(expectation=missing, protocol=_protocol(_step()))
    twice_outcome = expectation_check(expectation=twice, protocol=_protocol(_step(), _step()))

    assert missing_outcome.problems == ('step "Taper" is not in the answer (steps given: "Initial")',)
    assert twice_outcome.problems == ('step "Initial": several steps have this name; rename one',)


def test_snapshot_diff_pairs_steps_by_name_and_reports_only_changes():
    old = Snapshot(
        version={"notes": "a"},
        steps=[("Initial", {"maximum per dose (mg)": "100"}), ("Taper", {"amount": "1"})],
    )
    new = Snapshot(
        version={"notes": "a"},
        steps=[("Initial", {"maximum per dose (mg)": "80"}), ("Alternative", {"amount": "2"})],
    )

    assert snapshot_diff(old, new) == [
        SectionDiff(
            "Dosing steps",
            (
                RowDiff("Initial", "changed", (FieldChange("maximum per dose (mg)", "100", "80"),)),
                RowDiff("Alternative", "added", (FieldChange("amount", "", "2"),)),
                RowDiff("Taper", "removed", (FieldChange("amount", "1", ""),)),
            ),
        )
    ]


def _patient(patient: str, per_dose: str, arithmetic: str = "") -> dict[str, str]:
    return {"patient": patient, "expected per dose": per_dose, "arithmetic": arithmetic}


def test_snapshot_diff_shows_a_renamed_test_patient_as_changed_with_its_label():
    old = Snapshot(version={}, test_patients=[("30 kg: cap", _patient("30 kg; 10 years", "60 mg", "2 x 30"))])
    new = Snapshot(
        version={}, test_patients=[("30 kg: new cap", _patient("30 kg; 10 years", "75 mg", "3 x 30 capped"))]
    )

    assert snapshot_diff(old, new) == [
        SectionDiff(
            "Test patients",
            (
                RowDiff(
                    "30 kg: new cap",
                    "changed",
                    (
                        FieldChange("label", "30 kg: cap", "30 kg: new cap"),
                        FieldChange("expected per dose", "60 mg", "75 mg"),
                        FieldChange("arithmetic", "2 x 30", "3 x 30 capped"),
                    ),
                ),
            ),
        )
    ]


def test_snapshot_diff_shows_a_test_patient_with_edited_inputs_under_its_label_as_changed():
    old = Snapshot(version={}, test_patients=[("Heavy", _patient("60 kg; 16 years", "100 mg"))])
    new = Snapshot(version={}, test_patients=[("Heavy", _patient("70 kg; 16 years", "100 mg"))])

    assert snapshot_diff(old, new) == [
        SectionDiff(
            "Test patients",
            (RowDiff("Heavy", "changed", (FieldChange("patient", "60 kg; 16 years", "70 kg; 16 years"),)),),
        )
    ]


def test_snapshot_diff_pairs_test_patients_by_patient_before_label():
    # "B" keeps A's patient under a new label, and a new patient takes the label "A": A -> B is a rename,
    # the new "A" is added; "C" changed label and patient both: removed and added; "D" is unchanged.
    old = Snapshot(
        version={},
        test_patients=[
            ("A", _patient("20 kg", "40 mg")),
            ("C", _patient("30 kg", "60 mg")),
            ("D", _patient("40 kg", "80 mg")),
        ],
    )
    new = Snapshot(
        version={},
        test_patients=[
            ("A", _patient("25 kg", "50 mg")),
            ("B", _patient("20 kg", "40 mg")),
            ("D", _patient("40 kg", "80 mg")),
            ("E", _patient("35 kg", "70 mg")),
        ],
    )

    assert [(row.key, row.state, row.changes) for row in snapshot_diff(old, new)[0].rows] == [
        (
            "A",
            "added",
            (FieldChange("patient", "", "25 kg"), FieldChange("expected per dose", "", "50 mg")),
        ),
        ("B", "changed", (FieldChange("label", "A", "B"),)),
        (
            "E",
            "added",
            (FieldChange("patient", "", "35 kg"), FieldChange("expected per dose", "", "70 mg")),
        ),
        (
            "C",
            "removed",
            (FieldChange("patient", "30 kg", ""), FieldChange("expected per dose", "60 mg", "")),
        ),
    ]


def test_snapshot_diff_keeps_steps_paired_by_name_only():
    # Steps have no patient: a step whose fields happen to match another's is still paired by name.
    old = Snapshot(version={}, steps=[("Initial", {"patient": "x", "amount": "1"})])
    new = Snapshot(version={}, steps=[("Renamed", {"patient": "x", "amount": "1"})])

    assert [(row.key, row.state) for row in snapshot_diff(old, new)[0].rows] == [
        ("Renamed", "added"),
        ("Initial", "removed"),
    ]
