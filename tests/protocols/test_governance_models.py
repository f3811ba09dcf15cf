"""Model validation (every CheckConstraint has a field message) and the immutability of published
versions through the ORM and, below it, the database triggers."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import serializers
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from evidence.models import Reference, Study
from protocols.models import (
    DosingStep,
    IndicationRule,
    Institution,
    ProtocolCitation,
    ProtocolTestPatient,
    ProtocolVersion,
    PublishedVersionIsImmutable,
    StepCitation,
    VersionStatus,
)
from protocols.services import protocol_version_draft_create
from tests import factories

pytestmark = pytest.mark.integration


def _draft() -> ProtocolVersion:
    return factories.ProtocolVersionFactory()


def _step(**overrides) -> DosingStep:
    values = {
        "version": _draft(),
        "kind": "initial",
        "name": "Initial dosing",
        "applies_to_crs": True,
        "dose_basis": "mg/kg/dose",
        "amount_low": Decimal("2"),
        "amount_high": Decimal("2"),
        "interval_hours": 6,
        "route_iv": True,
        "max_single_dose_mg": Decimal("100"),
        "max_daily_dose_mg": Decimal("400"),
    }
    return DosingStep(**(values | overrides))


def _rule(**overrides) -> IndicationRule:
    return IndicationRule(**({"version": _draft(), "applies_to_crs": True, "summary": "third line"} | overrides))


def _version(**overrides) -> ProtocolVersion:
    protocol = factories.ProtocolFactory()
    return ProtocolVersion(
        **({"protocol": protocol, "number": 1, "utilization": "x", "indications_summary": "y"} | overrides)
    )


def _test_patient(**overrides) -> ProtocolTestPatient:
    return factories.ProtocolTestPatientFactory.build(version=factories.ProtocolVersionFactory(), **overrides)


def _reference(**overrides) -> Reference:
    return Reference(**({"key": "a-ref", "short_label": "A, et al. 2020", "authors": "A"} | overrides))


def _study(**overrides) -> Study:
    values = {
        "key": "a-study",
        "table_order": 99,
        "label": "A et al",
        "study_type": "Case series",
        "population": "adult",
        "population_summary": "Adults",
        "anakinra_use": "Treatment",
        "dose_as_reported": "100 mg",
        "response": "Improved",
        "addresses_crs": True,
    }
    return Study(**(values | overrides))


# Every CheckConstraint of the governed models: an instance breaking it, and the field that must
# carry the message. A new constraint without an entry here fails the completeness test below.
BROKEN = {
    "institution_slug_not_empty": (lambda: Institution(slug="", name="A", short_name="A"), "slug"),
    "version_number_positive": (lambda: _version(number=0), "number"),
    "version_status_known": (lambda: _version(status="bogus"), "status"),
    "published_version_has_published_at": (lambda: _version(status="published"), "published_at"),
    "version_concentration_positive": (
        lambda: _version(concentration_mg_per_ml=Decimal("0")),
        "concentration_mg_per_ml",
    ),
    "rule_applies_to_a_toxicity": (lambda: _rule(applies_to_crs=False), "applies_to_crs"),
    "rule_grade_1_to_4": (lambda: _rule(min_grade=5), "min_grade"),
    "rule_tocilizumab_doses_0_to_10": (lambda: _rule(min_prior_tocilizumab_doses=11), "min_prior_tocilizumab_doses"),
    "rule_status_known": (lambda: _rule(result_status="bogus"), "result_status"),
    "rule_first_line_has_summary": (lambda: _rule(first_line_if_isolated_late_onset=True), "first_line_summary"),
    "rule_grade_band_valid": (lambda: _rule(min_grade=3, max_grade=2), "min_grade"),
    "rule_repeat_tocilizumab_note_complete": (
        lambda: _rule(repeat_tocilizumab_from_doses=2),
        "repeat_tocilizumab_note",
    ),
    "version_thresholds_complete": (
        lambda: _version(reported_max_mg_per_kg_per_day=Decimal("10")),
        "usual_daily_cap_mg",
    ),
    "step_applies_to_a_toxicity": (lambda: _step(applies_to_crs=False), "applies_to_crs"),
    "step_kind_known": (lambda: _step(kind="bogus"), "kind"),
    "step_dose_basis_known": (lambda: _step(dose_basis="bogus"), "dose_basis"),
    "step_has_a_route": (lambda: _step(route_iv=False), "route_iv"),
    "step_grade_band_valid": (lambda: _step(min_grade=3, max_grade=2), "min_grade"),
    "step_amount_measurable": (lambda: _step(amount_low=Decimal("0.05")), "amount_low"),
    "step_divided_dose_measurable": (
        lambda: _step(
            dose_basis="mg/kg/day",
            amount_low=Decimal("0.3"),
            amount_high=Decimal("0.3"),
            interval_hours=4,
            max_single_dose_mg=None,
        ),
        "amount_low",
    ),
    "step_daily_cap_divides_measurably": (
        lambda: _step(max_single_dose_mg=None, max_daily_dose_mg=Decimal("0.2")),
        "max_daily_dose_mg",
    ),
    "step_amount_low_le_high": (lambda: _step(amount_low=Decimal("10"), amount_high=Decimal("8")), "amount_low"),
    "step_interval_divides_day": (lambda: _step(interval_hours=5), "interval_hours"),
    "step_per_dose_basis_needs_interval": (
        lambda: _step(interval_hours=None, max_single_dose_mg=None),
        "interval_hours",
    ),
    "step_interval_maximum_needs_interval": (
        lambda: _step(dose_basis="mg/kg/day", interval_hours=None, max_single_dose_mg=None, interval_is_maximum=True),
        "interval_is_maximum",
    ),
    "step_single_dose_cap_positive_with_interval": (
        lambda: _step(max_single_dose_mg=Decimal("0")),
        "max_single_dose_mg",
    ),
    "step_daily_cap_positive": (lambda: _step(max_daily_dose_mg=Decimal("0")), "max_daily_dose_mg"),
    "step_single_cap_le_daily_cap": (lambda: _step(max_single_dose_mg=Decimal("500")), "max_single_dose_mg"),
    "step_escalation_complete": (lambda: _step(escalation_ceiling_amount=Decimal("10")), "escalation_ceiling_basis"),
    "step_rounding_complete_and_in_range": (
        lambda: _step(rounding_increment_mg=Decimal("100"), rounding_tolerance_percent=Decimal("30")),
        "rounding_tolerance_percent",
    ),
    "test_patient_status_known": (lambda: _test_patient(expected_status="bogus"), "expected_status"),
    "test_patient_step_has_per_day_range": (
        lambda: _test_patient(expected_step_name="Initial dosing"),
        "expected_per_day_low_mg",
    ),
    "test_patient_per_dose_range_valid": (
        lambda: _test_patient(expected_per_dose_low_mg=Decimal("50"), expected_per_dose_high_mg=Decimal("40")),
        "expected_per_dose_low_mg",
    ),
    "reference_doi_starts_10": (lambda: _reference(doi="doi.org/10.1/x"), "doi"),
    "reference_pmid_digits": (lambda: _reference(pmid="012"), "pmid"),
    "reference_year_range": (lambda: _reference(year=1800), "year"),
    "reference_number_positive": (lambda: _reference(letter_ref_number=0), "letter_ref_number"),
    "study_addresses_a_toxicity": (lambda: _study(addresses_crs=False), "addresses_crs"),
    "study_population_known": (lambda: _study(population="bogus"), "population"),
    "study_regimen_complete_or_absent": (lambda: _study(regimen_amount_low=Decimal("2.5")), "regimen_protocol"),
}

GOVERNED_MODELS = (Institution, ProtocolVersion, IndicationRule, DosingStep, ProtocolTestPatient, Reference, Study)


def test_every_check_constraint_has_a_broken_example():
    # Arrange/Act: the constraints declared on the models
    names = {
        c.name for model in GOVERNED_MODELS for c in model._meta.constraints if isinstance(c, models.CheckConstraint)
    }

    assert names == set(BROKEN)


@pytest.mark.parametrize("constraint", sorted(BROKEN))
def test_check_constraint_reported_as_field_message(db, constraint):
    make, field = BROKEN[constraint]
    instance = make()

    with pytest.raises(ValidationError) as caught:
        instance.full_clean()

    errors = caught.value.message_dict
    assert field in errors
    assert [m for messages in errors.values() for m in messages if "Constraint" in m] == []


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        (
            {
                "amount_low": Decimal("10"),
                "amount_high": Decimal("8"),
                "dose_basis": "mg/kg/day",
                "interval_hours": None,
                "max_single_dose_mg": None,
            },
            "amount_low",
            "The low amount (10 mg/kg/day) is above the high amount (8 mg/kg/day). "
            "For a single value, give it in both.",
        ),
        (
            {"interval_hours": None, "max_single_dose_mg": None},
            "interval_hours",
            "A mg/kg/dose amount needs an interval (how many hours between doses).",
        ),
        (
            {"max_single_dose_mg": Decimal("500")},
            "max_single_dose_mg",
            "The maximum per dose (500 mg) is above the maximum per day (400 mg).",
        ),
        (
            {"rounding_increment_mg": Decimal("100"), "rounding_tolerance_percent": Decimal("30")},
            "rounding_tolerance_percent",
            "The rounding tolerance must be above 0% and at most 25% (it is 30%).",
        ),
    ],
    ids=["low-above-high", "missing-interval", "dose-cap-above-day-cap", "tolerance-out-of-range"],
)
def test_step_clean_messages_name_the_problem_with_units(db, overrides, field, message):
    step = _step(**overrides)

    with pytest.raises(ValidationError) as caught:
        step.full_clean()

    assert caught.value.message_dict == {field: [message]}


def test_test_patient_inputs_validated_like_the_api(db):
    test_patient = _test_patient(
        inputs={"weight_kg": 200, "age_years": 8, "toxicities": [], "prior_steroids": True, "institution": "cnh"}
    )

    with pytest.raises(ValidationError) as caught:
        test_patient.full_clean()

    assert caught.value.message_dict["inputs"] == [
        'Leave out "institution": a test patient belongs to its protocol.',
        "weight_kg: must be from 1 to 150 kg",
        "toxicities: must list 1 to 3 toxicities",
        "prior_tocilizumab_doses: This field is required.",
    ]


# --- Published versions cannot change: ORM guards -------------------------------------------------


@pytest.fixture
def published_cnh(db) -> ProtocolVersion:
    return ProtocolVersion.objects.get(protocol__institution__slug="cnh", status=VersionStatus.PUBLISHED)


def test_published_version_save_and_delete_refused_by_the_orm(published_cnh):
    published_cnh.notes = "changed"

    with pytest.raises(PublishedVersionIsImmutable):
        published_cnh.save()
    with pytest.raises(PublishedVersionIsImmutable):
        published_cnh.delete()
    with pytest.raises(PublishedVersionIsImmutable):
        ProtocolVersion.objects.filter(pk=published_cnh.pk).update(notes="changed")
    with pytest.raises(PublishedVersionIsImmutable):
        ProtocolVersion.objects.filter(pk=published_cnh.pk).delete()

    assert ProtocolVersion.objects.get(pk=published_cnh.pk).notes == (
        "Also used as a steroid- and tocilizumab-sparing agent. Cases: Dreyzin et al (Table 2)."
    )


def test_published_version_rows_refused_by_the_orm(published_cnh):
    step = published_cnh.steps.get()
    step.max_single_dose_mg = Decimal("80")

    with pytest.raises(PublishedVersionIsImmutable):
        step.save()
    with pytest.raises(PublishedVersionIsImmutable):
        DosingStep.objects.filter(pk=step.pk).update(max_single_dose_mg=Decimal("80"))
    with pytest.raises(PublishedVersionIsImmutable):
        published_cnh.rules.all().delete()
    with pytest.raises(PublishedVersionIsImmutable):
        IndicationRule.objects.bulk_create([IndicationRule(version=published_cnh, applies_to_crs=True, summary="x")])

    assert DosingStep.objects.get(pk=step.pk).max_single_dose_mg == Decimal("100")
    # cnh: CRS/ICANS grade 3-4 indicated, carHLH indicated, CRS/ICANS grade 1-2 consider (clinical.md 1.1)
    assert published_cnh.rules.count() == 3


# --- A published version's test patients: frozen by every path --------------------------------------

HEAVY = "60 kg, ICANS grade 4 after tocilizumab and steroids: per-dose cap"


def _heavy(version: ProtocolVersion) -> ProtocolTestPatient:
    return version.test_patients.get(label=HEAVY)


def _heavy_as_seeded(version: ProtocolVersion) -> tuple:
    return ProtocolTestPatient.objects.filter(version=version).values_list(
        "label", "expected_per_dose_low_mg", "expected_per_dose_high_mg", "inputs"
    )


def test_published_test_patients_refused_by_model_save_and_delete(published_cnh):
    before = list(_heavy_as_seeded(published_cnh))
    test_patient = _heavy(published_cnh)
    test_patient.expected_per_dose_low_mg = test_patient.expected_per_dose_high_mg = Decimal("200")

    with pytest.raises(PublishedVersionIsImmutable, match="cannot be changed"):
        test_patient.save()
    with pytest.raises(PublishedVersionIsImmutable, match="cannot be deleted"):
        _heavy(published_cnh).delete()
    with pytest.raises(PublishedVersionIsImmutable, match="cannot be changed"):
        ProtocolTestPatient(version=published_cnh, label="added", inputs={}, expected_status="indicated").save()

    assert list(_heavy_as_seeded(published_cnh)) == before


def test_published_test_patients_refused_by_bulk_update_delete_and_create(published_cnh):
    before = list(_heavy_as_seeded(published_cnh))
    mine = ProtocolTestPatient.objects.filter(version=published_cnh)
    added = ProtocolTestPatient(version=published_cnh, label="added", inputs={}, expected_status="indicated")

    with pytest.raises(PublishedVersionIsImmutable):
        mine.update(expected_status="not_indicated")
    with pytest.raises(PublishedVersionIsImmutable):
        mine.delete()
    with pytest.raises(PublishedVersionIsImmutable):
        ProtocolTestPatient.objects.bulk_create([added])
    with pytest.raises(PublishedVersionIsImmutable):
        published_cnh.delete()  # the cascade would take its test patients with it

    assert list(_heavy_as_seeded(published_cnh)) == before


def test_published_test_patients_refused_by_raw_sql(published_cnh):
    before = list(_heavy_as_seeded(published_cnh))
    test_patient = _heavy(published_cnh)

    with pytest.raises(IntegrityError, match="rows of a published protocol version cannot be changed"):
        _raw("UPDATE protocols_protocoltestpatient SET expected_per_dose_low_mg = 200 WHERE id = %s", [test_patient.pk])
    with pytest.raises(IntegrityError, match="rows of a published protocol version cannot be changed"):
        _raw("UPDATE protocols_protocoltestpatient SET inputs = '{}'::jsonb WHERE version_id = %s", [published_cnh.pk])
    with pytest.raises(IntegrityError, match="cannot be changed or deleted"):
        _raw("DELETE FROM protocols_protocoltestpatient WHERE id = %s", [test_patient.pk])
    with pytest.raises(IntegrityError, match="rows cannot be added to a published protocol version"):
        _raw(
            "INSERT INTO protocols_protocoltestpatient (version_id, label, inputs, expected_status, "
            "expected_step_name, arithmetic, created_at, updated_at) "
            "VALUES (%s, 'raw', '{}'::jsonb, 'indicated', '', '', now(), now())",
            [published_cnh.pk],
        )

    assert list(_heavy_as_seeded(published_cnh)) == before


def test_published_test_patient_cannot_be_moved_into_or_out_of_a_published_version(published_cnh, pharmacist):
    draft = protocol_version_draft_create(
        protocol=ProtocolVersion.objects.get(protocol__institution__slug="musc", status="published").protocol,
        author=pharmacist,
    )
    draft_patient = draft.test_patients.first()
    published_patient = _heavy(published_cnh)

    with pytest.raises(IntegrityError, match="cannot be changed"):
        _raw(
            "UPDATE protocols_protocoltestpatient SET version_id = %s WHERE id = %s",
            [published_cnh.pk, draft_patient.pk],
        )
    with pytest.raises(IntegrityError, match="cannot be changed"):
        _raw("UPDATE protocols_protocoltestpatient SET version_id = %s WHERE id = %s", [draft.pk, published_patient.pk])
    draft_patient.version = published_cnh
    with pytest.raises(PublishedVersionIsImmutable):
        draft_patient.save()

    assert ProtocolTestPatient.objects.get(pk=published_patient.pk).version_id == published_cnh.pk
    assert ProtocolTestPatient.objects.get(pk=draft_patient.pk).version_id == draft.pk


def test_published_test_patients_refused_as_an_edited_fixture(published_cnh):
    test_patient = _heavy(published_cnh)
    edited = next(serializers.deserialize("json", serializers.serialize("json", [test_patient])))
    edited.object.expected_per_dose_low_mg = Decimal("200")

    with pytest.raises(IntegrityError), transaction.atomic():
        edited.save()

    assert _heavy(published_cnh).expected_per_dose_low_mg == Decimal("100")


def test_draft_test_patients_stay_editable_by_every_path(pharmacist):
    draft = protocol_version_draft_create(
        protocol=ProtocolVersion.objects.get(protocol__institution__slug="cnh", status="published").protocol,
        author=pharmacist,
    )
    test_patient = _heavy(draft)

    _raw("UPDATE protocols_protocoltestpatient SET arithmetic = 'raw edit' WHERE id = %s", [test_patient.pk])
    ProtocolTestPatient.objects.filter(pk=test_patient.pk).update(expected_status="consider")
    test_patient.refresh_from_db()

    assert (test_patient.arithmetic, test_patient.expected_status) == ("raw edit", "consider")


# --- ... and the database triggers below them -------------------------------------------------


def _raw(sql: str, params: list) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_trigger_refuses_raw_sql_change_of_published_rows(published_cnh):
    step = published_cnh.steps.get()

    with pytest.raises(IntegrityError, match="rows of a published protocol version cannot be changed"):
        _raw("UPDATE protocols_dosingstep SET max_single_dose_mg = 80 WHERE id = %s", [step.pk])
    with pytest.raises(IntegrityError, match="cannot be changed"):
        _raw("UPDATE protocols_protocolversion SET notes = 'x' WHERE id = %s", [published_cnh.pk])
    with pytest.raises(IntegrityError, match="cannot be changed or deleted"):
        _raw("DELETE FROM protocols_protocolcitation WHERE version_id = %s", [published_cnh.pk])
    with pytest.raises(IntegrityError, match="cannot be deleted"):
        _raw("DELETE FROM protocols_protocolversion WHERE id = %s", [published_cnh.pk])
    with pytest.raises(IntegrityError, match="cannot be changed"):
        _raw("UPDATE protocols_protocolversion SET status = 'draft' WHERE id = %s", [published_cnh.pk])

    assert DosingStep.objects.get(pk=step.pk).max_single_dose_mg == Decimal("100")
    assert published_cnh.citations.count() == 2


def test_trigger_allows_identical_raw_resave_but_not_a_changed_fixture(published_cnh):
    # loaddata and test-data restores save rows raw: identical rows pass, edited ones do not.
    step = published_cnh.steps.get()
    for row in serializers.deserialize("json", serializers.serialize("json", [published_cnh, step])):
        row.save()  # JSON keeps timestamps to the millisecond: still the same row
    edited = next(serializers.deserialize("json", serializers.serialize("json", [step])))
    edited.object.max_single_dose_mg = Decimal("80")

    with pytest.raises(IntegrityError), transaction.atomic():
        edited.save()

    assert DosingStep.objects.get(pk=step.pk).max_single_dose_mg == Decimal("100")
    assert ProtocolVersion.objects.get(pk=published_cnh.pk).published_at == published_cnh.published_at


def test_trigger_leaves_drafts_editable(db):
    draft = factories.ProtocolVersionFactory()
    step = factories.DosingStepFactory(version=draft)

    _raw("UPDATE protocols_dosingstep SET max_single_dose_mg = 80 WHERE id = %s", [step.pk])
    _raw("DELETE FROM protocols_dosingstep WHERE id = %s", [step.pk])

    assert DosingStep.objects.filter(pk=step.pk).exists() is False


# --- Every change to a draft's rows moves its revision -------------------------------------------


def test_row_changes_bump_the_draft_revision(db):
    draft = factories.ProtocolVersionFactory()
    start = ProtocolVersion.objects.get(pk=draft.pk).edit_revision
    step = factories.DosingStepFactory(version=draft)
    citation = StepCitation.objects.create(step=step, reference=factories.ReferenceFactory())
    step.notes = "edited"
    step.save()
    citation.delete()
    DosingStep.objects.filter(pk=step.pk).update(notes="bulk edit")

    assert ProtocolVersion.objects.get(pk=draft.pk).edit_revision == start + 5


# --- INSERT into a published version (migration 0007) -------------------------------------------

FROZEN_ROW_MODELS = (IndicationRule, DosingStep, ProtocolCitation, StepCitation, ProtocolTestPatient)


def _raw_copy(model, pk: int) -> None:
    """Copy a row into the same version by plain SQL, below every model guard."""
    table = model._meta.db_table
    columns = ", ".join(connection.ops.quote_name(f.column) for f in model._meta.concrete_fields if not f.primary_key)
    _raw(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {table} WHERE id = %s", [pk])


def _one_published_row(model):
    return model.objects.filter(**{f"{model.VERSION_PATH}__status": VersionStatus.PUBLISHED}).order_by("pk").first()


@pytest.mark.parametrize("model", FROZEN_ROW_MODELS, ids=lambda m: m.__name__)
def test_trigger_refuses_raw_sql_insert_into_published_version(published_cnh, model):
    row = _one_published_row(model)
    before = model.objects.count()

    with pytest.raises(IntegrityError, match="rows cannot be added to a published protocol version"):
        _raw_copy(model, row.pk)

    assert model.objects.count() == before


@pytest.mark.parametrize("model", FROZEN_ROW_MODELS, ids=lambda m: m.__name__)
def test_trigger_refuses_orm_raw_save_into_published_version(published_cnh, model):
    # save_base(raw=True) is what loaddata does: it skips the model's own guard.
    row = _one_published_row(model)
    before = model.objects.count()
    row.pk = row.id = None
    row._state.adding = True
    if model is DosingStep:
        row.position, row.name = 99, "inserted"
    if model is ProtocolTestPatient:
        row.label = "inserted"

    with pytest.raises(IntegrityError, match="rows cannot be added"), transaction.atomic():
        row.save_base(raw=True)

    assert model.objects.count() == before


def test_trigger_allows_insert_into_drafts(db):
    draft = factories.ProtocolVersionFactory()
    rule = factories.IndicationRuleFactory(version=draft)

    _raw_copy(IndicationRule, rule.pk)

    assert draft.rules.count() == 2


def test_trigger_has_no_restore_bypass(published_cnh):
    # Migration 0007 let a session with `protocols.restore` on insert into a published version; 0008 removed it.
    rule = published_cnh.rules.first()
    before = published_cnh.rules.count()

    with pytest.raises(IntegrityError, match="rows cannot be added"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL protocols.restore = 'on'")
        _raw_copy(IndicationRule, rule.pk)

    assert published_cnh.rules.count() == before


# --- The catalog revision moves with every table the engine catalog reads -------------------------


def _revision() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT revision FROM protocols_catalogrevision WHERE id = 1")
        return cursor.fetchone()[0]


@pytest.mark.parametrize(
    "table",
    [
        "protocols_protocol",
        "protocols_protocolversion",
        "protocols_institution",
        "evidence_reference",
        "protocols_indicationrule",
        "protocols_dosingstep",
        "protocols_protocolcitation",
        "protocols_stepcitation",
    ],
)
def test_catalog_revision_moves_on_every_catalog_table(db, table):
    before = _revision()

    _raw(f"UPDATE {table} SET id = id WHERE id IN (SELECT id FROM {table} LIMIT 1)", [])

    assert _revision() != before


def test_catalog_revision_moves_when_an_approver_is_renamed_but_not_on_login(published_cnh, pharmacist):
    before = _revision()
    pharmacist.last_login = timezone.now()
    pharmacist.save(update_fields=["last_login"])
    after_login = _revision()
    pharmacist.first_name = "Renamed"
    pharmacist.save(update_fields=["first_name"])

    assert after_login == before
    assert _revision() != before
