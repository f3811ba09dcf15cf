"""The launch's patient context ends with the wizard's patient (its result stored, or a new patient)."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from bedside.wizard import patient_ended
from smart.services import patient_context_drop


@receiver(patient_ended, dispatch_uid="smart.patient_context_drop")
def _patient_context_end(sender: Any, session: Any, **kwargs: Any) -> None:
    patient_context_drop(session=session)
