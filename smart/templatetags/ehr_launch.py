"""`{% ehr_launch_box %}`: what an EHR launch filled in (or could not), on the wizard's patient step."""

from __future__ import annotations

from typing import Any

from django import template

from bedside.wizard import WizardAnswers
from smart.prefill import Status
from smart.selectors import patient_context_get

register = template.Library()


@register.inclusion_tag("smart/launch_box.html", takes_context=True)
def ehr_launch_box(context: template.Context) -> dict[str, Any]:
    request = context.get("request")
    session = getattr(request, "session", None)
    launch = patient_context_get(session=session) if session is not None else None
    if launch is None:
        return {"launch": None}
    answered = {name: value for step in WizardAnswers(session).data["answers"].values() for name, value in step.items()}
    # A value filled in from the EHR and changed since is no longer the EHR's: say so.
    rows = [
        {"reading": r, "changed": r.status == Status.FILLED and answered.get(r.field, "").strip() != r.answer}
        for r in launch.readings
    ]
    return {"launch": launch, "rows": rows, "csrf_token": context.get("csrf_token")}  # for {% csrf_token %}
