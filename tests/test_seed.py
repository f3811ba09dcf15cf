"""The loaded clinical data equals the spec (clinical.md section 1), and the loader is safe to rerun."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from evidence.models import Reference, Study
from protocols.models import DosingStep, IndicationRule, Institution, ProtocolVersion, VersionStatus
from protocols.seed import SEED_PATH, SeedFileError, clinical_data_load
from tests import factories

pytestmark = pytest.mark.integration

D = Decimal

# Expected values transcribed from ../shared/spec/clinical.md, section 1 and 1.1 (not from the data file).
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
        ("taper", ("carHLH",), (1, 4), "mg/kg/day", D(5), D(7), None, False, ("SC",), None, None, None, None),
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

# Rule tuple: toxicities, grade floor, tocilizumab doses needed, steroids needed, status, first-line flag
EXPECTED_RULES = {
    "cnh": [(("CRS", "ICANS", "carHLH"), 1, 1, True, "indicated", False)],
    "seattle": [(("ICANS",), 3, 0, True, "indicated", False), (("CRS",), 3, 1, True, "consider", False)],
    "chop": [(("CRS",), 1, 1, True, "indicated", False)],
    "nih": [(("carHLH",), 1, 0, False, "indicated", True)],
    "musc": [(("CRS", "ICANS", "carHLH"), 1, 1, True, "indicated", False)],
    "stjude": [(("carHLH",), 1, 0, False, "indicated", False)],
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
        rule.min_grade,
        rule.min_prior_tocilizumab_doses,
        rule.requires_steroids,
        rule.result_status,
        rule.first_line_if_isolated_late_onset,
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


def test_loader_rerun_changes_nothing(db):
    before = list(ProtocolVersion.objects.order_by("pk").values_list("pk", "status", "edit_revision"))
    report = clinical_data_load()
    after = list(ProtocolVersion.objects.order_by("pk").values_list("pk", "status", "edit_revision"))
    assert (report.writes, report.refused, after) == (0, [], before)
    assert "cnh: unchanged (version 1)" in report.lines


def test_loader_refuses_protocol_edited_since(db):
    cnh = _published("cnh")
    draft = factories.ProtocolVersionFactory(protocol=cnh.protocol, number=2)
    report = clinical_data_load()
    assert report.refused == ["cnh"]
    assert [line for line in report.lines if line.startswith("cnh:")] == [
        "cnh: NOT overwritten - edited since it was loaded (version 2 is draft, not from the data file); "
        "the file's entry was not applied"
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


def test_loader_publishes_new_version_when_file_changes_and_nothing_was_edited(db, tmp_path):
    path = _edited_seed(tmp_path, "max_single_dose_mg = 100\n", "max_single_dose_mg = 90\n")
    report = clinical_data_load(path=path)
    cnh_versions = list(
        ProtocolVersion.objects.filter(protocol__institution__slug="cnh")
        .order_by("number")
        .values_list("number", "status")
    )
    assert cnh_versions == [(1, "retired"), (2, "published")]
    assert _published("cnh").steps.get().max_single_dose_mg == D(90)
    assert "cnh: updated from the data file: version 2, published" in report.lines


def test_loader_check_validates_without_writing(db, tmp_path):
    path = _edited_seed(tmp_path, "max_single_dose_mg = 100\n", "max_single_dose_mg = 90\n")
    count = ProtocolVersion.objects.count()
    call_command("load_clinical_data", "--check", "--file", str(path))
    assert (ProtocolVersion.objects.count(), _published("cnh").number) == (count, 1)


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
