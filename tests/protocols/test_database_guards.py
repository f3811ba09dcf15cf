"""The database's own guards: check constraints on protocol rows and identifiers, one published version per
protocol, and published versions that refuse every change."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from protocols.models import DosingStep, IndicationRule, ProtocolVersion, PublishedVersionIsImmutable, VersionStatus
from tests import factories


def _step_values(version, **overrides) -> dict:
    values = dict(
        version=version,
        kind="initial",
        name="s",
        applies_to_crs=True,
        dose_basis="mg/kg/dose",
        amount_low=Decimal(2),
        amount_high=Decimal(2),
        interval_hours=6,
        route_iv=True,
    )
    values.update(overrides)
    return values


@pytest.mark.integration
@pytest.mark.parametrize(
    ("overrides", "constraint"),
    [
        ({"amount_low": Decimal(3)}, "step_amount_low_le_high"),
        ({"amount_low": Decimal(0)}, "step_amount_measurable"),
        ({"dose_basis": "mg/kg/week"}, "step_dose_basis_known"),
        ({"route_iv": False}, "step_has_a_route"),
        ({"applies_to_crs": False}, "step_applies_to_a_toxicity"),
        ({"interval_hours": None}, "step_per_dose_basis_needs_interval"),
        ({"interval_hours": 5}, "step_interval_divides_day"),
        ({"max_single_dose_mg": Decimal(-1)}, "step_single_dose_cap_positive_with_interval"),
        ({"max_single_dose_mg": Decimal(500), "max_daily_dose_mg": Decimal(400)}, "step_single_cap_le_daily_cap"),
        ({"rounding_increment_mg": Decimal(100)}, "step_rounding_complete_and_in_range"),
        (
            {"rounding_increment_mg": Decimal(100), "rounding_tolerance_percent": Decimal(30)},
            "step_rounding_complete_and_in_range",
        ),
        ({"escalation_ceiling_amount": Decimal(10)}, "step_escalation_complete"),
        ({"escalation_ceiling_basis": "mg/kg/day"}, "step_escalation_complete"),
        ({"rounding_tolerance_percent": Decimal(10)}, "step_rounding_complete_and_in_range"),
        ({"min_grade": 3, "max_grade": 2}, "step_grade_band_valid"),
        ({"kind": "bolus"}, "step_kind_known"),
        (
            {
                "dose_basis": "mg/kg/day",
                "amount_low": Decimal("0.3"),
                "amount_high": Decimal("0.3"),
                "interval_hours": 4,
            },
            "step_divided_dose_measurable",
        ),
    ],
)
def test_database_rejects_invalid_dosing_step(db, overrides, constraint):
    draft = factories.ProtocolVersionFactory()
    # bulk_create skips model validation: the database itself must refuse.
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        DosingStep.objects.bulk_create([DosingStep(**_step_values(draft, **overrides))])


@pytest.mark.integration
@pytest.mark.parametrize(
    ("overrides", "constraint"),
    [
        ({"applies_to_crs": False}, "rule_applies_to_a_toxicity"),
        ({"min_grade": 5}, "rule_grade_1_to_4"),
        ({"result_status": "contraindicated"}, "rule_status_known"),
        ({"first_line_if_isolated_late_onset": True}, "rule_first_line_has_summary"),
    ],
)
def test_database_rejects_invalid_indication_rule(db, overrides, constraint):
    draft = factories.ProtocolVersionFactory()
    values = {"version": draft, "applies_to_crs": True, "summary": "s", **overrides}
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        IndicationRule.objects.bulk_create([IndicationRule(**values)])


@pytest.mark.integration
def test_database_allows_one_published_version_per_protocol(db):
    cnh = ProtocolVersion.objects.get(protocol__institution__slug="cnh", status=VersionStatus.PUBLISHED)
    with pytest.raises(IntegrityError, match="one_published_version_per_protocol"), transaction.atomic():
        ProtocolVersion.objects.bulk_create(
            [
                ProtocolVersion(
                    protocol=cnh.protocol,
                    number=9,
                    status="published",
                    published_at=cnh.published_at,
                    utilization="x",
                    indications_summary="y",
                )
            ]
        )


@pytest.mark.integration
@pytest.mark.parametrize(("field", "value"), [("doi", "doi:10.1/x"), ("pmid", "PMC123")])
def test_database_rejects_malformed_identifiers(db, field, value):
    from evidence.models import Reference

    with pytest.raises(IntegrityError), transaction.atomic():
        Reference.objects.bulk_create([Reference(key="bad", short_label="x", authors="y", **{field: value})])


@pytest.fixture
def published(db) -> ProtocolVersion:
    return ProtocolVersion.objects.get(protocol__institution__slug="cnh", status=VersionStatus.PUBLISHED)


@pytest.mark.integration
def test_published_version_refuses_save_and_delete(published):
    published.notes = "changed"
    with pytest.raises(PublishedVersionIsImmutable):
        published.save()
    with pytest.raises(PublishedVersionIsImmutable):
        published.delete()
    assert ProtocolVersion.objects.get(pk=published.pk).notes != "changed"


@pytest.mark.integration
def test_published_version_refuses_bulk_update_and_delete(published):
    with pytest.raises(PublishedVersionIsImmutable):
        ProtocolVersion.objects.filter(pk=published.pk).update(notes="changed")
    with pytest.raises(PublishedVersionIsImmutable):
        ProtocolVersion.objects.filter(protocol__institution__slug="cnh").delete()


@pytest.mark.integration
def test_published_version_rows_refuse_every_change(published):
    step = published.steps.get()
    step.max_single_dose_mg = Decimal(150)
    with pytest.raises(PublishedVersionIsImmutable):
        step.save()
    with pytest.raises(PublishedVersionIsImmutable):
        DosingStep.objects.filter(version=published).update(max_single_dose_mg=Decimal(150))
    with pytest.raises(PublishedVersionIsImmutable):
        published.rules.all().delete()
    with pytest.raises(PublishedVersionIsImmutable):
        DosingStep.objects.bulk_create([DosingStep(**_step_values(published))])
    with pytest.raises(PublishedVersionIsImmutable):
        factories.StepCitationFactory(step=step)
    assert published.steps.get().max_single_dose_mg == Decimal(100)


@pytest.mark.integration
def test_draft_rows_can_be_edited(db):
    draft = factories.ProtocolVersionFactory()
    step = factories.DosingStepFactory(version=draft)
    step.max_single_dose_mg = Decimal(90)
    step.save()
    assert DosingStep.objects.get(pk=step.pk).max_single_dose_mg == Decimal(90)
