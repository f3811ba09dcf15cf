"""CDS Hooks 2.0 cards for a drafted anakinra order.

Rules kept here (CDS Hooks 2.0, "CDS Service Response"):
- `summary` under 140 characters; `indicator` info, warning or critical;
- `source.label` names the protocol and its version; `source.url` is the protocol's page;
- `detail` is GitHub-flavored markdown: the inputs used, the arithmetic, the caps and the citations,
  rendered from templates/cds_hooks/cards/*.md (autoescape off, every data value markdown-escaped);
- suggestions only with `selectionBehavior`, and each action with a `description`; a `delete` action
  names its resource by `resourceId` (a relative reference), as CDS Hooks 2.0.1 asks;
- one link: `absolute` to the bedside wizard pre-filled with what the EHR sent, or, when the EHR has a
  SMART registration, `smart` to the app's launch URL (the EHR launches it on the patient), with an
  `appContext` naming the drafted order the card is about;
- optional fields are left out rather than sent empty or null.
No card ever claims an indication: the EHR does not send the toxicity, grade or treatment history.

This module builds a card's structure. Its words are in cds_hooks.wording and the templates
(docs/architecture/wording.md); each step's words are built once (engine.text.step_words).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.template.loader import render_to_string
from django.urls import reverse

from cds_hooks import fhir, wording
from cds_hooks.app_context import app_context_for_draft
from cds_hooks.fhir_read import DraftReading, Weight, is_fhir_id
from engine import limits, notation, safety
from engine.data import Citation, ProtocolData
from engine.order_check import Limits, OrderCheck, Verdict
from engine.present import citation_dict, step_dict
from engine.text import StepWords, step_words

OVERRIDE_REASON_SYSTEM = "urn:anakinra-cds:cds-hooks:override-reason"
INDICATORS = {
    Verdict.ABOVE_MAXIMUM: "critical",
    Verdict.DIFFERS: "warning",
    Verdict.UNCONFIRMED: "warning",
    Verdict.NOT_COMPARABLE: "warning",
    Verdict.MATCHES: "info",
}
TEMPLATES = "cds_hooks/cards"


@dataclass(frozen=True, slots=True)
class AllergyCheck:
    """What the EHR's allergy list says about anakinra. A recorded allergy counts even when the list
    could not be read in full; "none recorded" is said only of a list read in full."""

    recorded: tuple[str, ...] = ()
    # Why the list could not be checked in full ("no allergy data from the EHR", an error...), or None.
    not_checked: str | None = None


@dataclass(frozen=True, slots=True)
class Facts:
    """What the EHR sent, as read. `None` means the EHR sent nothing for it."""

    weight: Weight | None
    age_years: int | None
    allergies: AllergyCheck
    # Why the weight may not be current ("weight from 2016-01-01", "weight undated"...), or None.
    weight_age: str | None = None
    # How many anakinra orders the EHR drafted together (order-select: selected or not).
    anakinra_orders: int = 1


@dataclass(frozen=True, slots=True)
class CardSetting:
    base_url: str
    protocol: ProtocolData | None
    institution_slug: str | None
    # The EHR has a SMART registration: links launch the app (type smart) instead of opening a URL.
    smart_launch: bool = False


def render_detail(name: str, context: dict[str, Any]) -> str:
    """A card's markdown detail from templates/cds_hooks/cards/<name>.md (without the file's last newline)."""
    return render_to_string(f"{TEMPLATES}/{name}.md", context).removesuffix("\n")


def _protocol_context(
    protocol: ProtocolData | None, label_facts: tuple[str, ...] = (), *, comparison: bool = False
) -> dict[str, Any]:
    """What the shared sections (caps, citations, provenance) read about the protocol."""
    if protocol is None:
        return {"protocol": None}
    return {
        "protocol": protocol,
        "protocol_label": wording.protocol_label(protocol),
        "published": f"{protocol.published_at:%Y-%m-%d}" if protocol.published_at else "",
        "caps": [{"name": step.name, "phrases": wording.cap_phrases(step)} for step in protocol.steps],
        "citations": [citation_dict(c) for c in _citations(protocol, label_facts, comparison=comparison)],
    }


def _source(setting: CardSetting) -> dict[str, Any]:
    if setting.protocol is None:
        return {"label": "Anakinra CDS", "url": f"{setting.base_url}/"}
    # The bedside pages serve each institution's current protocol at /protocols/<slug>/.
    return {
        "label": wording.protocol_label(setting.protocol),
        "url": setting.base_url + reverse("protocol_detail", kwargs={"slug": setting.protocol.institution_slug}),
    }


def wizard_url(setting: CardSetting, facts: Facts) -> str:
    """The bedside wizard with what the EHR sent filled in (field names as in the JSON API request)."""
    params: dict[str, str] = {}
    weight = facts.weight.kg if facts.weight is not None else None
    if weight is not None and limits.WEIGHT_KG.contains(weight):
        params["weight_kg"] = notation.plain_number(weight, notation.KG_QUANTUM)
    if facts.age_years is not None:
        params["age_years"] = str(facts.age_years)
    if facts.allergies.recorded:
        params["ecoli_protein_hypersensitivity"] = "true"
    if setting.protocol is not None:
        params["institution"] = setting.protocol.institution_slug
    query = f"?{urlencode(params)}" if params else ""
    return f"{setting.base_url}{reverse('wizard_start')}{query}"


def _links(setting: CardSetting, facts: Facts, app_context: str | None) -> list[dict[str, Any]]:
    if setting.smart_launch:
        # The EHR launches the app with its own launch context; the weight, age and allergies are read then.
        link = {"label": wording.SMART_LINK_LABEL, "url": setting.base_url + reverse("smart_launch"), "type": "smart"}
        return [{**link, "appContext": app_context} if app_context is not None else link]
    return [{"label": wording.WIZARD_LINK_LABEL, "url": wizard_url(setting, facts), "type": "absolute"}]


def _override_reasons() -> list[dict[str, str]]:
    return [
        {"system": OVERRIDE_REASON_SYSTEM, "code": code, "display": display}
        for code, display in wording.OVERRIDE_REASONS
    ]


def _draft_context(draft: DraftReading | None, draft_ref: str) -> str | None:
    """The appContext of a card about one drafted order: its id and how it was read."""
    if draft is None:
        return None
    order_id = draft_ref.removeprefix("MedicationRequest/")
    return app_context_for_draft(order_id=order_id if is_fhir_id(order_id) else None, description=draft.description)


def _card(
    *,
    summary: str,
    indicator: str,
    detail: str,
    setting: CardSetting,
    facts: Facts,
    app_context: str | None = None,
) -> dict[str, Any]:
    card: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "summary": summary,
        "indicator": indicator,
        "detail": detail,
        "source": _source(setting),
        "links": _links(setting, facts, app_context),
    }
    if indicator != "info":
        card["overrideReasons"] = _override_reasons()
    return card


def _citations(
    protocol: ProtocolData, label_facts: tuple[str, ...] = (), *, comparison: bool = False
) -> list[Citation]:
    """The protocol's and its steps' citations; the comparison amounts' source when a comparison note is
    shown (`comparison`); the product label with the facts taken from it, as engine.recommend cites them."""
    ordered: dict[str, Citation] = {c.key: c for c in protocol.citations}
    for step in protocol.steps:
        for citation in step.citations:
            ordered.setdefault(citation.key, citation)
    thresholds = protocol.thresholds
    if comparison and thresholds is not None and thresholds.citation is not None:
        ordered.setdefault(thresholds.citation.key, thresholds.citation)
    # The product label is cited where a label-derived rule is stated (clinical.md section 4).
    label = protocol.label_citation
    if label is not None and label_facts and label.key not in ordered:
        ordered[label.key] = replace(label, label=f"{label.label}: {'; '.join(label_facts)}")
    return list(ordered.values())


# --- Cards ------------------------------------------------------------------------------------------


def _indicator(check: OrderCheck, draft: DraftReading, facts: Facts) -> str:
    if check.above_maximum or draft.beyond_reading:
        return "critical"
    indicator = INDICATORS[check.verdict]
    if indicator == "info" and wording.weight_needs_confirming(check.weight_kg):
        return "warning"  # the engine's weight_confirm warning
    if indicator == "info" and wording.required_notes(facts):
        return "warning"  # an old or undated weight, no allergy data, or another anakinra order
    return indicator


def _suggestions(
    check: OrderCheck,
    request: dict[str, Any],
    protocol: ProtocolData,
    facts: Facts,
    words: dict[int, StepWords],
) -> list[dict[str, Any]]:
    follows = dict(
        zip(
            (id(r) for r in check.steps),
            fhir.taper_follows([{"kind": r.step.kind, "name": r.step.name} for r in check.steps]),
            strict=True,
        )
    )
    notes = []
    if fhir.dispense_quantity_dropped(request):
        notes.append(fhir.DISPENSE_NOT_RECALCULATED)
    if facts.anakinra_orders > 1:
        notes.append(wording.OTHER_ORDERS_KEPT)
    suggestions = []
    for correction in check.corrections:
        result = correction.result
        resource = fhir.corrected_request(
            request,
            step_dict(result, words[id(result)]),
            route=correction.route,
            per_dose_mg=correction.per_dose_mg,
            follows=follows[id(result)],
        )
        order = wording.correction_order(correction.per_dose_mg, notation.ROUTE_WORDS[correction.route], result)
        description = wording.correction_description(order, result, protocol, check.weight_kg, notes=tuple(notes))
        suggestions.append(
            {
                "label": wording.correction_label(order, result),
                "uuid": str(uuid.uuid4()),
                "actions": [{"type": "update", "description": description, "resource": resource}],
            }
        )
    return suggestions


def dose_card(
    *, check: OrderCheck, draft: DraftReading, request: dict[str, Any], facts: Facts, setting: CardSetting
) -> dict[str, Any]:
    protocol = setting.protocol
    assert protocol is not None
    draft_ref = f"MedicationRequest/{request.get('id', '(no id)')}"
    # Each step's words, once: the detail and the corrected orders read the same object.
    words = {id(result): step_words(result) for result in check.steps}
    suggestions = _suggestions(check, request, protocol, facts, words) if request.get("id") else []
    # What the engine says of these steps at this weight (section 4 of the clinical brief), each with its source.
    warnings = safety.step_warnings(steps=check.steps, weight_kg=check.weight_kg, thresholds=protocol.thresholds)
    codes = {w.code for w in warnings}
    label_facts = tuple(fact for code, fact in safety.LABEL_FACTS.items() if code in codes)
    detail = render_detail(
        "dose",
        {
            "findings": wording.dose_findings(check, draft, facts, has_id=bool(request.get("id"))),
            "notes": wording.engine_notes(warnings, check, protocol),
            "inputs": wording.inputs_rows(facts, draft, draft_ref),
            "weight": notation.weight(check.weight_kg),
            "steps": [
                {"name": r.step.name, "grades": wording.grades_text(r), "words": words[id(r)]} for r in check.steps
            ],
            **_protocol_context(protocol, label_facts, comparison=bool(codes & safety.COMPARISON_CODES)),
        },
    )
    card = _card(
        summary=wording.dose_summary(check, draft, protocol, facts),
        indicator=_indicator(check, draft, facts),
        detail=detail,
        setting=setting,
        facts=facts,
        app_context=_draft_context(draft, draft_ref),
    )
    if suggestions:
        card["selectionBehavior"] = "at-most-one"
        card["suggestions"] = suggestions
    return card


def contraindication_card(*, facts: Facts, setting: CardSetting) -> dict[str, Any]:
    label_facts = (safety.LABEL_FACTS["contraindicated_hypersensitivity"],)
    detail = render_detail(
        "contraindication",
        {
            "contraindication": safety.HYPERSENSITIVITY.text,
            "allergies": facts.allergies.recorded,
            "inputs": wording.inputs_rows(facts, None, ""),
            **_protocol_context(setting.protocol, label_facts),
        },
    )
    return _card(
        summary=wording.CONTRAINDICATED_SUMMARY,
        indicator="critical",
        detail=detail,
        setting=setting,
        facts=facts,
    )


def unchecked_card(
    *,
    reason: str,
    summary: str,
    facts: Facts,
    setting: CardSetting,
    draft: DraftReading | None,
    draft_ref: str,
    above_caps: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The dose could not be checked (no usable weight, or no protocol): say why, link the wizard.
    `above_caps`: the draft is above the protocol's stated weight-independent caps (critical)."""
    if above_caps:
        summary = wording.ABOVE_STATED_CAP_SUMMARY
    detail = render_detail(
        "unchecked",
        {
            "reason": reason,
            "above_caps": above_caps,
            "inputs": wording.inputs_rows(facts, draft, draft_ref),
            **_protocol_context(setting.protocol),
        },
    )
    return _card(
        summary=wording.fitting_summary(wording.with_allergy_note(summary, facts)),
        indicator="critical" if above_caps else "warning",
        detail=detail,
        setting=setting,
        facts=facts,
        app_context=_draft_context(draft, draft_ref),
    )


@dataclass(frozen=True, slots=True)
class DraftLine:
    """One drafted anakinra order on the duplicates card."""

    ref: str  # "MedicationRequest/<id>", or "(no id)" in it
    reading: DraftReading
    deletable: bool  # it has an id, so a `delete` action can name it


def _keep_one_suggestions(lines: list[DraftLine]) -> list[dict[str, Any]]:
    """One suggestion per draft: keep it, delete every other one. Offered only where every other draft
    can be named (has an id): a suggestion that left a duplicate behind would not do what it says."""
    suggestions = []
    for kept in lines:
        others = [line for line in lines if line is not kept]
        if not all(line.deletable for line in others):
            continue
        removed = ", ".join(line.ref for line in others)
        suggestions.append(
            {
                "label": wording.keep_one_label(kept.ref, kept.reading.description, removed),
                "uuid": str(uuid.uuid4()),
                "actions": [
                    {
                        "type": "delete",
                        "description": wording.remove_description(line.ref, line.reading.description),
                        "resourceId": line.ref,
                    }
                    for line in others
                ],
            }
        )
    return suggestions


def duplicates_card(
    *,
    lines: list[DraftLine],
    limits: Limits | None,
    weight_kg: Decimal | None,
    facts: Facts,
    setting: CardSetting,
) -> dict[str, Any]:
    """More than one anakinra order drafted: their readable per-day amounts added up and compared with
    the protocol's most per day at this weight and its stated per-day cap, with a suggestion to keep
    each one alone (deleting the others). Never `info`."""
    count = len(lines)
    readable = [p for p in (line.reading.dose.top_per_day_mg for line in lines) if p is not None]
    total = sum(readable, Decimal(0))
    max_per_day = limits.max_per_day_mg if limits is not None and weight_kg is not None else None
    stated_per_day = limits.stated_per_day_mg if limits is not None else None
    over = []
    if max_per_day is not None and weight_kg is not None and total > max_per_day:
        over.append(wording.above_protocol_maximum(weight_kg, max_per_day))
    if stated_per_day is not None and total > stated_per_day:
        over.append(wording.above_stated_cap(stated_per_day))
    suggestions = _keep_one_suggestions(lines)
    findings = wording.duplicates_findings(
        count=count,
        unreadable=count - len(readable),
        total_mg=total,
        weight_kg=weight_kg,
        max_per_day_mg=max_per_day,
        stated_per_day_mg=stated_per_day,
        over=over,
        suggestions=bool(suggestions),
    )
    detail = render_detail(
        "duplicates",
        {
            "orders": [(line.ref, line.reading.description) for line in lines],
            "findings": findings,
            **_protocol_context(setting.protocol),
        },
    )
    card = _card(
        summary=wording.duplicates_summary(count=count, total_mg=total, over=bool(over), facts=facts),
        indicator="critical" if over else "warning",
        detail=detail,
        setting=setting,
        facts=facts,
    )
    if suggestions:
        card["selectionBehavior"] = "at-most-one"
        card["suggestions"] = suggestions
    return card
