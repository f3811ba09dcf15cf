"""The faster write path keeps every guarantee: a token revoked (or its user deactivated) after use is
refused on the next request, the stored answer is the full answer byte for byte, and JSON written
through orjson is the same text simplejson writes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import simplejson
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.utils import timezone

from accounts.models import ApiToken
from accounts.selectors import user_for_api_key
from anakinra_cds import jsonutil
from assessments.models import Assessment

BODY = {
    "weight_kg": 23.4,
    "age_years": 8,
    "toxicities": [{"type": "CRS", "grade": 3}, {"type": "carHLH", "grade": 3}],
    "prior_tocilizumab_doses": 1,
    "prior_steroids": True,
}


def simplejson_text(value) -> str:
    """What jsonutil.dumps wrote before orjson: the reference text."""
    return simplejson.dumps(
        value,
        use_decimal=True,
        default=DjangoJSONEncoder().default,
        ensure_ascii=False,
        separators=(",", ":"),
        allow_nan=False,
    )


def post(client, body=BODY):
    return client.post("/api/v1/recommendations", body, content_type="application/json")


@pytest.mark.integration
def test_token_revoked_after_use_is_refused_on_the_next_request(token_client, clinician):
    assert post(token_client).status_code == 200
    ApiToken.objects.filter(user=clinician).update(revoked_at=timezone.now())
    answer = post(token_client)
    assert (answer.status_code, answer.json()) == (401, {"errors": {"auth": ["Invalid or revoked token."]}})


@pytest.mark.integration
def test_token_of_user_deactivated_after_use_is_refused_on_the_next_request(token_client, clinician):
    assert post(token_client).status_code == 200
    type(clinician).objects.filter(pk=clinician.pk).update(is_active=False)
    assert post(token_client).status_code == 401


@pytest.mark.integration
def test_token_lookup_returns_the_owner_with_every_field_and_one_query(api_key, clinician, django_assert_num_queries):
    user_for_api_key(key=api_key)  # compiled once per process; later calls are one query each
    with django_assert_num_queries(1):
        user = user_for_api_key(key=api_key)
    assert (user.pk, user.username, user.is_active, user.last_name, user._state.adding) == (
        clinician.pk,
        "clin",
        True,
        clinician.last_name,
        False,
    )
    assert user_for_api_key(key=api_key + "x") is None


@pytest.mark.integration
def test_stored_answer_is_the_full_answer_sent(token_client):
    answer = post(token_client)
    assert answer.status_code == 200
    stored = Assessment.objects.get(pk=answer.json()["assessment_id"])
    sent = jsonutil.loads(answer.content)
    assert stored.recommendations == sent["recommendations"]
    assert len(stored.recommendations) == 6


@pytest.mark.integration
def test_stored_answers_are_compressed_with_lz4_on_postgresql(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attcompression FROM pg_attribute WHERE attrelid = 'assessments_assessment'::regclass "
            "AND attname = 'recommendations'"
        )
        assert cursor.fetchone() == ("l",)


@pytest.mark.integration
@pytest.mark.parametrize("weight", [1, 9.9, 23.4, 60, 150])
def test_json_of_real_answers_is_the_text_simplejson_writes(token_client, weight):
    answer = post(token_client, {**BODY, "weight_kg": weight})
    stored = Assessment.objects.get(pk=answer.json()["assessment_id"])
    payload = {"recommendations": stored.recommendations, "created_at": stored.created_at, "id": stored.id}
    assert jsonutil.dumps(payload) == simplejson_text(payload)


@pytest.mark.unit
def test_json_writes_numbers_times_ids_and_raw_text_as_before():
    value = {
        "decimals": [Decimal("10"), Decimal("0.5"), Decimal("1E+1"), Decimal("-0"), Decimal("2.50")],
        "when": datetime(2026, 12, 3, 9, 12, 36, 779123, tzinfo=UTC),
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "text": "\u2265 0.5 mg/kg \u2013 \u201csubcut\u201d\n\t\u2028",
        "nested": [None, True, 3, (1, 2)],
        "raw": jsonutil.raw('{"a":[1,2.50]}'),
    }
    text = jsonutil.dumps(value)
    assert text == simplejson_text(value)
    assert text.startswith('{"decimals":[10,0.5,1E+1,-0,2.50],"when":"2026-12-03T09:12:36.779Z"')


@pytest.mark.unit
def test_json_falls_back_for_what_orjson_refuses_with_the_same_text():
    beyond_64_bits = {"n": 2**70, "keys": {1: "one"}}
    expected = '{"n":1180591620717411303424,"keys":{"1":"one"}}'
    assert jsonutil.dumps(beyond_64_bits) == simplejson_text(beyond_64_bits) == expected


@pytest.mark.unit
@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_json_refuses_decimals_json_cannot_hold(value):
    with pytest.raises(ValueError, match="not JSON compliant"):
        jsonutil.dumps({"n": value})
