"""The v1 JSON API. Thin: parse and validate, call a service or selector, shape the answer."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from pydantic import ValidationError

from anakinra_cds import jsonutil
from api.auth import api_login_required
from api.openapi import openapi_document
from api.responses import ApiResponse, api_methods, error_response
from assessments.models import Assessment
from assessments.selectors import assessment_get
from assessments.services import assessment_create
from cds_hooks.fhir import assessment_bundle
from engine.inputs import RecommendationRequest, validation_errors
from engine.present import protocol_summary_dict
from engine.revisions import rules_note
from protocols.selectors import published_protocols


def assessment_payload(assessment: Assessment) -> dict[str, Any]:
    return {
        "assessment_id": str(assessment.id),
        "created_at": assessment.created_at,
        "print_url": reverse("assessment_print", kwargs={"assessment_id": assessment.id}),
        "rules_revision": assessment.rules_revision,
        "rules_note": rules_note(assessment.rules_revision),
        "inputs": assessment.inputs,
        "recommendations": assessment.recommendations_json(),
    }


def recommendation_request_parse(
    body: bytes, *, known_slugs: frozenset[str]
) -> tuple[RecommendationRequest | None, dict[str, list[str]]]:
    """Validate a request body; return the request or every error found."""
    try:
        data = jsonutil.loads(body or b"")
    except (ValueError, UnicodeDecodeError) as error:
        return None, {"body": [f"Malformed JSON: {error}"]}
    if not isinstance(data, dict):
        return None, {"body": ["The body must be a JSON object."]}
    errors: dict[str, list[str]] = {}
    request = None
    try:
        request = RecommendationRequest.model_validate(data)
    except ValidationError as error:
        errors = validation_errors(error)
    slug = data.get("institution")
    if isinstance(slug, str) and slug not in known_slugs:
        errors.setdefault("institution", []).append(f"Unknown institution {slug!r}.")
    return (request, {}) if request is not None and not errors else (None, errors)


@api_methods("POST")
@api_login_required
def recommendations_create(request: HttpRequest) -> ApiResponse:
    protocols = published_protocols()
    parsed, errors = recommendation_request_parse(
        request.body, known_slugs=frozenset(p.institution_slug for p in protocols)
    )
    if parsed is None:
        return error_response(errors)
    assessment = assessment_create(
        patient=parsed.to_patient(),
        inputs=parsed.echo(),
        institution_slug=parsed.institution,
        created_by=request.user,
        source=Assessment.Source.API,
        protocols=protocols,
    )
    return ApiResponse(assessment_payload(assessment))


@api_methods("GET")
@api_login_required
def assessment_detail(request: HttpRequest, assessment_id: str) -> ApiResponse:
    assessment = assessment_get(assessment_id=assessment_id)
    if assessment is None:
        return error_response({"assessment_id": ["No assessment with this id."]}, status=404)
    return ApiResponse(assessment_payload(assessment))


@api_methods("GET")
@api_login_required
def assessment_fhir(request: HttpRequest, assessment_id: str) -> HttpResponse:
    """The assessment's recommended steps as FHIR R4 draft MedicationRequests, in a `collection` Bundle."""
    assessment = assessment_get(assessment_id=assessment_id)
    if assessment is None:
        return error_response({"assessment_id": ["No assessment with this id."]}, status=404)
    base_url = settings.SITE_URL or request.build_absolute_uri("/").rstrip("/")
    slugs = {r["institution"]["slug"] for r in assessment.recommendations}
    bundle = assessment_bundle(
        assessment_id=assessment.id,
        created_at=assessment.created_at,
        recommendations=assessment.recommendations,
        protocol_urls={slug: f"{base_url}/protocols/{slug}/" for slug in slugs},
        rules_note=rules_note(assessment.rules_revision),
    )
    response = HttpResponse(jsonutil.dumps(bundle), content_type="application/fhir+json")
    add_never_cache_headers(response)
    return response


@api_methods("GET")
@api_login_required
def institutions_list(request: HttpRequest) -> ApiResponse:
    return ApiResponse({"institutions": [protocol_summary_dict(p) for p in published_protocols()]})


@api_methods("GET")
def openapi(request: HttpRequest) -> ApiResponse:
    return ApiResponse(openapi_document(institution_slugs=(p.institution_slug for p in published_protocols())))
