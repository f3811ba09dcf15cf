"""Writes from the bedside: a finished wizard becomes a stored assessment."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from assessments.models import Assessment
from assessments.services import assessment_create
from bedside.models import AssessmentGrading, AssessmentLiterature, InstitutionChoice
from bedside.selectors import literature_regimen_studies
from engine import notation
from engine.inputs import RecommendationRequest
from engine.literature import LiteratureRegimen, literature_amounts
from engine.vocabulary import DoseBasis, Route
from protocols.models import Institution
from protocols.selectors.catalog import published_protocols


class UnknownInstitution(ValueError):
    """The chosen institution has no published protocol (any more)."""


def institution_choice_remember(*, user: AbstractBaseUser, institution_slug: str) -> InstitutionChoice:
    """One INSERT ... ON CONFLICT (user) DO UPDATE: two finishes at once by the same user cannot both
    try to create the row (a get-then-create would hit the unique constraint and fail)."""
    institution = Institution.objects.get(slug=institution_slug)
    choice = InstitutionChoice(user=user, institution=institution, chosen_at=timezone.now())
    choice.full_clean(validate_unique=False)  # the row may exist: the upsert replaces it
    InstitutionChoice.objects.bulk_create(
        [choice], update_conflicts=True, unique_fields=["user"], update_fields=["institution", "chosen_at"]
    )
    return choice


@transaction.atomic
def bedside_assessment_create(
    *, request: RecommendationRequest, gradings: list[dict[str, Any]], user: AbstractBaseUser
) -> Assessment:
    """Run every center's protocol for the wizard's answers and store how each grade was reached.

    The request is the API's own schema, already validated; the chosen institution is kept in the
    inputs (shown first) while the answer covers every institution (compared side by side).
    """
    protocols = published_protocols()
    if request.institution is None or request.institution not in {p.institution_slug for p in protocols}:
        raise UnknownInstitution(f"No published protocol for {request.institution!r}.")
    assessment = assessment_create(
        patient=request.to_patient(),
        inputs=request.echo(),
        institution_slug=None,
        created_by=user,
        source=Assessment.Source.BEDSIDE,
        protocols=protocols,
    )
    grading = AssessmentGrading(assessment=assessment, toxicities=gradings)
    grading.full_clean()
    grading.save()
    regimens = literature_regimens_for(
        institution_slugs=[p.institution_slug for p in protocols], weight_kg=request.weight_kg
    )
    if regimens:
        literature = AssessmentLiterature(assessment=assessment, regimens=regimens)
        literature.full_clean()
        literature.save()
    institution_choice_remember(user=user, institution_slug=request.institution)
    return assessment


def literature_regimens_for(*, institution_slugs: list[str], weight_kg: Decimal) -> list[dict[str, Any]]:
    """Each published regimen linked to one of these protocols, worked out for this weight by the engine."""
    regimens = []
    for study in literature_regimen_studies(institution_slugs=institution_slugs):
        regimen = LiteratureRegimen(
            dose_basis=DoseBasis(study.regimen_dose_basis),
            amount_low=study.regimen_amount_low,
            amount_high=study.regimen_amount_high,
            interval_hours=study.regimen_interval_hours,
            routes=tuple(Route(r) for r in study.regimen_routes),
        )
        amounts = literature_amounts(regimen=regimen, weight_kg=weight_kg)
        regimens.append(
            {
                "institution": study.regimen_protocol.institution.slug,
                "study_key": study.key,
                "study_label": study.label,
                "references": [reference.short_label for reference in study.references.all()],
                "dose_basis": regimen.dose_basis.value,
                "amount": {"low": regimen.amount_low, "high": regimen.amount_high},
                "interval_hours": regimen.interval_hours,
                "routes": [route.value for route in regimen.routes],
                "weight_kg": notation.plain_decimal(weight_kg),
                "per_dose_mg": {"low": amounts.per_dose_mg.low, "high": amounts.per_dose_mg.high},
                "per_day_mg": {"low": amounts.per_day_mg.low, "high": amounts.per_day_mg.high},
                "doses_per_day": amounts.doses_per_day,
                "arithmetic": list(amounts.arithmetic),
            }
        )
    return regimens
