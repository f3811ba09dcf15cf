"""The `appContext` of a CDS Hooks card's `smart` link: what the card hands to the app it launches.

CDS Hooks 2.0: the EHR passes a link's `appContext` (a string) to the SMART app in its token response,
beside the other launch context. Here it carries the drafted anakinra order as this service read it,
so the wizard can show it beside the EHR's data. No patient data: the order's own id and its words.

    {"draftOrder": {"id": "draft-1", "text": "anakinra 100 mg IV every 6 hours"}}
"""

from __future__ import annotations

import json
from typing import Any

# An appContext longer than this is not read (it is not one of ours).
MAX_LENGTH = 2000
MAX_TEXT = 300


def app_context_for_draft(*, order_id: Any, description: str) -> str:
    draft: dict[str, str] = {"text": description[:MAX_TEXT]}
    if isinstance(order_id, str) and order_id:
        draft["id"] = order_id[:64]
    return json.dumps({"draftOrder": draft}, separators=(",", ":"), ensure_ascii=False)


def draft_order_from_app_context(app_context: str | None) -> str | None:
    """The drafted order's words from an appContext this service made; None for anything else."""
    if not app_context or len(app_context) > MAX_LENGTH:
        return None
    try:
        data = json.loads(app_context)
    except ValueError:
        return None
    draft = data.get("draftOrder") if isinstance(data, dict) else None
    text = draft.get("text") if isinstance(draft, dict) else None
    return text[:MAX_TEXT] if isinstance(text, str) and text.strip() else None
