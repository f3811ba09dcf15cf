"""Card feedback lands in the audit trail; CORS answers only the configured origins."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from anakinra_cds import jsonutil
from audit.models import AuditEvent
from audit.selectors import audit_events_for
from tests.ehr_support import ISSUER, ORDER_SELECT_PATH, ORDER_SIGN_PATH, anakinra_draft, full_prefetch, hook_body

pytestmark = pytest.mark.integration

FEEDBACK_PATH = f"{ORDER_SELECT_PATH}/feedback"
EHR_ORIGIN = "https://ehr-ui.example.org"


def _critical_card(ehr) -> dict:
    response = ehr.post(ORDER_SELECT_PATH, hook_body(anakinra_draft(Decimal("100")), prefetch=full_prefetch()))
    (card,) = jsonutil.loads(response.content)["cards"]
    return card


def test_feedback_accepted_suggestion_is_recorded_against_the_issued_card(ehr):
    card = _critical_card(ehr)
    suggestion_uuid = card["suggestions"][0]["uuid"]
    body = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": suggestion_uuid}],
                "outcomeTimestamp": "2026-11-23T10:15:00Z",
            }
        ]
    }

    response = ehr.post(FEEDBACK_PATH, body)

    assert (response.status_code, response.content) == (200, b"")
    events = audit_events_for(subject_type="cds_card", subject_id=card["uuid"]).order_by("id")
    assert [e.action for e in events] == ["cds_card.issued", "cds_card.accepted"]
    accepted = events[1]
    assert (accepted.actor, accepted.actor_label, accepted.reason) == (None, ISSUER, "")
    assert accepted.details == {
        "service": "anakinra-order-select",
        "outcome": "accepted",
        "accepted_suggestions": [suggestion_uuid],
        "override_reason": None,
        "outcome_timestamp": "2026-11-23T10:15:00+00:00",
    }


def test_feedback_override_records_the_reason_and_comment(ehr):
    card = _critical_card(ehr)
    reason = card["overrideReasons"][0]
    body = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "overrideReason": {"reason": reason, "userComment": "Dose agreed with pharmacy"},
                "outcomeTimestamp": "2026-11-23T10:16:00Z",
            }
        ]
    }

    response = ehr.post(FEEDBACK_PATH, body)

    assert response.status_code == 200
    event = AuditEvent.objects.get(action="cds_card.overridden")
    assert (event.subject_id, event.reason) == (
        card["uuid"],
        "Clinical judgement: dose confirmed with pharmacy - Dose agreed with pharmacy",
    )
    assert event.details["override_reason"] == {
        "reason": {
            "system": "urn:anakinra-cds:cds-hooks:override-reason",
            "code": "clinical-judgement",
            "display": "Clinical judgement: dose confirmed with pharmacy",
        },
        "user_comment": "Dose agreed with pharmacy",
    }


def test_feedback_override_without_a_reason_is_recorded(ehr):
    card = _critical_card(ehr)
    body = {"feedback": [{"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:16:00Z"}]}

    assert ehr.post(FEEDBACK_PATH, body).status_code == 200
    assert AuditEvent.objects.get(action="cds_card.overridden").reason == ""


def test_feedback_accepted_without_suggestions_is_400_and_nothing_recorded(ehr):
    body = {"feedback": [{"card": "c-1", "outcome": "accepted", "outcomeTimestamp": "2026-11-23T10:16:00Z"}]}

    response = ehr.post(FEEDBACK_PATH, body)

    assert response.status_code == 400
    assert json.loads(response.content) == {"errors": {"feedback.0": ["an accepted outcome needs acceptedSuggestions"]}}
    assert AuditEvent.objects.count() == 0


def test_feedback_without_a_jwt_is_401_and_nothing_recorded(ehr):
    body = {"feedback": [{"card": "c-1", "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:16:00Z"}]}

    response = ehr.client.post(FEEDBACK_PATH, json.dumps(body), content_type="application/json")

    assert (response.status_code, response.content) == (401, b"")
    assert AuditEvent.objects.count() == 0


def test_cors_preflight_from_a_configured_origin_is_allowed(ehr, settings):
    settings.CDS_HOOKS_CORS_ORIGINS = [EHR_ORIGIN]

    response = ehr.client.options(
        ORDER_SELECT_PATH, headers={"Origin": EHR_ORIGIN, "Access-Control-Request-Method": "POST"}
    )

    assert response.status_code == 204
    assert (
        response["Access-Control-Allow-Origin"],
        response["Access-Control-Allow-Methods"],
        response["Access-Control-Allow-Headers"],
    ) == (EHR_ORIGIN, "GET, POST, OPTIONS", "Authorization, Content-Type")


def test_cors_preflight_from_another_origin_gets_no_cors_headers(ehr, settings):
    settings.CDS_HOOKS_CORS_ORIGINS = [EHR_ORIGIN]

    response = ehr.client.options(ORDER_SELECT_PATH, headers={"Origin": "https://evil.example.org"})

    assert response.status_code == 204
    assert "Access-Control-Allow-Origin" not in response
    assert "Access-Control-Allow-Methods" not in response


def test_cors_call_from_a_configured_origin_carries_the_origin(ehr, settings):
    settings.CDS_HOOKS_CORS_ORIGINS = [EHR_ORIGIN]

    allowed = ehr.get("/cds-services", Origin=EHR_ORIGIN)
    refused = ehr.get("/cds-services", Origin="https://evil.example.org")
    unauthorized = ehr.client.get("/cds-services", headers={"Origin": EHR_ORIGIN})

    assert (allowed.status_code, allowed["Access-Control-Allow-Origin"], allowed["Vary"]) == (200, EHR_ORIGIN, "Origin")
    assert refused.status_code == 200
    assert "Access-Control-Allow-Origin" not in refused
    assert (unauthorized.status_code, unauthorized["Access-Control-Allow-Origin"]) == (401, EHR_ORIGIN)


def test_cors_without_configured_origins_allows_none(ehr):
    response = ehr.get("/cds-services", Origin=EHR_ORIGIN)

    assert "Access-Control-Allow-Origin" not in response


# --- What every CDS Hooks endpoint shares: method, service, body ------------------------------------------


@pytest.mark.parametrize(
    ("path", "method", "allow"),
    [
        ("/cds-services", "post", "GET, OPTIONS"),
        (ORDER_SELECT_PATH, "get", "POST, OPTIONS"),
        (FEEDBACK_PATH, "get", "POST, OPTIONS"),
    ],
)
def test_cds_endpoints_refuse_other_methods_with_405_before_authentication(ehr, path, method, allow):
    response = getattr(ehr.client, method)(path)

    assert (response.status_code, response["Allow"]) == (405, allow)


@pytest.mark.parametrize("path", [ORDER_SELECT_PATH, FEEDBACK_PATH])
def test_cds_endpoints_malformed_json_is_400(ehr, path):
    response = ehr.client.post(
        path, "{not json", content_type="application/json", headers={"Authorization": f"Bearer {ehr.token(path)}"}
    )

    assert response.status_code == 400
    assert list(json.loads(response.content)["errors"]) == ["body"]
    assert json.loads(response.content)["errors"]["body"][0].startswith("Malformed JSON: ")


def test_feedback_for_an_unknown_service_is_404(ehr):
    path = "/cds-services/unknown/feedback"
    body = {"feedback": [{"card": "c-1", "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:16:00Z"}]}

    response = ehr.post(path, body)

    assert response.status_code == 404
    assert json.loads(response.content) == {"errors": {"service": ["No CDS service 'unknown'."]}}
    assert AuditEvent.objects.count() == 0


# --- Feedback only on what was issued (review item 6) -------------------------------------------------


def _override(card_uuid: str) -> dict:
    return {"feedback": [{"card": card_uuid, "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:16:00Z"}]}


def test_feedback_on_a_card_never_issued_is_400_and_nothing_recorded(ehr):
    body = {
        "feedback": [
            {
                "card": "not-a-real-card",
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": "x"}],
                "outcomeTimestamp": "2026-11-23T10:16:00Z",
            }
        ]
    }

    response = ehr.post(FEEDBACK_PATH, body)

    assert response.status_code == 400
    assert json.loads(response.content)["errors"] == {
        "feedback.0.card": ["No card 'not-a-real-card' was issued by this service to this EHR."]
    }
    assert not AuditEvent.objects.filter(subject_id="not-a-real-card").exists()


def test_feedback_accepting_a_suggestion_the_card_never_offered_is_400(ehr):
    card = _critical_card(ehr)
    body = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": "made-up"}],
                "outcomeTimestamp": "2026-11-23T10:16:00Z",
            }
        ]
    }

    response = ehr.post(FEEDBACK_PATH, body)

    assert response.status_code == 400
    assert json.loads(response.content)["errors"] == {
        "feedback.0.acceptedSuggestions": [f"Card {card['uuid']!r} offered no suggestion 'made-up'."]
    }
    assert [e.action for e in audit_events_for(subject_type="cds_card", subject_id=card["uuid"])] == ["cds_card.issued"]


def test_feedback_on_a_card_of_another_service_is_400(ehr):
    card = _critical_card(ehr)

    response = ehr.post(f"{ORDER_SIGN_PATH}/feedback", _override(card["uuid"]))

    assert response.status_code == 400
    assert not AuditEvent.objects.filter(action="cds_card.overridden").exists()


def test_feedback_on_a_card_issued_to_another_ehr_is_400(ehr, settings):
    card = _critical_card(ehr)
    other = "https://other-ehr.example.org"
    settings.CDS_HOOKS_ISSUERS[other] = dict(settings.CDS_HOOKS_ISSUERS[ISSUER])

    response = ehr.post(FEEDBACK_PATH, _override(card["uuid"]), token=ehr.token(FEEDBACK_PATH, iss=other))

    assert response.status_code == 400
    assert not AuditEvent.objects.filter(action="cds_card.overridden").exists()


def test_repeated_feedback_on_an_issued_card_is_accepted_each_time(ehr):
    card = _critical_card(ehr)

    statuses = [ehr.post(FEEDBACK_PATH, _override(card["uuid"])).status_code for _ in range(2)]

    assert statuses == [200, 200]
    assert AuditEvent.objects.filter(action="cds_card.overridden", subject_id=card["uuid"]).count() == 2
