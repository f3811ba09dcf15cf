"""The v1 JSON API (docs/api.md): auth, validation, stored assessments, OpenAPI conformance."""

from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError

from anakinra_cds import jsonutil
from assessments.models import Assessment
from protocols.models import ProtocolVersion, VersionStatus
from protocols.selectors.catalog import protocol_version_data, published_protocols
from protocols.services import protocol_version_publish
from tests import factories

pytestmark = pytest.mark.integration

URL = "/api/v1/recommendations"
D = Decimal
VALID = {
    "weight_kg": 20,
    "age_years": 8,
    "toxicities": [{"type": "CRS", "grade": 3}],
    "prior_tocilizumab_doses": 1,
    "prior_steroids": True,
}


def post(client: Client, body) -> tuple[int, dict]:
    payload = body if isinstance(body, str | bytes) else jsonutil.dumps(body)
    response = client.post(URL, payload, content_type="application/json")
    return response.status_code, response.json()


@pytest.fixture
def openapi(db) -> dict:
    return Client().get("/api/v1/openapi.json").json()


def conforms(openapi: dict, schema_name: str, instance: dict) -> None:
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": openapi["components"]}
    Draft202012Validator(schema).validate(instance)


# --- Authentication -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("post", URL),
        ("get", "/api/v1/institutions"),
        ("get", "/api/v1/assessments/7d1c6f0e-0000-4000-8000-000000000000"),
    ],
)
def test_api_anonymous_gets_json_401(db, method, url):
    response = getattr(Client(), method)(url, content_type="application/json")
    assert (response.status_code, response["Content-Type"], response.json()) == (
        401,
        "application/json",
        {"errors": {"auth": ["Authentication required: log in, or send 'Authorization: Token <key>'."]}},
    )


def test_api_wrong_token_is_401(db):
    client = Client(headers={"Authorization": "Token not-a-real-key"})
    assert post(client, VALID) == (401, {"errors": {"auth": ["Invalid or revoked token."]}})


def test_api_revoked_token_is_401(db, clinician):
    from django.utils import timezone

    from accounts.services import api_token_create

    token, key = api_token_create(user=clinician, name="old")
    token.revoked_at = timezone.now()
    token.save()
    assert post(Client(headers={"Authorization": f"Token {key}"}), VALID)[0] == 401


def test_api_token_of_inactive_user_is_401(db, clinician, api_key):
    clinician.is_active = False
    clinician.save()
    assert post(Client(headers={"Authorization": f"Token {api_key}"}), VALID)[0] == 401


def test_api_session_post_needs_csrf(db, clinician):
    client = Client(enforce_csrf_checks=True)
    client.force_login(clinician)
    status, body = post(client, VALID)
    assert (status, body) == (403, {"errors": {"auth": ["CSRF check failed for a session-authenticated request."]}})


def test_api_session_with_csrf_token_succeeds(db, clinician):
    client = Client(enforce_csrf_checks=True)
    client.force_login(client_user := clinician)
    client.get("/accounts/login/")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    response = client.post(URL, json.dumps(VALID), content_type="application/json", headers={"X-CSRFToken": token})
    assert response.status_code == 200
    assert Assessment.objects.get(pk=response.json()["assessment_id"]).created_by == client_user


def test_create_api_token_command_prints_a_working_key(db, clinician):
    out = StringIO()
    call_command("create_api_token", clinician.username, "--name", "EHR", stdout=out)
    key = out.getvalue().strip().splitlines()[-1]
    assert post(Client(headers={"Authorization": f"Token {key}"}), VALID)[0] == 200


# --- Validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("weight_kg", 0.99, "must be from 1 to 150 kg"),
        ("weight_kg", 150.5, "must be from 1 to 150 kg"),
        ("weight_kg", "20", "must be a number"),
        ("weight_kg", True, "must be a number"),
        # quantized to the gram (half up) before the range check: 150.0005 -> 150.001 > 150, 0.9994 -> 0.999 < 1
        ("weight_kg", D("150.0005"), "must be from 1 to 150 kg"),
        ("weight_kg", D("0.9994"), "must be from 1 to 150 kg"),
        ("age_years", -1, "must be from 0 to 40 years"),
        ("age_years", 41, "must be from 0 to 40 years"),
        ("toxicities", [], "must list 1 to 3 toxicities"),
        (
            "toxicities",
            [{"type": "CRS", "grade": 1}, {"type": "CRS", "grade": 2}],
            "each toxicity type may appear only once",
        ),
        ("toxicities", [{"type": "CRS", "grade": 5}], "item 1 grade: must be from 1 to 4"),
        ("toxicities", [{"type": "CRS", "grade": 2.5}], "item 1 grade: must be a whole number"),
        ("toxicities", [{"type": "HLH", "grade": 2}], "item 1 type: must be one of 'CRS', 'ICANS' or 'carHLH'"),
        ("toxicities", [{"type": "CRS"}], "item 1 grade: This field is required."),
        ("toxicities", "CRS", "must be a list"),
        ("prior_tocilizumab_doses", 11, "must be from 0 to 10"),
        ("prior_tocilizumab_doses", 1.5, "must be a whole number"),
        ("prior_tocilizumab_doses", True, "must be a whole number"),
        ("prior_steroids", "yes", "must be true or false"),
        ("prior_steroids", 1, "must be true or false"),
        ("car_target", "CD20", "must be one of 'CD19', 'CD22', 'CD19/CD22' or 'other'"),
        ("days_since_infusion", 366, "must be from 0 to 365"),
        ("fever", "no", "must be true or false"),
        ("creatinine_clearance_ml_min", 301, "must be from 0 to 300 mL/min"),
        ("concurrent_tnf_blocker", None, "must be true or false"),
        ("institution", "mayo", "Unknown institution 'mayo'."),
        ("institution", 7, "must be a string"),
    ],
)
def test_recommendations_rejects_invalid_field(token_client, field, value, message):
    assert post(token_client, {**VALID, field: value}) == (400, {"errors": {field: [message]}})


@pytest.mark.parametrize("spelling", ["20.0000", "2E+1", "20.000"])
def test_recommendations_weight_precision_is_the_values_not_its_spelling(token_client, spelling):
    # 20.0000 and 2E+1 are both 20 kg (no fourth decimal of a kg is stated): accepted and echoed as 20.
    body = json.dumps({**VALID, "institution": "cnh"}).replace('"weight_kg": 20', f'"weight_kg": {spelling}')
    response = token_client.post(URL, body, content_type="application/json")
    assert response.status_code == 200
    assert b'"weight_kg":20,' in response.content
    # 2 mg/kg x 20 kg = 40 mg per dose
    assert response.json()["recommendations"][0]["steps"][0]["per_dose_mg"] == {"low": 40, "high": 40}


@pytest.mark.parametrize(
    ("spelling", "echoed", "per_dose_mg"),
    [
        # 44 lb x 0.45359237 = 19.95806428 kg, as an EHR converts it: 19.958 kg; 2 mg/kg x 19.958 = 39.916 -> 39.9 mg
        ("19.95806428", "19.958", "39.9"),
        # 38 decimals: quantized the same way, never refused and never silently different from the API's echo
        ("20.00049999999999999999999999999999999999", "20", "40"),
        # ROUND_HALF_UP, not banker's rounding: 20.0005 -> 20.001; 2 x 20.001 = 40.002 -> 40 mg
        ("20.0005", "20.001", "40"),
        # at the range ends after quantizing: 0.9995 -> 1 kg (2 mg); 150.0004 -> 150 kg (100 mg cap)
        ("0.9995", "1", "2"),
        ("150.0004", "150", "100"),
    ],
)
def test_recommendations_weight_is_quantized_to_the_gram_and_echoed(token_client, spelling, echoed, per_dose_mg):
    body = json.dumps({**VALID, "institution": "cnh"}).replace('"weight_kg": 20', f'"weight_kg": {spelling}')
    response = token_client.post(URL, body, content_type="application/json")
    assert response.status_code == 200
    answer = jsonutil.loads(response.content)
    assert (answer["inputs"]["weight_kg"], answer["recommendations"][0]["steps"][0]["per_dose_mg"]) == (
        D(echoed),
        {"low": D(per_dose_mg), "high": D(per_dose_mg)},
    )
    assert Assessment.objects.get(pk=answer["assessment_id"]).inputs["weight_kg"] == D(echoed)


def test_recommendations_reports_every_invalid_field_at_once(token_client):
    body = {"weight_kg": 200, "toxicities": [], "prior_steroids": "no", "institution": "nowhere", "pounds": 44}
    status, response = post(token_client, body)
    assert status == 400
    assert response["errors"] == {
        "weight_kg": ["must be from 1 to 150 kg"],
        "age_years": ["This field is required."],
        "toxicities": ["must list 1 to 3 toxicities"],
        "prior_tocilizumab_doses": ["This field is required."],
        "prior_steroids": ["must be true or false"],
        "pounds": ["Unknown field."],
        "institution": ["Unknown institution 'nowhere'."],
    }
    assert Assessment.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "Malformed JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        ("", "Malformed JSON: Expecting value: line 1 column 1 (char 0)"),
        ('{"weight_kg": NaN}', "Malformed JSON: NaN is not a valid JSON number: line 1 column 1 (char 0)"),
        ("[" * 50_000, "Malformed JSON: nested too deeply: line 1 column 1 (char 0)"),
        (b'{"a": "\xff"}', "Malformed JSON: 'utf-8' codec can't decode byte 0xff in position 7: invalid start byte"),
    ],
)
def test_recommendations_malformed_json_is_a_body_error(token_client, body, message):
    assert post(token_client, body) == (400, {"errors": {"body": [message]}})


def test_recommendations_non_object_body_is_a_body_error(token_client):
    assert post(token_client, [VALID]) == (400, {"errors": {"body": ["The body must be a JSON object."]}})


def post_raw(client: Client, text: str) -> tuple[int, str, dict]:
    response = client.post(URL, text, content_type="application/json")
    return response.status_code, response["Content-Type"], response.json()


def with_number(field: str, spelling: str) -> str:
    """VALID as JSON text with `field` set to a number spelled exactly so (json.dumps cannot write 1E-16384)."""
    return json.dumps({**VALID, field: 0}).replace(f'"{field}": 0', f'"{field}": {spelling}')


def test_recommendations_twenty_thousand_toxicities_cost_one_error(token_client):
    # Reproduction: 20,000 invalid entries (a 0.46 MB body) took 30 s to validate and the worker was killed.
    # The list is counted before its items are read: one error on it, and the other fields still reported.
    body = json.dumps({**VALID, "age_years": 41, "toxicities": [{"type": "HLH", "grade": 9}] * 20_000})
    assert len(body) > 450_000
    assert post_raw(token_client, body) == (
        400,
        "application/json",
        {"errors": {"age_years": ["must be from 0 to 40 years"], "toxicities": ["must list 1 to 3 toxicities"]}},
    )
    assert Assessment.objects.count() == 0


def test_recommendations_every_unknown_field_is_reported(token_client):
    # Error collection is linear: 20,000 unknown fields are each reported once, in order.
    extra = {f"field_{n}": n for n in range(20_000)}
    status, content_type, body = post_raw(token_client, json.dumps({**VALID, **extra}))
    assert (status, content_type) == (400, "application/json")
    assert list(body["errors"]) == list(extra)
    assert {tuple(messages) for messages in body["errors"].values()} == {("Unknown field.",)}


@pytest.mark.parametrize(
    ("field", "spelling", "message"),
    [
        # Reproduction: PostgreSQL cannot store 1E-16384; it passed validation and failed on INSERT (a 500).
        ("age_years", "1E-16384", "must have at most 2 decimal places"),
        ("creatinine_clearance_ml_min", "1E-16384", "must have at most 1 decimal place"),
        ("age_years", "8.125", "must have at most 2 decimal places"),
        ("creatinine_clearance_ml_min", "45.55", "must have at most 1 decimal place"),
        ("age_years", "1E+999999999", "must be from 0 to 40 years"),
        ("prior_tocilizumab_doses", "1E+999999999", "must be a whole number"),
    ],
)
def test_recommendations_numbers_beyond_their_decimals_are_field_errors(token_client, field, spelling, message):
    assert post_raw(token_client, with_number(field, spelling)) == (
        400,
        "application/json",
        {"errors": {field: [message]}},
    )
    assert Assessment.objects.count() == 0


@pytest.mark.parametrize(
    ("field", "spelling", "echoed"),
    [
        ("age_years", "8.25", Decimal("8.25")),
        ("age_years", "8.500", Decimal("8.5")),
        ("age_years", "0E-16384", Decimal("0")),
        ("creatinine_clearance_ml_min", "45.5", Decimal("45.5")),
        ("creatinine_clearance_ml_min", "4.50E+1", Decimal("45")),
        # JSON Schema's "integer" matches 3 and 3.0 alike; so does the API.
        ("prior_tocilizumab_doses", "1.0", 1),
        ("days_since_infusion", "7.00", 7),
    ],
)
def test_recommendations_numbers_within_their_decimals_are_stored_plain(token_client, field, spelling, echoed):
    response = token_client.post(URL, with_number(field, spelling), content_type="application/json")
    assert response.status_code == 200
    stored = Assessment.objects.get(pk=response.json()["assessment_id"])
    assert (response.json()["inputs"][field], stored.inputs[field]) == (echoed, echoed)


def test_recommendations_get_is_a_json_405(token_client):
    response = token_client.get(URL)
    assert (response.status_code, response["Allow"], response.json()) == (
        405,
        "POST",
        {"errors": {"method": ["GET is not allowed here; use POST."]}},
    )


def test_institutions_post_is_a_json_405(token_client):
    response = token_client.post("/api/v1/institutions", content_type="application/json")
    assert (response.status_code, response["Allow"], response.json()) == (
        405,
        "GET, HEAD",
        {"errors": {"method": ["POST is not allowed here; use GET."]}},
    )


@pytest.mark.parametrize("path", ["/api/v1/recommendations/", "/api/v1/nothing-here", "/api/v1/"])
def test_api_unknown_path_is_a_json_404(token_client, path):
    response = token_client.post(path, data={}, content_type="application/json")
    assert (response.status_code, response["Content-Type"], response.json()) == (
        404,
        "application/json",
        {"errors": {"path": [f"No API endpoint at {path!r}; see /api/v1/openapi.json."]}},
    )


# --- Answers and stored assessments -------------------------------------------------------------


def test_recommendations_answers_every_institution_in_name_order(token_client):
    status, body = post(token_client, VALID)
    assert status == 200
    assert [r["institution"]["slug"] for r in body["recommendations"]] == [
        "chop",
        "cnh",
        "musc",
        "nih",
        "seattle",
        "stjude",
    ]
    assert body["print_url"] == f"/assessments/{body['assessment_id']}/print/"
    assert body["inputs"] == {
        **VALID,
        "car_target": "other",
        "days_since_infusion": None,
        "fever": None,
        "hypotension": None,
        "late_onset_isolated": None,
        "thrombocytopenia_or_coagulopathy": False,
        "concurrent_tnf_blocker": False,
        "ecoli_protein_hypersensitivity": False,
        "active_infection": False,
        "creatinine_clearance_ml_min": None,
        "institution": None,
    }


def test_recommendations_for_one_institution(token_client):
    status, body = post(token_client, {**VALID, "institution": "cnh"})
    (only,) = body["recommendations"]
    assert (status, only["institution"], only["steps"][0]["per_dose_mg"]) == (
        200,
        {"slug": "cnh", "name": "Children's National Hospital"},
        {"low": 40, "high": 40},
    )


def test_recommendations_numbers_are_exact_json_numbers(token_client):
    response = token_client.post(
        URL,
        json.dumps({**VALID, "weight_kg": 45, "toxicities": [{"type": "carHLH", "grade": 2}], "institution": "stjude"}),
        content_type="application/json",
    )
    # 10 mg/kg/day x 45 kg / 4 = 112.5 mg, written as a JSON number, not a string or float artefact
    assert '"per_dose_mg":{"low":112.5,"high":112.5}' in response.content.decode()


def test_assessment_round_trip_returns_the_same_answer(token_client):
    _, created = post(token_client, VALID)
    fetched = token_client.get(f"/api/v1/assessments/{created['assessment_id']}")
    assert (fetched.status_code, fetched.json()) == (200, created)
    stored = Assessment.objects.get(pk=created["assessment_id"])
    used = ProtocolVersion.objects.filter(pk__in=stored.protocol_version_ids)
    assert sorted(used.values_list("protocol__institution__slug", flat=True)) == [
        "chop",
        "cnh",
        "musc",
        "nih",
        "seattle",
        "stjude",
    ]
    assert stored.inputs["weight_kg"] == Decimal("20")


def test_assessment_unchanged_after_a_newer_version_is_published(token_client, pharmacist):
    _, created = post(token_client, {**VALID, "institution": "cnh"})
    old = ProtocolVersion.objects.get(protocol__institution__slug="cnh", status=VersionStatus.PUBLISHED)
    newer = factories.ProtocolVersionFactory(protocol=old.protocol, number=2)
    factories.IndicationRuleFactory(version=newer, min_prior_tocilizumab_doses=0)
    factories.DosingStepFactory(
        version=newer, amount_low=Decimal(3), amount_high=Decimal(3), max_single_dose_mg=Decimal(90)
    )
    protocol_version_publish(version=newer, approved_by=pharmacist)

    fetched = token_client.get(f"/api/v1/assessments/{created['assessment_id']}").json()
    _, fresh = post(token_client, {**VALID, "institution": "cnh"})
    assert fetched == created
    assert (
        fetched["recommendations"][0]["protocol"]["version"],
        fresh["recommendations"][0]["protocol"]["version"],
    ) == (1, 2)
    # 3 mg/kg x 20 kg = 60 mg under the new version; the stored answer keeps 40 mg.
    assert (
        fetched["recommendations"][0]["steps"][0]["per_dose_mg"],
        fresh["recommendations"][0]["steps"][0]["per_dose_mg"],
    ) == (
        {"low": 40, "high": 40},
        {"low": 60, "high": 60},
    )


@pytest.mark.parametrize("assessment_id", ["7d1c6f0e-0000-4000-8000-000000000000", "not-a-uuid"])
def test_assessment_unknown_id_is_404(token_client, assessment_id):
    response = token_client.get(f"/api/v1/assessments/{assessment_id}")
    assert (response.status_code, response.json()) == (
        404,
        {"errors": {"assessment_id": ["No assessment with this id."]}},
    )


def test_assessment_stores_no_patient_identifiers(db):
    field_names = {f.name for f in Assessment._meta.get_fields()}
    assert field_names == {
        "id",
        "created_at",
        "created_by",
        "source",
        "institution_requested",
        "inputs",
        "recommendations",
        "protocol_version_ids",
        "rules_revision",  # the engine's clinical rules it was computed under (engine.revisions)
        "bedside_grading",  # how each grade was reached (findings, never identifiers)
        "bedside_literature",  # a published regimen worked out for the weight (never identifiers)
    }


def test_institutions_lists_current_protocols_without_doses(token_client):
    body = token_client.get("/api/v1/institutions").json()
    cnh = next(i for i in body["institutions"] if i["slug"] == "cnh")
    assert [i["slug"] for i in body["institutions"]] == ["chop", "cnh", "musc", "nih", "seattle", "stjude"]
    assert cnh["steps"][0] | {"citations": None, "duration": None, "taper": None} == {
        "kind": "initial",
        "name": "Initial dosing",
        "applies_to": ["CRS", "ICANS", "carHLH"],
        "grades": {"low": 1, "high": 4},
        "routes": ["IV"],
        "interval_hours": 6,
        "interval_is_maximum": False,
        "dose_basis": "mg/kg/dose",
        "amount": {"low": 2, "high": 2},
        "max_single_dose_mg": 100,
        "max_daily_dose_mg": 400,
        "escalation_ceiling": None,
        "rounding": None,
        "notes": "",
        "citations": None,
        "duration": None,
        "taper": None,
    }


# --- OpenAPI conformance ------------------------------------------------------------------------


def test_openapi_document_describes_every_endpoint(openapi):
    assert (openapi["openapi"], sorted(openapi["paths"])) == (
        "3.1.0",
        [
            "/api/v1/assessments/{assessment_id}",
            "/api/v1/assessments/{assessment_id}/fhir",
            "/api/v1/institutions",
            "/api/v1/openapi.json",
            "/api/v1/recommendations",
        ],
    )


def test_openapi_request_schema_states_every_limit(openapi):
    schemas = openapi["components"]["schemas"]
    request = schemas["RecommendationRequest"]["properties"]
    limits = {
        name: {k: v for k, v in schema.items() if k in ("minimum", "maximum", "multipleOf")}
        for name, schema in request.items()
        if "minimum" in schema
    }
    optional = {
        name: {k: v for k, v in schema["anyOf"][0].items() if k in ("minimum", "maximum", "multipleOf")}
        for name, schema in request.items()
        if "anyOf" in schema and "minimum" in schema["anyOf"][0]
    }
    assert (limits, optional) == (
        {
            # any number of decimals (api.md): quantized to the gram, so no multipleOf
            "weight_kg": {"minimum": 1, "maximum": 150},
            "age_years": {"minimum": 0, "maximum": 40, "multipleOf": 0.01},
            "prior_tocilizumab_doses": {"minimum": 0, "maximum": 10},
        },
        {
            "days_since_infusion": {"minimum": 0, "maximum": 365},
            "creatinine_clearance_ml_min": {"minimum": 0, "maximum": 300, "multipleOf": 0.1},
        },
    )
    assert schemas["ToxicityIn"]["properties"]["grade"] | {"description": None} == {
        "type": "integer",
        "minimum": 1,
        "maximum": 4,
        "title": "Grade",
        "description": None,
    }
    toxicities = request["toxicities"]
    assert (toxicities["minItems"], toxicities["maxItems"], toxicities["allOf"]) == (
        1,
        3,
        [
            {
                "contains": {"properties": {"type": {"const": kind}}, "required": ["type"]},
                "minContains": 0,
                "maxContains": 1,
            }
            for kind in ("CRS", "ICANS", "carHLH")
        ],
    )


def test_openapi_schema_refuses_what_the_api_refuses(openapi):
    # The stated limits are the API's: a schema validator refuses these bodies too.
    refused = [
        {**VALID, "toxicities": [{"type": "CRS", "grade": 1}, {"type": "CRS", "grade": 2}]},
        {**VALID, "toxicities": [{"type": "CRS", "grade": 1}] * 4},
        {**VALID, "age_years": 8.125},
        {**VALID, "institution": "mayo"},
        {**VALID, "prior_tocilizumab_doses": 11},
    ]
    outcomes = []
    for body in refused:
        try:
            conforms(openapi, "RecommendationRequest", body)
            outcomes.append("accepted")
        except SchemaError:
            outcomes.append("refused")
    assert outcomes == ["refused"] * len(refused)


def test_openapi_institution_enum_follows_the_published_protocols(client, pharmacist):
    def enum() -> list[str]:
        document = client.get("/api/v1/openapi.json").json()
        return document["components"]["schemas"]["RecommendationRequest"]["properties"]["institution"]["anyOf"][0][
            "enum"
        ]

    before = enum()
    version = factories.ProtocolVersionFactory(protocol__institution__slug="newcenter")
    factories.IndicationRuleFactory(version=version)
    factories.DosingStepFactory(version=version)
    protocol_version_publish(version=version, approved_by=pharmacist)
    assert (before, enum()) == (
        ["chop", "cnh", "musc", "nih", "seattle", "stjude"],
        ["chop", "cnh", "musc", "newcenter", "nih", "seattle", "stjude"],
    )


@pytest.mark.parametrize(
    "body",
    [
        VALID,
        {
            **VALID,
            "toxicities": [{"type": "carHLH", "grade": 4}, {"type": "ICANS", "grade": 3}],
            "weight_kg": 150,
            "age_years": 35,
            "car_target": "CD22",
            "concurrent_tnf_blocker": True,
            "active_infection": True,
            "thrombocytopenia_or_coagulopathy": True,
            "creatinine_clearance_ml_min": 20,
            "days_since_infusion": 30,
            "fever": False,
            "hypotension": False,
            "late_onset_isolated": True,
        },
        {**VALID, "ecoli_protein_hypersensitivity": True},
        {**VALID, "weight_kg": 38.5, "toxicities": [{"type": "carHLH", "grade": 1}], "institution": "stjude"},
    ],
)
def test_openapi_real_responses_conform(token_client, openapi, body):
    status, created = post(token_client, body)
    conforms(openapi, "RecommendationResponse", created)
    conforms(
        openapi, "RecommendationResponse", token_client.get(f"/api/v1/assessments/{created['assessment_id']}").json()
    )
    assert status == 200


def test_openapi_errors_and_institutions_conform(token_client, openapi):
    conforms(openapi, "ErrorResponse", post(token_client, {"weight_kg": 0})[1])
    conforms(openapi, "InstitutionList", token_client.get("/api/v1/institutions").json())


def test_openapi_validator_would_catch_a_contract_break(token_client, openapi):
    _, created = post(token_client, VALID)
    created["recommendations"][0]["status"] = "maybe"
    with pytest.raises(SchemaError):
        conforms(openapi, "RecommendationResponse", created)


def test_openapi_request_schema_accepts_the_spec_example(openapi):
    conforms(openapi, "RecommendationRequest", {**VALID, "institution": "cnh", "car_target": "CD19"})


# --- Performance shape --------------------------------------------------------------------------


def test_recommendations_six_institutions_in_a_fixed_number_of_queries(token_client, django_assert_num_queries):
    post(token_client, VALID)  # warm the protocol cache
    # token, catalog revision, assessment insert
    with django_assert_num_queries(3):
        status, body = post(token_client, VALID)
    assert (status, len(body["recommendations"])) == (200, 6)


def test_published_protocols_load_in_five_queries_whatever_the_number(db, django_assert_num_queries, pharmacist):
    from protocols.selectors.catalog import published_protocols_load

    with django_assert_num_queries(5):
        six = published_protocols_load()
    extra = factories.ProtocolVersionFactory()
    factories.IndicationRuleFactory(version=extra)
    step = factories.DosingStepFactory(version=extra)
    factories.StepCitationFactory(step=step)
    factories.ProtocolCitationFactory(version=extra)
    protocol_version_publish(version=extra, approved_by=pharmacist)
    with django_assert_num_queries(5):
        seven = published_protocols_load()
    assert (len(six), len(seven)) == (6, 7)


def test_published_protocols_cache_never_serves_a_retired_version(db, pharmacist, django_assert_num_queries):
    before = {p.institution_slug: p.version_id for p in published_protocols()}
    with django_assert_num_queries(1):  # warm: only the catalog revision
        published_protocols()
    old = ProtocolVersion.objects.get(pk=before["cnh"])
    newer = factories.ProtocolVersionFactory(protocol=old.protocol, number=2)
    factories.IndicationRuleFactory(version=newer)
    factories.DosingStepFactory(version=newer)
    protocol_version_publish(version=newer, approved_by=pharmacist)
    after = {p.institution_slug: p.version_id for p in published_protocols()}
    assert (after["cnh"], {k: v for k, v in after.items() if k != "cnh"}) == (
        newer.pk,
        {k: v for k, v in before.items() if k != "cnh"},
    )
    assert protocol_version_data(version_id=old.pk).version_number == 1


def test_catalog_revision_changes_with_every_path_of_change(db, pharmacist):
    from django.db import connection

    from evidence.models import Reference
    from protocols.selectors.catalog import _catalog_token

    seen = [_catalog_token()]
    Reference.objects.filter(key="ref-20").update(note="checked")  # a queryset update (no model save)
    seen.append(_catalog_token())
    draft = factories.ProtocolVersionFactory()  # any version row, even a draft
    seen.append(_catalog_token())
    with connection.cursor() as cursor:  # raw SQL bypasses every Python guard
        cursor.execute("UPDATE protocols_institution SET location = 'x' WHERE slug = 'cnh'")
    seen.append(_catalog_token())
    protocol_version_publish(version=draft, approved_by=pharmacist)
    seen.append(_catalog_token())
    assert len(set(seen)) == len(seen) == 5


def test_published_cache_follows_a_change_made_in_raw_sql(db, django_assert_num_queries):
    from django.db import connection

    before = published_protocols()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE protocols_institution SET name = 'Renamed Center' WHERE slug = 'cnh'")
    after = published_protocols()
    assert [p.institution_name for p in before if p.institution_slug == "cnh"] == ["Children's National Hospital"]
    assert [p.institution_name for p in after if p.institution_slug == "cnh"] == ["Renamed Center"]
