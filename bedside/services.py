"""Writes from the bedside: a finished wizard becomes a stored assessment."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from assessments.models import Assessment
from assessments.services import assessment_create
from bedside.models import AssessmentGrading, InstitutionChoice
from engine.inputs import RecommendationRequest
from protocols.models import Institution
from protocols.selectors import published_protocols


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
    institution_choice_remember(user=user, institution_slug=request.institution)
    return assessment
