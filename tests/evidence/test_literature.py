"""A center's own published regimen (nih: the letter's Table 2, Lichtenstein/Shah) as data: the engine's
arithmetic for a weight, the study's fields and their checks, the loader, the admin, and the snapshot
stored beside a wizard assessment. The amounts are worked out by hand from the regimen."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from bedside.models import AssessmentLiterature
from bedside.services import bedside_assessment_create, literature_regimens_for
from engine.data import DoseRange
from engine.inputs import RecommendationRequest
from engine.literature import LiteratureRegimen, literature_amounts
from engine.vocabulary import DoseBasis, Route
from evidence.models import LoadedRecord, Study
from protocols.models import Protocol
from protocols.seed import SEED_PATH, SeedFileError, clinical_data_load, content_fingerprint, seed_file_parse
from tests.admin_helpers import admin_form_data, logged_in
from tests.factories import AssessmentLiteratureFactory, UserFactory

NIH_TRIAL = LiteratureRegimen(
    dose_basis=DoseBasis.MG_PER_KG_PER_DOSE,
    amount_low=Decimal("2.5"),
    amount_high=Decimal("4"),
    interval_hours=12,
    routes=(Route.SC,),
)


# --- The engine's arithmetic -----------------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize(
    ("weight_kg", "per_dose", "per_day"),
    [
        # 2.5 x 12 = 30, 4 x 12 = 48 mg per dose; twice daily: 60 to 96 mg/day
        (Decimal("12"), (Decimal("30"), Decimal("48")), (Decimal("60"), Decimal("96"))),
        # 2.5 x 20.5 = 51.25 -> 51.3 mg (0.1 mg, half up), 4 x 20.5 = 82 mg; 102.6 to 164 mg/day
        (Decimal("20.5"), (Decimal("51.3"), Decimal("82")), (Decimal("102.6"), Decimal("164"))),
    ],
)
def test_literature_amounts_for_a_weight(weight_kg, per_dose, per_day):
    amounts = literature_amounts(regimen=NIH_TRIAL, weight_kg=weight_kg)
    assert (amounts.per_dose_mg, amounts.per_day_mg, amounts.doses_per_day) == (
        DoseRange(*per_dose),
        DoseRange(*per_day),
        2,
    )


@pytest.mark.unit
def test_literature_amounts_write_the_arithmetic_out():
    assert literature_amounts(regimen=NIH_TRIAL, weight_kg=Decimal("12")).arithmetic == (
        "2.5 to 4 mg/kg/dose x 12 kg = 30 to 48 mg per dose",
        "2 doses a day x 30 to 48 mg = 60 to 96 mg/day",
    )


@pytest.mark.unit
def test_literature_amounts_of_a_per_day_regimen_are_divided_into_its_doses():
    # 8 mg/kg/day x 12 kg = 96 mg/day in 2 doses of 48 mg
    regimen = LiteratureRegimen(DoseBasis.MG_PER_KG_PER_DAY, Decimal("8"), Decimal("8"), 12, (Route.SC,))
    amounts = literature_amounts(regimen=regimen, weight_kg=Decimal("12"))
    assert (amounts.per_dose_mg, amounts.per_day_mg) == (
        DoseRange(Decimal("48"), Decimal("48")),
        DoseRange(Decimal("96"), Decimal("96")),
    )


# --- The data file ---------------------------------------------------------------------------------


def _edited_seed(tmp_path, old: str, new: str):
    text = SEED_PATH.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "clinical_data.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


NIH_REGIMEN_LINE = 'regimen = { protocol = "nih", dose_basis = "mg/kg/dose", amount_low = 2.5, amount_high = 4,'


@pytest.mark.unit
@pytest.mark.parametrize(
    ("replacement", "problem"),
    [
        (
            NIH_REGIMEN_LINE.replace('"nih"', '"nowhere"'),
            "study lichtenstein-shah: regimen for unknown protocol nowhere",
        ),
        (NIH_REGIMEN_LINE.replace("amount_low = 2.5", "amount_low = 5"), "regimen: amount_low is above amount_high"),
    ],
)
def test_data_file_refuses_a_regimen_that_does_not_hold(tmp_path, replacement, problem):
    with pytest.raises(SeedFileError, match=problem):
        seed_file_parse(path=_edited_seed(tmp_path, NIH_REGIMEN_LINE, replacement))


@pytest.mark.integration
def test_loader_links_the_trial_regimen_to_nihs_protocol(db):
    with_regimen = [
        (
            s.key,
            s.regimen_protocol.institution.slug,
            s.regimen_dose_basis,
            s.regimen_amount_low,
            s.regimen_amount_high,
            s.regimen_interval_hours,
            s.regimen_routes,
        )
        for s in Study.objects.exclude(regimen_protocol=None)
    ]
    assert with_regimen == [
        ("lichtenstein-shah", "nih", "mg/kg/dose", Decimal("2.5"), Decimal("4"), 12, ("SC",)),
    ]


@pytest.mark.integration
def test_loader_adds_the_regimen_to_a_study_loaded_before_regimens_existed(db):
    # As in a database loaded by the previous release: no regimen, and the ledger's fingerprint of then.
    study = Study.objects.get(key="lichtenstein-shah")
    Study.objects.filter(pk=study.pk).update(
        regimen_protocol=None,
        regimen_dose_basis="",
        regimen_amount_low=None,
        regimen_amount_high=None,
        regimen_interval_hours=None,
        regimen_route_sc=False,
    )
    fields = ("label", "label_as_printed", "study_type", "population", "population_summary", "n_patients")
    fields += ("product", "anakinra_use", "dose_as_reported", "response", "table_order")
    fields += ("addresses_crs", "addresses_icans", "addresses_carhlh")
    old = {name: getattr(study, name) for name in fields} | {"references": ["ref-18", "ref-28"]}
    LoadedRecord.objects.filter(kind="study", natural_key="lichtenstein-shah").update(
        fingerprint=content_fingerprint(old)
    )

    report = clinical_data_load()

    assert (report.refused, "studies: 0 created, 1 updated, 8 unchanged" in report.lines) == ([], True)
    assert Study.objects.get(pk=study.pk).regimen_protocol == Protocol.objects.get(institution__slug="nih")
    assert clinical_data_load().writes == 0  # and then it is up to date


@pytest.mark.integration
def test_loader_keeps_a_regimen_edited_since_it_was_loaded(db):
    Study.objects.filter(key="lichtenstein-shah").update(regimen_amount_high=Decimal("3"))
    report = clinical_data_load()
    assert report.refused == ["study lichtenstein-shah"]
    assert Study.objects.get(key="lichtenstein-shah").regimen_amount_high == Decimal("3")


# --- The study's own checks and the admin ----------------------------------------------------------


def _nih_trial(**changes) -> Study:
    study = Study.objects.get(key="lichtenstein-shah")
    for name, value in changes.items():
        setattr(study, name, value)
    return study


@pytest.mark.integration
@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        (
            {"regimen_interval_hours": None},
            {
                "regimen_interval_hours": [
                    "A regimen needs every field (protocol, basis, amounts, interval, route), or none."
                ]
            },
        ),
        (
            {"regimen_route_sc": False},
            {"regimen_route_sc": ["Choose at least one route for the regimen, or clear the regimen."]},
        ),
        (
            {"regimen_amount_low": Decimal("5")},
            {"regimen_amount_high": ["The high amount must not be below the low amount."]},
        ),
        ({"regimen_amount_low": Decimal("0")}, {"regimen_amount_low": ["The regimen amount must be above 0."]}),
    ],
)
def test_study_regimen_is_complete_and_ordered_or_absent(db, changes, errors):
    with pytest.raises(ValidationError) as caught:
        _nih_trial(**changes).full_clean()
    assert caught.value.message_dict == errors


@pytest.mark.integration
def test_study_without_any_regimen_is_valid(db):
    _nih_trial(
        regimen_protocol=None,
        regimen_dose_basis="",
        regimen_amount_low=None,
        regimen_amount_high=None,
        regimen_interval_hours=None,
        regimen_route_sc=False,
    ).full_clean()


@pytest.mark.integration
def test_admin_edits_a_studys_regimen(db):
    superuser = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = logged_in(superuser)
    study = Study.objects.get(key="lichtenstein-shah")
    url = reverse("admin:evidence_study_change", args=[study.pk])
    page = client.get(url)
    regimen_fields = {name for name in page.context["adminform"].form.fields if name.startswith("regimen_")}
    assert regimen_fields == {
        "regimen_protocol",
        "regimen_dose_basis",
        "regimen_amount_low",
        "regimen_amount_high",
        "regimen_interval_hours",
        "regimen_route_iv",
        "regimen_route_sc",
    }
    assert "Regimen as data" in page.content.decode()
    response = client.post(url, {**admin_form_data(page), "regimen_amount_high": "3.5"})
    assert response.status_code == 302
    assert Study.objects.get(pk=study.pk).regimen_amount_high == Decimal("3.5")


@pytest.mark.integration
def test_admin_refuses_half_a_regimen_with_a_message(db):
    superuser = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = logged_in(superuser)
    study = Study.objects.get(key="lichtenstein-shah")
    url = reverse("admin:evidence_study_change", args=[study.pk])
    response = client.post(url, {**admin_form_data(client.get(url)), "regimen_interval_hours": ""})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "regimen_interval_hours": ["A regimen needs every field (protocol, basis, amounts, interval, route), or none."]
    }


# --- The snapshot beside a wizard assessment -------------------------------------------------------


def _nih_assessment(user):
    request = RecommendationRequest.model_validate(
        {
            "weight_kg": Decimal("12"),
            "age_years": Decimal("3"),
            "toxicities": [{"type": "carHLH", "grade": 3}],
            "prior_tocilizumab_doses": 0,
            "prior_steroids": True,
            "late_onset_isolated": False,
            "institution": "nih",
        }
    )
    gradings = [{"type": "carHLH", "grade": 3, "method": "picked", "set_by": [], "findings": [], "notes": []}]
    return bedside_assessment_create(request=request, gradings=gradings, user=user)


@pytest.mark.integration
def test_literature_regimens_for_only_the_linked_protocol(db):
    assert [r["institution"] for r in literature_regimens_for(institution_slugs=["nih"], weight_kg=Decimal("12"))] == [
        "nih"
    ]
    assert literature_regimens_for(institution_slugs=["cnh", "stjude"], weight_kg=Decimal("12")) == []


@pytest.mark.integration
def test_stored_regimen_stays_as_it_was_when_the_study_is_edited(clinician, clinician_client):
    first = _nih_assessment(clinician)
    Study.objects.filter(key="lichtenstein-shah").update(regimen_amount_high=Decimal("3"))
    second = _nih_assessment(clinician)
    per_dose = {
        a.pk: AssessmentLiterature.objects.get(assessment=a).regimens[0]["per_dose_mg"] for a in (first, second)
    }
    assert per_dose == {
        first.pk: {"low": Decimal("30"), "high": Decimal("48")},
        second.pk: {"low": Decimal("30"), "high": Decimal("36")},  # 3 x 12 = 36 mg
    }
    assert "30 to 48 mg per dose" in clinician_client.get(f"/assessments/{first.id}/").content.decode()


@pytest.mark.integration
def test_assessment_literature_factory_makes_a_valid_row(db):
    literature = AssessmentLiteratureFactory()
    literature.full_clean()
    assert literature.regimens[0]["institution"] == "nih"
