"""CDS Hooks reads: the cards this service issued (from the audit trail)."""

from __future__ import annotations

from typing import Any

from audit.models import AuditEvent

CARD_SUBJECT = "cds_card"
ISSUED = "cds_card.issued"


def issued_card_details(*, card_uuid: str, service_id: str, issuer: str) -> dict[str, Any] | None:
    """What was recorded when this service issued the card to this EHR (issuer), or None if it never did."""
    event = (
        AuditEvent.objects.filter(
            action=ISSUED,
            subject_type=CARD_SUBJECT,
            subject_id=card_uuid,
            actor_label=issuer,
            details__service=service_id,
        )
        .only("details")
        .first()
    )
    return event.details if event is not None else None
