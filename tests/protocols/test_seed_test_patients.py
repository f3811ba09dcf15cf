"""The seeded test patients (hand-computed from clinical.md) and their loading from the data file."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from evidence.models import LoadedRecord
from protocols.models import ProtocolTestPatient, ProtocolVersion, VersionStatus
from protocols.seed import SEED_PATH, SeedFileError, clinical_data_load, protocol_fingerprint, seed_file_parse
from protocols.selectors.reads import protocol_test_patients_check

pytestmark = pytest.mark.integration

ROUNDED_LABEL = "38 kg, carHLH grade 3: rounded to the nearest vial"

D = Decimal

# (protocol, label start, status, step, per dose, per day): transcribed from clinical.md arithmetic.
EXPECTED = [
    ("chop", "25 kg, CRS grade 3", "indicated", "Starting dose, escalating", None, (D(50), D(50))),
    ("chop", "25 kg, ICANS grade 3 alone", "not_indicated", "", None, None),
    # CRS grade 2 after tocilizumab and steroids: consider (cnh tapers at grade 2 or lower); 2 x 20 = 40 mg q6h
    ("cnh", "20 kg, CRS grade 2 after", "consider", "Initial dosing", (D(40), D(40)), (D(160), D(160))),
    ("cnh", "20 kg, CRS grade 3 after", "indicated", "Initial dosing", (D(40), D(40)), (D(160), D(160))),
    ("cnh", "20 kg, CRS grade 3 with steroids", "not_indicated", "", None, None),
    ("cnh", "60 kg, ICANS grade 4", "indicated", "Initial dosing", (D(100), D(100)), (D(400), D(400))),
    ("musc", "15 kg, CRS grade 3", "indicated", "Initial dosing (CRS)", (D(60), D(60)), (D(120), D(120))),
    ("musc", "15 kg, ICANS grade 3", "indicated", "Alternative: fixed dose", (D(100), D(100)), (D(100), D(100))),
    ("nih", "20 kg, carHLH grade 2", "indicated", "Initial dosing, less severe carHLH", None, (D(100), D(160))),
    ("nih", "20 kg, carHLH grade 3", "indicated", "Initial dosing, severe carHLH", None, (D(160), D(200))),
    ("nih", "60 kg, carHLH grade 4", "indicated", "Initial dosing, severe carHLH", None, (D(480), D(600))),
    ("seattle", "30 kg, CRS grade 3 after one", "consider", "Initial dosing", (D(60), D(60)), (D(240), D(240))),
    # two tocilizumab doses: still consider; 2 x 30 = 60 mg up to q6h = 240 mg/day
    ("seattle", "30 kg, CRS grade 3 after two", "consider", "Initial dosing", (D(60), D(60)), (D(240), D(240))),
    ("seattle", "30 kg, ICANS grade 2", "not_indicated", "", None, None),
    ("seattle", "30 kg, ICANS grade 3", "indicated", "Initial dosing", (D(60), D(60)), (D(240), D(240))),
    ("stjude", "20 kg, carHLH grade 2", "indicated", "Initial dosing", (D(50), D(50)), (D(200), D(200))),
    ("stjude", "38 kg, carHLH grade 3", "indicated", "Initial dosing", (D(100), D(100)), (D(400), D(400))),
    ("stjude", "40 kg, carHLH grade 3", "indicated", "Initial dosing", (D(100), D(100)), (D(400), D(400))),
]


def _pair(low, high):
    return None if low is None else (low, high)


def test_seeded_test_patients_match_the_hand_computed_answers(db):
    stored = [
        (
            tp.version.protocol.institution.slug,
            tp.label,
            tp.expected_status,
            tp.expected_step_name,
            _pair(tp.expected_per_dose_low_mg, tp.expected_per_dose_high_mg),
            _pair(tp.expected_per_day_low_mg, tp.expected_per_day_high_mg),
        )
        for tp in ProtocolTestPatient.objects.select_related("version__protocol__institution").order_by(
            "version__protocol__institution__slug", "label"
        )
    ]

    assert [(s[0], s[2], s[3], s[4], s[5]) for s in stored] == [(e[0], e[2], e[3], e[4], e[5]) for e in EXPECTED]
    assert all(s[1].startswith(e[1]) for s, e in zip(stored, EXPECTED, strict=True))
    assert set(ProtocolTestPatient.objects.values_list("version__status", flat=True)) == {VersionStatus.PUBLISHED}


def test_every_seeded_test_patient_passes_on_its_published_version(db):
    outcomes = [
        outcome
        for version in ProtocolVersion.objects.filter(status=VersionStatus.PUBLISHED)
        for outcome in protocol_test_patients_check(version_id=version.pk)
    ]

    assert [(o.expectation.label, o.problems) for o in outcomes if not o.passed] == []
    assert len(outcomes) == 18


def test_reloading_changes_nothing(db):
    report = clinical_data_load()

    assert "test patients: 0 created, 0 updated, 18 unchanged" in report.lines
    assert (report.writes, report.refused) == (0, [])
    assert ProtocolVersion.objects.count() == 6


def _published(slug: str) -> ProtocolVersion:
    return ProtocolVersion.objects.get(protocol__institution__slug=slug, status=VersionStatus.PUBLISHED)


def test_changed_test_patient_in_the_file_gives_a_new_published_version(db, tmp_path):
    old = _published("stjude")
    path = _variant(
        tmp_path, replace=('arithmetic = "10 mg/kg/day x 38 kg', 'arithmetic = "Checked: 10 mg/kg/day x 38 kg')
    )

    report = clinical_data_load(path=path)

    new = _published("stjude")
    assert (new.number, ProtocolVersion.objects.get(pk=old.pk).status) == (2, VersionStatus.RETIRED)
    assert "stjude: updated from the data file: version 2, published" in report.lines
    assert "test patients: 0 created, 1 updated, 17 unchanged" in report.lines
    assert new.test_patients.get(label=ROUNDED_LABEL).arithmetic.startswith("Checked: 10 mg/kg/day x 38 kg")
    assert old.test_patients.get(label=ROUNDED_LABEL).arithmetic.startswith("10 mg/kg/day x 38 kg")  # frozen
    assert sorted(new.test_patients.values_list("label", flat=True)) == sorted(
        old.test_patients.values_list("label", flat=True)
    )


def test_test_patients_edited_since_loaded_are_kept_and_reported(db, tmp_path):
    # A ledger that disagrees with the stored patient is what an edit made before test patients were
    # versioned (in place, outside any draft) leaves behind.
    LoadedRecord.objects.filter(kind=LoadedRecord.Kind.TEST_PATIENT, natural_key=f"stjude/{ROUNDED_LABEL}").update(
        fingerprint="0" * 64
    )
    path = _variant(
        tmp_path, replace=('arithmetic = "10 mg/kg/day x 38 kg', 'arithmetic = "Checked: 10 mg/kg/day x 38 kg')
    )

    report = clinical_data_load(path=path)

    assert _published("stjude").number == 1
    assert report.refused == ["test patients of stjude"]
    assert (
        "stjude: test patients NOT overwritten - edited since they were loaded (version 1); "
        "the file's test patients were not applied"
    ) in report.lines


def _variant(tmp_path: Path, replace: tuple[str, str] | None = None, append: str = "") -> Path:
    text = SEED_PATH.read_text(encoding="utf-8")
    if replace:
        assert replace[0] in text
        text = text.replace(replace[0], replace[1], 1)
    path = tmp_path / "clinical_data.toml"
    path.write_text(text + append, encoding="utf-8")
    return path


def test_test_patients_do_not_change_protocol_fingerprints(tmp_path):
    with_patients = seed_file_parse()
    text = SEED_PATH.read_text(encoding="utf-8")
    without = tmp_path / "no_patients.toml"
    without.write_text(text[: text.index("[[test_patients]]")], encoding="utf-8")

    without_patients = seed_file_parse(path=without)

    assert without_patients.test_patients == []
    assert [protocol_fingerprint(p) for p in with_patients.protocols] == [
        protocol_fingerprint(p) for p in without_patients.protocols
    ]


@pytest.mark.parametrize(
    ("append", "message"),
    [
        (
            '\n[[test_patients]]\nprotocol = "nowhere"\nlabel = "x"\nexpected_status = "indicated"\n'
            "[test_patients.inputs]\nweight_kg = 20\nage_years = 8\n"
            'toxicities = [{ type = "CRS", grade = 3 }]\nprior_tocilizumab_doses = 1\nprior_steroids = true\n',
            "test patient 'x': unknown protocol nowhere",
        ),
        (
            '\n[[test_patients]]\nprotocol = "cnh"\nlabel = "x"\nexpected_status = "indicated"\n'
            '[test_patients.inputs]\nweight_kg = 20\nage_years = 8\ninstitution = "cnh"\n'
            'toxicities = [{ type = "CRS", grade = 3 }]\nprior_tocilizumab_doses = 1\nprior_steroids = true\n',
            "inputs: leave out institution",
        ),
        (
            '\n[[test_patients]]\nprotocol = "cnh"\nlabel = "x"\nexpected_status = "indicated"\n'
            'step = "Initial dosing"\n'
            "[test_patients.inputs]\nweight_kg = 20\nage_years = 8\n"
            'toxicities = [{ type = "CRS", grade = 3 }]\nprior_tocilizumab_doses = 1\nprior_steroids = true\n',
            "a named step needs per_day_mg",
        ),
    ],
    ids=["unknown-protocol", "institution-in-inputs", "step-without-amounts"],
)
def test_malformed_test_patient_entries_are_refused(tmp_path, append, message):
    with pytest.raises(SeedFileError, match=message):
        seed_file_parse(path=_variant(tmp_path, append=append))


def test_loader_refuses_a_test_patient_that_fails_and_writes_nothing(db, tmp_path):
    entry = f'label = "{ROUNDED_LABEL}"\nexpected_status = "indicated"\nstep = "Initial dosing"\n'
    path = _variant(tmp_path, replace=(entry + "per_dose_mg = [100, 100]", entry + "per_dose_mg = [95, 95]"))

    with pytest.raises(
        SeedFileError, match=f"stjude: {ROUNDED_LABEL}: Initial dosing, per dose: expected 95 mg, got 100 mg"
    ):
        clinical_data_load(path=path)

    assert _published("stjude").number == 1
    assert ProtocolVersion.objects.filter(protocol__institution__slug="stjude").count() == 1
    assert _published("stjude").test_patients.get(label=ROUNDED_LABEL).expected_per_dose_low_mg == Decimal(100)
