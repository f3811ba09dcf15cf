"""The OpenAPI 3.1 document, generated from the pydantic schemas the views validate with.

Every limit is declared in those models (engine/inputs.py), so the document states it. The one part that is
data, not code (the institutions with a published protocol), is filled in each time the document is served.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from functools import cache
from typing import Any

from pydantic.json_schema import models_json_schema

from api.schemas import ErrorResponse, InstitutionList, RecommendationRequest, RecommendationResponse

REF_TEMPLATE = "#/components/schemas/{model}"


def _json(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF_TEMPLATE.format(model=schema)}}},
    }


def _retry_later(description: str) -> dict[str, Any]:
    return {
        **_json(description, "ErrorResponse"),
        "headers": {
            "Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}
        },
    }


UNAVAILABLE = _retry_later("The database cannot be reached; nothing was stored. `errors.service` says so.")


def openapi_document(*, institution_slugs: Iterable[str]) -> dict[str, Any]:
    """The document as served: `institution` is one of the institutions with a published protocol now."""
    document = copy.deepcopy(_document())
    institution = document["components"]["schemas"]["RecommendationRequest"]["properties"]["institution"]
    institution["anyOf"] = [{"type": "string", "enum": sorted(institution_slugs)}, {"type": "null"}]
    return document


@cache
def _document() -> dict[str, Any]:
    models = [
        (RecommendationRequest, "validation"),
        (RecommendationResponse, "serialization"),
        (InstitutionList, "serialization"),
        (ErrorResponse, "serialization"),
    ]
    _, definitions = models_json_schema(models, ref_template=REF_TEMPLATE)
    unauthorized = _json("Not authenticated (no session and no valid token).", "ErrorResponse")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Anakinra CDS API",
            "version": "1",
            "description": (
                "Decision support for anakinra in pediatric CAR T-cell toxicities. Amounts are JSON numbers "
                "(mg to 0.1, mL to 0.01); every amount carries its unit in its field name. Decision support "
                "only: the prescriber and pharmacist verify every order."
            ),
        },
        "servers": [{"url": "/"}],
        "components": {
            "schemas": definitions["$defs"],
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "Authorization", "description": "Token <key>"},
                "session": {"type": "apiKey", "in": "cookie", "name": "sessionid"},
            },
        },
        "security": [{"token": []}, {"session": []}],
        "paths": {
            "/api/v1/recommendations": {
                "post": {
                    "operationId": "recommendations_create",
                    "summary": "Recommend anakinra dosing for one patient, per institution protocol",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": REF_TEMPLATE.format(model="RecommendationRequest")}}
                        },
                    },
                    "responses": {
                        "200": _json("The stored assessment with every recommendation.", "RecommendationResponse"),
                        "400": _json("Every invalid field, at once.", "ErrorResponse"),
                        "401": unauthorized,
                        "413": _json("The body is over the size limit; `errors.body` says so.", "ErrorResponse"),
                        "503": UNAVAILABLE,
                    },
                }
            },
            "/api/v1/assessments/{assessment_id}": {
                "get": {
                    "operationId": "assessment_detail",
                    "summary": "A stored assessment, as it was answered",
                    "parameters": [
                        {
                            "name": "assessment_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "format": "uuid"},
                        }
                    ],
                    "responses": {
                        "200": _json("The stored assessment.", "RecommendationResponse"),
                        "401": unauthorized,
                        "404": _json("No assessment with this id.", "ErrorResponse"),
                        "503": UNAVAILABLE,
                    },
                }
            },
            "/api/v1/assessments/{assessment_id}/fhir": {
                "get": {
                    "operationId": "assessment_fhir",
                    "summary": "A stored assessment's recommended steps as FHIR R4 draft MedicationRequests",
                    "parameters": [
                        {
                            "name": "assessment_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "format": "uuid"},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": (
                                "A FHIR R4 Bundle of type collection: one MedicationRequest (status draft, intent "
                                "proposal) per recommended step and route."
                            ),
                            "content": {"application/fhir+json": {"schema": {"type": "object"}}},
                        },
                        "401": unauthorized,
                        "404": _json("No assessment with this id.", "ErrorResponse"),
                        "503": UNAVAILABLE,
                    },
                }
            },
            "/api/v1/institutions": {
                "get": {
                    "operationId": "institutions_list",
                    "summary": "Institutions with their current published protocol (no dose computed)",
                    "responses": {
                        "200": _json("Every institution with a published protocol.", "InstitutionList"),
                        "401": unauthorized,
                        "503": UNAVAILABLE,
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "The OpenAPI 3.1 document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "503": UNAVAILABLE,
                    },
                }
            },
        },
    }
