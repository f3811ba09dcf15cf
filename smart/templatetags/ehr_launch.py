"""`{% ehr_launch_box %}`: what an EHR launch filled in (or could not), on the wizard's patient step."""

from __future__ import annotations

from typing import Any

from django import template

from smart.selectors import patient_context_get

register = template.Library()


@register.inclusion_tag("smart/launch_box.html", takes_context=True)
def ehr_launch_box(context: template.Context) -> dict[str, Any]:
    request = context.get("request")
    session = getattr(request, "session", None)
    return {"launch": patient_context_get(session=session) if session is not None else None}
