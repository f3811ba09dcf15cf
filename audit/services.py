"""Write audit events. Every domain decision calls `audit_record` inside its own transaction."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from audit.models import AuditEvent


def audit_record(
    *,
    action: str,
    subject_type: str,
    subject_id: str | int,
    actor: AbstractBaseUser | None = None,
    actor_label: str = "",
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_label=actor_label,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        reason=reason,
        details=details or {},
    )
    event.full_clean()
    event.save()
    return event
