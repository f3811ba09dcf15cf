"""The loaded clinical data equals the spec (clinical.md section 1), and the loader is safe to rerun."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command

from evidence.models import LoadedRecord, Reference, Study
from protocols.models import (
    CatalogRevision,
    DosingStep,
    IndicationRule,
    Institution,
    Protocol,
    ProtocolVersion,
    VersionStatus,
)
from protocols.seed import SEED_PATH, SeedFileError, clinical_data_load
from protocols.selectors.reads import protocol_test_patients_check
from tests import factories

pytestmark = pytest.mark.integration

D = Decimal

# Expected values transcribed from docs/clinical-data.md, section 1 and 1.1 (not from the data file).
# Step tuple: kind, toxicities, grades, basis, low, high, interval, up-to, routes, max/dose, max/day,
#             escalation (amount, basis), rounding (increment, tolerance %)
EXPECTED_STEPS = {
    "cnh": [
        (
            "initial",
            ("CRS", "ICANS", "carHLH"),
            (1, 4),
            "mg/kg/dose",
            D(2),
            D(2),
            6,
            False,
            ("IV",),
            D(100),
            D(400),
            None,
            None,
        ),
    ],
    "seattle": [
        ("initial", ("CRS", "ICANS"), (1, 4), "mg/kg/dose", D(2), D(2), 6, True, ("IV",), D(100), D(400), None, None),
    ],
    "chop": [
        (
            "initial",
            ("CRS",),
            (1, 4),
            "mg/kg/day",
            D(2),
            D(2),
            None,
            False,
            ("IV", "SC"),
            None,
            D(400),
            (D(10), "mg/kg/day"),
            None,
        ),
    ],
    "nih": [
        ("initial", ("carHLH",), (3, 4), "mg/kg/day", D(8), D(10), None, False, ("SC",), None, None, None, None),
        ("initial", ("carHLH",), (1, 2), "mg/kg/day", D(5), D(8), None, False, ("SC",), None, None, None, None),
        # the taper goal follows only the severe step (grade 3-4)
        ("taper", ("carHLH",), (3, 4), "mg/kg/day", D(5), D(7), None, False, ("SC",), None, None, None, None),
    ],
    "musc": [
        ("initial", ("CRS",), (1, 4), "mg/kg/dose", D(4), D(4), 12, False, ("SC",), None, None, None, None),
        ("taper", ("CRS",), (1, 4), "mg/kg/dose", D(2), D(2), 12, False, ("SC",), None, None, None, None),
        (
            "alternative",
            ("CRS", "ICANS", "carHLH"),
            (1, 4),
            "mg/dose",
            D(100),
            D(100),
            24,
            False,
            ("SC",),
            None,
            None,
            None,
            None,
        ),
        (
            "taper",
            ("CRS", "ICANS", "carHLH"),
            (1, 4),
            "mg/dose",
            D(50),
            D(50),
            24,
            False,
            ("SC",),
            None,
            None,
            None,
            None,
        ),
    ],
    "stjude": [
        (
            "initial",
            ("carHLH",),
            (1, 4),
            "mg/kg/day",
            D(10),
            D(10),
            6,
            False,
            ("IV", "SC"),
            None,
            None,
            None,
            (D(100), D(10)),
        ),
    ],
}

# Rule tuple: toxicities, grades, tocilizumab doses needed, steroids needed, status, first-line flag,
# tocilizumab doses from which the repeat-dose note is added
EXPECTED_RULES = {
    "cnh": [
        (("CRS", "ICANS"), (3, 4), 1, True, "indicated", False, None),
        (("carHLH",), (1, 4), 1, True, "indicated", False, None),
        (("CRS", "ICANS"), (1, 2), 1, True, "consider", False, None),
    ],
    "seattle": [
        (("ICANS",), (3, 4), 0, True, "indicated", False, None),
        (("CRS",), (3, 4), 1, True, "consider", False, 2),
    ],
    "chop": [(("CRS",), (1, 4), 1, True, "indicated", False, None)],
    "nih": [(("carHLH",), (1, 4), 0, False, "indicated", True, None)],
    "musc": [(("CRS", "ICANS", "carHLH"), (1, 4), 1, True, "indicated", False, None)],
    "stjude": [(("carHLH",), (1, 4), 0, False, "indicated", False, None)],
}

EXPECTED_EXPERIENCE = {"cnh": "CD19", "seattle": "", "chop": "", "nih": "CD22", "musc": "CD19", "stjude": "CD19"}

# Center-to-evidence links (clinical.md section 2); every center also cites the letter (Table 1).
EXPECTED_CITATIONS = {
    "cnh": [("diorio-2022", "Table 1"), ("ref-19", "")],
    "seattle": [("diorio-2022", "Table 1")],
    "chop": [("diorio-2022", "Table 1")],
    "nih": [("diorio-2022", "Table 1"), ("ref-18", ""), ("ref-28", "")],
    "musc": [("diorio-2022", "Table 1")],
    "stjude": [("diorio-2022", "Table 1"), ("ref-20", "")],
}


def _published(slug: str) -> ProtocolVersion:
    return ProtocolVersion.objects.get(protocol__institution__slug=slug, status=VersionStatus.PUBLISHED)


def _step_tuple(step: DosingStep):
    escalation = (
        (step.escalation_ceiling_amount, step.escalation_ceiling_basis) if step.escalation_ceiling_amount else None
    )
    rounding = (step.rounding_increment_mg, step.rounding_tolerance_percent) if step.rounding_increment_mg else None
    return (
        step.kind,
        step.toxicities,
        (step.min_grade, step.max_grade),
        step.dose_basis,
        step.amount_low,
        step.amount_high,
        step.interval_hours,
        step.interval_is_maximum,
        step.routes,
        step.max_single_dose_mg,
        step.max_daily_dose_mg,
        escalation,
        rounding,
    )


def _rule_tuple(rule: IndicationRule):
    return (
        rule.toxicities,
        (rule.min_grade, rule.max_grade),
        rule.min_prior_tocilizumab_doses,
        rule.requires_steroids,
        rule.result_status,
        rule.first_line_if_isolated_late_onset,
        rule.repeat_tocilizumab_from_doses,
    )


@pytest.mark.parametrize("slug", sorted(EXPECTED_STEPS))
def test_seed_protocol_steps_equal_spec_table(db, slug):
    version = _published(slug)
    assert [_step_tuple(s) for s in version.steps.order_by("position")] == EXPECTED_STEPS[slug]


@pytest.mark.parametrize("slug", sorted(EXPECTED_RULES))
def test_seed_protocol_rules_equal_spec_table(db, slug):
    version = _published(slug)
    assert [_rule_tuple(r) for r in version.rules.order_by("position")] == EXPECTED_RULES[slug]


@pytest.mark.parametrize("slug", sorted(EXPECTED_EXPERIENCE))
def test_seed_protocol_context_equals_spec(db, slug):
    version = _published(slug)
    citations = [(c.reference.key, c.locator) for c in version.citations.order_by("position")]
    assert (version.reported_car_target, version.concentration_mg_per_ml, version.number) == (
        EXPECTED_EXPERIENCE[slug],
        D(150),
        1,
    )
    assert citations == EXPECTED_CITATIONS[slug]


def test_seed_institutions_each_have_one_published_version(db):
    rows = sorted(
        (i.slug, i.protocol.versions.filter(status=VersionStatus.PUBLISHED).count(), i.protocol.versions.count())
        for i in Institution.objects.select_related("protocol")
    )
    assert rows == [(slug, 1, 1) for slug in sorted(["cnh", "seattle", "chop", "nih", "musc", "stjude"])]


def test_seed_counts_studies_and_references(db):
    numbered = sorted(Reference.objects.exclude(letter_ref_number=None).values_list("letter_ref_number", flat=True))
    assert numbered == list(range(1, 44))
    assert sorted(Reference.objects.filter(letter_ref_number=None).values_list("key", flat=True)) == [
        "diorio-2022",
        "lee-2019",
    ]
    # Table 2 of the letter has nine rows (the first cites two references).
    assert list(Study.objects.values_list("label", flat=True)) == [
        "Lichtenstein et al; Shah et al",
        "Jatiani et al",
        "Strati et al",
        "Dreyzin et al",
        "Hines et al",
        "Oliai et al",
        "Gazeau et al",
        "Park et al",
        "Wehrli et al",
    ]
    first = Study.objects.get(key="lichtenstein-shah")
    assert sorted(first.references.values_list("letter_ref_number", flat=True)) == [18, 28]


def test_seed_identifiers_only_where_spec_gives_them(db):
    with_ids = {r.key: (r.doi, r.pmid) for r in Reference.objects.all() if r.doi or r.pmid}
    assert with_ids == {
        "diorio-2022": ("10.1182/bloodadvances.2022006983", ""),
        "lee-2019": ("10.1016/j.bbmt.2018.12.758", "30592986"),
        "ref-11": ("10.1016/S2665-9913(20)30096-5", "32373790"),
        "ref-15": ("10.1182/bloodadvances.2020002328", ""),
        "ref-18": ("10.1182/blood.2021011898", ""),
        "ref-19": ("10.1080/08880018.2021.1988012", ""),  # printed in the letter's reference list
        "ref-20": ("10.1111/bjh.17662", "34263927"),
        "ref-22": ("10.1136/jitc-2021-003847", "34996813"),
        "ref-28": ("10.1200/JCO.19.03279", ""),
        "ref-33": ("10.1002/rmv.2295", ""),  # printed in the letter's reference list
    }


def test_seed_urls_only_where_the_letter_prints_them(db):
    urls = {r.key: r.url for r in Reference.objects.exclude(url="")}
    assert urls == {
        "ref-8": "https://www.accessdata.fda.gov/drugsatfda_docs/label/2012/103950s51361bl.pdf",
        "ref-16": "https://www.sps.nhs.uk/articles/evidence-for-use-of-siltuximab-or-anakinra-as-second-line-therapies-"
        "after-failure-of-tocilizumab-for-cytokine-release-syndrome-following-use-of-chimeric-antigen-receptor-t-cell-"
        "car-t-therapy/",
    }


def _snapshot() -> dict[str, object]:
    """Rows in every table (history tables included), the loader's ledger and the catalog revision."""
    return {
        "rows": {model._meta.label: model._default_manager.count() for model in apps.get_models()},
        "ledger": sorted(LoadedRecord.objects.values_list("kind", "natural_key", "fingerprint")),
        "revision": CatalogRevision.objects.get().revision,
    }


def test_loader_rerun_changes_nothing(db):
    before = _snapshot()
    versions = list(ProtocolVersion.objects.order_by("pk").values_list("pk", "status", "edit_revision"))
    report = clinical_data_load()
    assert (report.writes, report.refused, _snapshot()) == (0, [], before)
    assert list(ProtocolVersion.objects.order_by("pk").values_list("pk", "status", "edit_revision")) == versions
    assert "cnh: unchanged (version 1)" in report.lines
    assert "references: 0 created, 0 updated, 45 unchanged" in report.lines


def test_loader_command_rerun_says_up_to_date_and_writes_no_history(db):
    before = _snapshot()
    out = io.StringIO()
    call_command("load_clinical_data", stdout=out)
    assert (_snapshot(), out.getvalue().splitlines()[-1]) == (before, "Clinical data already up to date.")


def test_loader_rerun_after_a_file_change_changes_nothing_more(db, tmp_path):
    path = _edited_seed(tmp_path, 'pages = "701-707"', 'pages = "701-708"')
    first = clinical_data_load(path=path)
    before = _snapshot()
    second = clinical_data_load(path=path)
    assert (first.writes, second.writes, second.refused, _snapshot()) == (1, 0, [], before)


def test_loader_refuses_protocol_edited_since(db):
    cnh = _published("cnh")
    draft = factories.ProtocolVersionFactory(protocol=cnh.protocol, number=2)
    report = clinical_data_load()
    assert report.refused == ["protocol cnh"]
    # The file's entry is what version 1 already holds: nothing to propose, and the open draft is left alone.
    assert [line for line in report.lines if line.startswith("cnh:")] == [
        "cnh: NOT overwritten - edited since it was loaded (version 2 is draft, not from the data file); "
        "the file's entry is already in version 1 (published)"
    ]
    assert list(cnh.protocol.versions.order_by("number").values_list("number", "status")) == [
        (1, "published"),
        (draft.number, "draft"),
    ]


def _edited_seed(tmp_path, old: str, new: str):
    text = SEED_PATH.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "clinical_data.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


# The cnh per-dose cap lowered in the file, with the test patient that pins it (its answer changes with it).
CNH_CAP = ("max_single_dose_mg = 100\n", "max_single_dose_mg = 90\n")
CNH_CAP_PATIENT = (
    'per_dose_mg = [100, 100]\nper_day_mg = [400, 400]\narithmetic = "2 mg/kg/dose x 60 kg',
    'per_dose_mg = [90, 90]\nper_day_mg = [360, 360]\narithmetic = "2 mg/kg/dose x 60 kg',
)


def _cap_lowered_seed(tmp_path):
    path = _edited_seed(tmp_path, *CNH_CAP)
    path.write_text(path.read_text(encoding="utf-8").replace(*CNH_CAP_PATIENT, 1), encoding="utf-8")
    return path


def test_loader_publishes_new_version_when_file_changes_and_nothing_was_edited(db, tmp_path):
    report = clinical_data_load(path=_cap_lowered_seed(tmp_path))
    cnh_versions = list(
        ProtocolVersion.objects.filter(protocol__institution__slug="cnh")
        .order_by("number")
        .values_list("number", "status")
    )
    assert cnh_versions == [(1, "retired"), (2, "published")]
    assert _published("cnh").steps.get().max_single_dose_mg == D(90)
    assert "cnh: updated from the data file: version 2, published" in report.lines
    heavy = _published("cnh").test_patients.get(label__startswith="60 kg")
    assert (heavy.expected_per_dose_low_mg, heavy.expected_per_day_low_mg) == (D(90), D(360))


def test_loader_refuses_a_protocol_change_its_test_patients_fail_on(db, tmp_path):
    with pytest.raises(SeedFileError, match="Initial dosing, per dose: expected 100 mg, got 90 mg"):
        clinical_data_load(path=_edited_seed(tmp_path, *CNH_CAP))

    assert _published("cnh").number == 1


def test_loader_check_validates_without_writing(db, tmp_path):
    # A file that changes a protocol, a reference, a study, an institution and a test patient.
    path = _cap_lowered_seed(tmp_path)
    for old, new in FILE_CHANGES.values():
        path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    LoadedRecord.objects.filter(kind="reference", natural_key="ref-21").delete()  # a ledger row to re-create
    Reference.objects.filter(key="ref-43").delete()  # a missing record to create
    before = _snapshot()
    out = io.StringIO()
    call_command("load_clinical_data", "--check", "--file", str(path), stdout=out)
    assert "references: 1 created, 1 updated, 43 unchanged" in out.getvalue()
    assert (_snapshot(), _published("cnh").number) == (before, 1)
    assert out.getvalue().splitlines()[-1] == "clinical_data.toml is valid; nothing was written (--check)."


def test_loader_check_reports_invalid_file(db, tmp_path):
    path = _edited_seed(tmp_path, "amount_low = 4\n", "amount_low = 5\n")  # MUSC 4 mg/kg step: low above high
    with pytest.raises(CommandError, match=r"protocols\.4\.steps\.0: Value error, amount_low is above amount_high"):
        call_command("load_clinical_data", "--check", "--file", str(path))


def test_loader_rejects_unknown_reference(tmp_path):
    path = _edited_seed(tmp_path, '{ reference = "ref-19" }', '{ reference = "ref-99" }')
    with pytest.raises(SeedFileError, match="cnh: unknown reference ref-99"):
        from protocols.seed import seed_file_parse

        seed_file_parse(path=path)


def test_loader_rejects_malformed_toml(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("schema_version = [", encoding="utf-8")
    with pytest.raises(SeedFileError, match="not valid TOML"):
        from protocols.seed import seed_file_parse

        seed_file_parse(path=path)


# Per record kind: the file change, and how to read and edit the one field it changes (as the admin would:
# the instance's own save()). Values before, from the file, and as a user edited them.
FILE_CHANGES = {
    "reference": ('pages = "701-707"', 'pages = "701-708"'),
    "study": ('dose_as_reported = "Not reported"', 'dose_as_reported = "Not reported in Table 2"'),
    "institution": ('location = "Washington, DC"', 'location = "Washington, D.C."'),
    "protocol title": (
        'title = "Children\'s National Hospital anakinra protocol"',
        'title = "Children\'s National anakinra protocol"',
    ),
    "test patient": ('arithmetic = "10 mg/kg/day x 38 kg', 'arithmetic = "Checked: 10 mg/kg/day x 38 kg'),
}
# Test patients belong to protocol versions: tests/protocols/test_seed_test_patients.py loads their changes.
KINDS = sorted(set(FILE_CHANGES) - {"test patient"})
RECORDS = {
    "reference": ("reference ref-20", lambda: Reference.objects.get(key="ref-20"), "pages"),
    "study": ("study hines", lambda: Study.objects.get(key="hines"), "dose_as_reported"),
    "institution": ("institution cnh", lambda: Institution.objects.get(slug="cnh"), "location"),
    "protocol title": ("protocol title cnh", lambda: Protocol.objects.get(institution__slug="cnh"), "title"),
}
UPDATED = {
    "reference": "701-708",
    "study": "Not reported in Table 2",
    "institution": "Washington, D.C.",
    "protocol title": "Children's National anakinra protocol",
}
KIND_LINES = {
    "reference": "references: 0 created, {} updated, 44 unchanged",
    "study": "studies: 0 created, {} updated, 8 unchanged",
    "institution": "institutions: 0 created, {} updated, 5 unchanged",
    "protocol title": "protocol titles: 0 created, {} updated, 5 unchanged",
}


def _user_edit(kind: str, value: str):
    record = RECORDS[kind][1]()
    setattr(record, RECORDS[kind][2], value)
    record.full_clean()
    record.save()


def _value(kind: str) -> str:
    return getattr(RECORDS[kind][1](), RECORDS[kind][2])


@pytest.mark.parametrize("kind", KINDS)
def test_loader_updates_record_untouched_since_loaded_when_file_changes(db, tmp_path, kind):
    expected = UPDATED[kind]
    old, new = FILE_CHANGES[kind]
    report = clinical_data_load(path=_edited_seed(tmp_path, old, new))
    assert report.refused == []
    assert KIND_LINES[kind].format(1) in report.lines
    assert _value(kind) == expected


@pytest.mark.parametrize("kind", KINDS)
def test_loader_keeps_and_reports_record_edited_since_loaded(db, tmp_path, kind):
    name = RECORDS[kind][0]
    _user_edit(kind, "Edited by pharmacy")
    old, new = FILE_CHANGES[kind]
    report = clinical_data_load(path=_edited_seed(tmp_path, old, new))
    assert report.refused == [name]
    assert f"{name}: NOT overwritten - edited since it was loaded; the file's entry was not applied" in report.lines
    assert KIND_LINES[kind].format(0) + ", 1 NOT overwritten (edited since loaded)" in report.lines
    assert _value(kind) == "Edited by pharmacy"
    # With the file unchanged as well, the edit stays and is reported again.
    assert clinical_data_load().refused == [name]
    assert _value(kind) == "Edited by pharmacy"


def test_loader_command_names_kept_records_and_exits_cleanly(db):
    _user_edit("reference", "1-2")
    _user_edit("institution", "Edited by pharmacy")
    out = io.StringIO()
    call_command("load_clinical_data", stdout=out)
    assert out.getvalue().splitlines()[-1] == (
        "Loaded, except 2 record(s) edited since they were loaded, left as they are (NOT overwritten): "
        "reference ref-20, institution cnh."
    )


def test_loader_keeps_study_whose_reference_links_were_edited(db):
    study = Study.objects.get(key="lichtenstein-shah")
    study.references.remove(Reference.objects.get(key="ref-28"))
    report = clinical_data_load()
    assert report.refused == ["study lichtenstein-shah"]
    assert list(study.references.values_list("key", flat=True)) == ["ref-18"]


def test_loader_keeps_record_that_differs_without_a_ledger_row(db):
    # Loaded before the loader kept its ledger, then edited: it cannot tell, so it keeps the record.
    LoadedRecord.objects.filter(kind="reference", natural_key="ref-20").delete()
    _user_edit("reference", "1-2")
    report = clinical_data_load()
    assert report.refused == ["reference ref-20"]
    assert (
        "reference ref-20: NOT overwritten - differs from the data file and the loader has no record of writing "
        "it (edited since it was loaded); the file's entry was not applied"
    ) in report.lines
    assert _value("reference") == "1-2"


def test_loader_records_ledger_for_unchanged_record_without_writing_it(db):
    LoadedRecord.objects.filter(kind="study", natural_key="hines").delete()
    history = Study.history.count()
    report = clinical_data_load()
    assert (report.writes, report.refused, Study.history.count()) == (0, [], history)
    assert LoadedRecord.objects.filter(kind="study", natural_key="hines").count() == 1


def test_loader_recreates_missing_records(db):
    Reference.objects.filter(key="ref-43").delete()
    report = clinical_data_load()
    assert "references: 1 created, 0 updated, 44 unchanged" in report.lines
    assert Reference.objects.get(key="ref-43").letter_ref_number == 43


def test_loader_updates_center_to_evidence_links_only_as_a_new_version(db, tmp_path):
    path = _edited_seed(tmp_path, '{ reference = "ref-19" }', '{ reference = "ref-19", locator = "Table 2" }')
    clinical_data_load(path=path)
    assert [(c.reference.key, c.locator) for c in _published("cnh").citations.order_by("position")] == [
        ("diorio-2022", "Table 1"),
        ("ref-19", "Table 2"),
    ]
    assert _published("cnh").number == 2


# --- Clinical review round 2: a database loaded from the previous file migrates in place ---------------


def _previous_seed(tmp_path):
    """The data file as it was before clinical review round 2 (this revision's edits reverted), to stand for a
    database loaded earlier: no comparison amounts, no label, cnh's single third-line rule, nih's taper goal at
    every grade."""
    text = SEED_PATH.read_text(encoding="utf-8")
    start = text.index('label_reference = "ref-8"')
    end = text.index("# ----", start)
    text = text[:start] + text[end:]
    cnh_rules_start = text.index("[[protocols.rules]]")
    cnh_steps_start = text.index("[[protocols.steps]]", cnh_rules_start)
    text = (
        text[:cnh_rules_start]
        + "[[protocols.rules]]\n"
        + 'toxicities = ["CRS", "ICANS", "carHLH"]\n'
        + "min_grade = 1\nmin_prior_tocilizumab_doses = 1\nrequires_steroids = true\n"
        + 'result_status = "indicated"\nsummary = "third-line use, after tocilizumab and steroids"\n\n'
        + text[cnh_steps_start:]
    )
    old_taper = 'name = "Taper goal"\ntoxicities = ["carHLH"]\nmin_grade = 3\nmax_grade = 4\n'
    assert old_taper in text
    text = text.replace(old_taper, 'name = "Taper goal"\ntoxicities = ["carHLH"]\n', 1)
    # The revision's new cnh test patient (grade 2: consider) did not exist then.
    start = text.index('[[test_patients]]\nprotocol = "cnh"\nlabel = "20 kg, CRS grade 2')
    end = text.index("[[test_patients]]", start + 1)
    text = text[:start] + text[end:]
    path = tmp_path / "previous.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_loaded_database_gains_the_revision_as_new_published_versions(db, tmp_path, clinician_client):
    clinical_data_load(path=_previous_seed(tmp_path))
    assert (_published("cnh").number, _published("cnh").rules.count(), _published("cnh").usual_daily_cap_mg) == (
        2,
        1,
        None,
    )
    # An answer stored under the previous rules and versions: cnh grade 2 was "indicated" then.
    old = factories.AssessmentFactory(rules_revision=1, recommendations=[{"status": "indicated", "kept": "as is"}])

    report = clinical_data_load()

    cnh = _published("cnh")
    assert (cnh.number, cnh.rules.count(), cnh.usual_daily_cap_mg, cnh.reported_max_mg_per_kg_per_day) == (
        3,
        3,
        D(400),
        D(10),
    )
    assert (cnh.label_reference.key, cnh.thresholds_reference.key, cnh.thresholds_locator) == (
        "ref-8",
        "diorio-2022",
        "Table 1",
    )
    assert [line for line in report.lines if ": updated from the data file" in line] == [
        f"{slug}: updated from the data file: version 3, published"
        for slug in ("cnh", "seattle", "chop", "nih", "musc", "stjude")
    ]
    assert report.refused == []
    # The stored answer is untouched and says which rules it was computed under.
    body = clinician_client.get(f"/api/v1/assessments/{old.pk}").json()
    assert (body["recommendations"], body["rules_revision"]) == ([{"status": "indicated", "kept": "as is"}], 1)
    assert body["rules_note"].startswith("Computed under the app's clinical rules revision 1")


def _locally_edited_cnh(pharmacist, second_pharmacist, **changes):
    from protocols.services import protocol_version_draft_create

    draft = protocol_version_draft_create(protocol=_published("cnh").protocol, author=pharmacist, reason="local")
    for name, value in changes.items():
        if name == "rule_summary":
            rule = draft.rules.get()
            rule.summary = value
            rule.save()
        else:
            setattr(draft, name, value)
    draft.save()
    from protocols.services import protocol_version_publish

    protocol_version_publish(version=draft, approved_by=second_pharmacist)
    return draft


def test_edited_protocol_gets_the_revision_as_a_draft_for_review(db, tmp_path, pharmacist, second_pharmacist):
    clinical_data_load(path=_previous_seed(tmp_path))
    local = _locally_edited_cnh(pharmacist, second_pharmacist, notes="Local note kept.")

    report = clinical_data_load()

    versions = list(local.protocol.versions.order_by("number").values_list("number", "status", "source_fingerprint"))
    assert [(n, s) for n, s, _ in versions] == [(1, "retired"), (2, "retired"), (3, "published"), (4, "draft")]
    draft = ProtocolVersion.objects.get(protocol=local.protocol, number=4)
    # The local edit is kept; the file's revision (rules, comparison amounts, label) is merged in.
    assert (draft.notes, draft.rules.count(), draft.usual_daily_cap_mg, draft.label_reference.key) == (
        "Local note kept.",
        3,
        D(400),
        "ref-8",
    )
    assert (draft.based_on_id, draft.authored_by, draft.approved_by) == (local.pk, None, None)
    assert "Proposed by the data-file loader for pharmacist review" in draft.change_reason
    assert [line for line in report.lines if line.startswith("cnh:")] == [
        "cnh: NOT overwritten - edited since it was loaded (version 3 is published, not from the data file); the "
        "file's revision was proposed as draft version 4 for pharmacist review (3 change(s) taken, 0 kept as "
        "edited locally)"
    ]
    assert "protocol cnh" in report.refused
    # Clinicians still get the locally approved version until a second pharmacist approves the draft.
    assert _published("cnh").number == 3
    # Loading again proposes nothing more.
    again = clinical_data_load()
    assert [line for line in again.lines if line.startswith("cnh:")] == [
        "cnh: NOT overwritten - edited since it was loaded (version 3 is published, not from the data file); the "
        "file's revision waits for pharmacist review as version 4 (draft)"
    ]
    assert ProtocolVersion.objects.filter(protocol=local.protocol).count() == 4


def test_edited_value_changed_by_the_file_too_is_kept_and_named(db, tmp_path, pharmacist, second_pharmacist):
    clinical_data_load(path=_previous_seed(tmp_path))
    _locally_edited_cnh(pharmacist, second_pharmacist, rule_summary="third line, local wording")

    report = clinical_data_load()

    draft = ProtocolVersion.objects.get(protocol__institution__slug="cnh", status=VersionStatus.DRAFT)
    # Both sides changed the rules: the local rules are kept and the conflict is named for the reviewer.
    assert list(draft.rules.values_list("summary", flat=True)) == ["third line, local wording"]
    assert "Changed both locally and in the file, local value kept (check these): indication rules." in (
        draft.change_reason
    )
    assert "protocol cnh" in report.refused
    # The revision's test patient (cnh grade 2: consider) fails on that draft, so it cannot be submitted until a
    # pharmacist reconciles the rules.
    failing = [o.expectation.label for o in protocol_test_patients_check(version_id=draft.pk) if not o.passed]
    assert failing == [
        "20 kg, CRS grade 2 after tocilizumab and steroids: consider (the center tapers at grade 2 or lower)"
    ]


def test_comparison_amounts_are_version_data_copied_into_drafts_and_diffed(db, pharmacist):
    from protocols.selectors.catalog import protocol_version_thresholds, published_protocols
    from protocols.selectors.history import protocol_version_diff
    from protocols.services import protocol_version_draft_create

    draft = protocol_version_draft_create(protocol=_published("nih").protocol, author=pharmacist)
    thresholds = protocol_version_thresholds(version_id=draft.pk)
    assert (thresholds.reported_max_mg_per_kg_per_day, thresholds.usual_daily_cap_mg, thresholds.citation.label) == (
        D(10),
        D(400),
        "Diorio C, Vatsayan A, et al. Blood Adv 2022 (Table 1)",
    )
    assert {p.institution_slug: p.thresholds for p in published_protocols()}["nih"] == thresholds
    # Changed on a draft, the amount shows in the version diff like any other field (two-person approval).
    draft.usual_daily_cap_mg = D(500)
    draft.save()
    diff = protocol_version_diff(old_version_id=_published("nih").pk, new_version_id=draft.pk)
    assert "usual per-day cap (mg/day)" in str(diff) and "500" in str(diff)
