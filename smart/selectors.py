"""Reads for the SMART launch: registrations (from CDS_HOOKS_ISSUERS) and what the session holds."""

from __future__ import annotations

import time

from django.contrib.sessions.backends.base import SessionBase

from cds_hooks.config import Issuer, issuers
from cds_hooks.smart_config import SmartRegistration
from smart.session import PATIENT_KEY, SMART_KEY, PatientContext


def smart_issuers() -> list[Issuer]:
    """Every EHR registration that has a SMART client, in configuration order."""
    return [issuer for issuer in issuers().values() if issuer.smart is not None]


def smart_issuer_for_server(*, fhir_server: str) -> Issuer | None:
    """The registration a launch's `iss` (a FHIR base URL) belongs to; None for an unregistered one."""
    return next((i for i in smart_issuers() if i.smart is not None and i.smart.serves(fhir_server)), None)


def smart_issuer_get(*, iss: str) -> Issuer | None:
    issuer = issuers().get(iss)
    return issuer if issuer is not None and issuer.smart is not None else None


def smart_session_registration(*, session: SessionBase) -> SmartRegistration | None:
    """The registration this session was launched from, while it is still configured."""
    marker = session.get(SMART_KEY)
    if not isinstance(marker, dict) or not isinstance(marker.get("registration"), str):
        return None
    issuer = smart_issuer_get(iss=marker["registration"])
    return issuer.smart if issuer is not None else None


def is_smart_session(*, session: SessionBase) -> bool:
    return isinstance(session.get(SMART_KEY), dict)


def patient_context_get(*, session: SessionBase, now: float | None = None) -> PatientContext | None:
    """The launch's patient context while it has not expired."""
    data = session.get(PATIENT_KEY)
    if not isinstance(data, dict):
        return None
    context = PatientContext.from_session(data)
    if context is None or context.expires_at <= (time.time() if now is None else now):
        return None
    return context
