"""CDS Hooks 2.0 cards for a drafted anakinra order.

Rules kept here (CDS Hooks 2.0, "CDS Service Response"):
- `summary` under 140 characters; `indicator` info, warning or critical;
- `source.label` names the protocol and its version; `source.url` is the protocol's page;
- `detail` is GitHub-flavored markdown: the inputs used, the arithmetic, the caps and the citations;
- suggestions only with `selectionBehavior`, and each action with a `description`; a `delete` action
  names its resource by `resourceId` (a relative reference), as CDS Hooks 2.0.1 asks;
- one link: `absolute` to the bedside wizard pre-filled with what the EHR sent, or, when the EHR has a
  SMART registration, `smart` to the app's launch URL (the EHR launches it on the patient), with an
  `appContext` naming the drafted order the card is about;
- optional fields are left out rather than sent empty or null.
No card ever claims an indication: the EHR does not send the toxicity, grade or treatment history.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse

from cds_hooks import fhir
from cds_hooks.app_context import app_context_for_draft
from cds_hooks.fhir_read import DraftReading, Weight, is_fhir_id
from engine import limits, notation, safety
from engine.data import Citation, ProtocolData, StepResult
from engine.order_check import Limits, OrderCheck, Verdict
from engine.present import citation_dict, step_dict

SUMMARY_LIMIT = 140
OVERRIDE_REASON_SYSTEM = "urn:anakinra-cds:cds-hooks:override-reason"
OVERRIDE_REASONS = (
    ("clinical-judgement", "Clinical judgement: dose confirmed with pharmacy"),
    ("other-protocol", "Following a different institution protocol"),
    ("weight-not-current", "The weight in the EHR is not current"),
    ("escalation-or-taper", "Planned escalation or taper"),
)
NOT_ASSESSED = (
    "**Indication not assessed.** The EHR does not send the toxicity, its grade, or prior tocilizumab "
    "and steroids, so this card only checks the dose arithmetic. Open the bedside wizard (link below) "
    "to enter them and see the protocol's recommendation."
)
DECISION_SUPPORT = "Decision support only: the prescriber and a pharmacist verify every order."
INDICATORS = {
    Verdict.ABOVE_MAXIMUM: "critical",
    Verdict.DIFFERS: "warning",
    Verdict.UNCONFIRMED: "warning",
    Verdict.NOT_COMPARABLE: "warning",
    Verdict.MATCHES: "info",
}
WEIGHT_CONFIRM_SUFFIX = "; confirm the weight is in kg"


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


def _md(text: str) -> str:
    """Text from outside (the EHR, protocol data) shown literally: no links, HTML or table breaks."""
    escaped = text.replace("\\", "\\\\")
    for char in "`*_[]<>|~#":
        escaped = escaped.replace(char, "\\" + char)
    return escaped


def _summary(*candidates: str) -> str:
    """The first candidate that fits; the last one is kept short enough to always fit."""
    for text in candidates:
        if len(text) < SUMMARY_LIMIT:
            return text
    raise ValueError("no summary under 140 characters")


def protocol_label(protocol: ProtocolData) -> str:
    return f"{protocol.institution_name} anakinra protocol, version {protocol.version_number}"


def _source(setting: CardSetting) -> dict[str, Any]:
    if setting.protocol is None:
        return {"label": "Anakinra CDS", "url": f"{setting.base_url}/"}
    # The bedside pages serve each institution's current protocol at /protocols/<slug>/.
    return {
        "label": protocol_label(setting.protocol),
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
        link = {
            "label": "Open Anakinra CDS on this patient (enter toxicity and grade there)",
            "url": setting.base_url + reverse("smart_launch"),
            "type": "smart",
        }
        return [{**link, "appContext": app_context} if app_context is not None else link]
    return [
        {
            "label": "Open the bedside wizard with these inputs (enter toxicity and grade there)",
            "url": wizard_url(setting, facts),
            "type": "absolute",
        }
    ]


def _override_reasons() -> list[dict[str, str]]:
    return [{"system": OVERRIDE_REASON_SYSTEM, "code": code, "display": display} for code, display in OVERRIDE_REASONS]


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


# --- Detail sections --------------------------------------------------------------------------------


def _inputs_table(facts: Facts, draft: DraftReading | None, draft_ref: str) -> str:
    rows = []
    if facts.weight is None:
        rows.append(("Weight", "not available", "no prefetch and no FHIR server access"))
    elif facts.weight.kg is None:
        source = "Observation LOINC 29463-7" if facts.weight.unreadable else facts.weight.source
        rows.append(("Weight", _md(facts.weight.problem), _md(source)))
    else:
        value = notation.weight(facts.weight.kg)
        if facts.weight.conversion:
            value += f" ({facts.weight.conversion})"
        rows.append(("Weight", _md(value), _md(facts.weight.source)))
    age = f"{facts.age_years} years" if facts.age_years is not None else "not available"
    rows.append(("Age", age, "Patient.birthDate"))
    if draft is not None:
        rows.append(("Drafted order", _md(draft.description), _md(draft_ref)))
    allergies = facts.allergies
    if allergies.recorded:
        allergy = "recorded: " + ", ".join(_md(a) for a in allergies.recorded)
        if allergies.not_checked:
            allergy += f" (the rest of the list was not checked: {_md(allergies.not_checked)})"
    elif allergies.not_checked:
        allergy = f"not checked: {_md(allergies.not_checked)}"
    else:
        allergy = "none recorded for anakinra"
    rows.append(("Anakinra allergy", allergy, "AllergyIntolerance"))
    rows.append(("Toxicity and grade", "not sent by the EHR", "enter in the bedside wizard"))
    rows.append(("Prior tocilizumab and steroids", "not sent by the EHR", "enter in the bedside wizard"))
    lines = ["#### Inputs used", "", "| Input | Value | Source |", "|---|---|---|"]
    lines.extend(f"| {name} | {value} | {source} |" for name, value, source in rows)
    return "\n".join(lines)


def _grades_text(result: StepResult) -> str:
    step = result.step
    toxicities = ", ".join(t.value for t in sorted(step.toxicities, key=lambda t: ("CRS", "ICANS", "carHLH").index(t)))
    grades = (
        f"grade {step.min_grade}"
        if step.min_grade == step.max_grade
        else f"grades {step.min_grade} to {step.max_grade}"
    )
    return f"{toxicities}, {grades}"


def _steps_section(check: OrderCheck) -> str:
    lines = [f"#### What the protocol gives for {notation.weight(check.weight_kg)}", ""]
    for result in check.steps:
        lines.append(f"**{_md(result.step.name)}** ({_grades_text(result)}): {_md(result.order_text)}")
        lines.append("")
        lines.extend(f"- {_md(line)}" for line in result.arithmetic)
        if result.rounding is not None and result.rounding.note and result.rounding.note not in result.arithmetic:
            lines.append(f"- {_md(result.rounding.note)}")
        # A cap that lowered only the escalation ceiling is said there, never beside an amount it did not change.
        lines.extend(f"- {_md(note)}" for note in result.cap_notes if note not in result.arithmetic)
        lines.append("")
    return "\n".join(lines).rstrip()


def _caps_section(protocol: ProtocolData) -> str:
    lines = ["#### Caps", ""]
    for step in protocol.steps:
        caps = []
        if step.max_single_dose_mg is not None:
            caps.append(f"{notation.amount(step.max_single_dose_mg, 'mg')} per dose")
        if step.max_daily_dose_mg is not None:
            caps.append(f"{notation.amount(step.max_daily_dose_mg, 'mg')} per day")
        if step.escalation_ceiling_amount is not None and step.escalation_ceiling_basis is not None:
            ceiling = notation.amount(
                step.escalation_ceiling_amount, step.escalation_ceiling_basis.value, notation.KG_QUANTUM
            )
            caps.append(f"escalation up to {ceiling}")
        text = ", ".join(caps) if caps else "no per-dose or per-day cap stated by this protocol"
        lines.append(f"- {_md(step.name)}: {text}")
    return "\n".join(lines)


def _citations(protocol: ProtocolData, label_facts: tuple[str, ...] = ()) -> list[Citation]:
    ordered: dict[str, Citation] = {c.key: c for c in protocol.citations}
    for step in protocol.steps:
        for citation in step.citations:
            ordered.setdefault(citation.key, citation)
    # The product label is cited where a label-derived rule is stated (clinical.md section 4).
    label = protocol.label_citation
    if label is not None and label_facts and label.key not in ordered:
        ordered[label.key] = replace(label, label=f"{label.label}: {'; '.join(label_facts)}")
    return list(ordered.values())


def _citations_section(protocol: ProtocolData, label_facts: tuple[str, ...] = ()) -> str:
    lines = ["#### Citations", ""]
    for citation in _citations(protocol, label_facts):
        data = citation_dict(citation)
        label = _md(data["label"])
        lines.append(f"- [{label}]({data['url']})" if data["url"] else f"- {label}")
    return "\n".join(lines)


def _provenance(protocol: ProtocolData) -> str:
    published = f", published {protocol.published_at:%Y-%m-%d}" if protocol.published_at else ""
    approved = f", approved by {_md(protocol.approved_by)}" if protocol.approved_by else ""
    return f"{_md(protocol_label(protocol))}{published}{approved}. {DECISION_SUPPORT}"


# --- Cards ------------------------------------------------------------------------------------------


def _limit_text(check: OrderCheck, draft: DraftReading) -> str:
    per_day = draft.dose.top_per_day_mg
    dose = draft.dose.top_per_dose_mg
    if dose is not None and check.max_per_dose_mg is not None and dose > check.max_per_dose_mg:
        return f"{notation.amount(check.max_per_dose_mg, 'mg')} per dose"
    assert check.max_per_day_mg is not None
    if per_day is not None and per_day > check.max_per_day_mg:
        return f"{notation.amount(check.max_per_day_mg, 'mg')} per day"
    return f"{notation.amount(check.max_per_day_mg, 'mg')} in a day"


def _not_read_words(check: OrderCheck) -> str:
    parts = [part for part in check.not_read if part != "order"]
    if "order" in check.not_read or not parts:
        return "not all of the order could be read"
    return f"its {' and '.join(parts)} could not be read"


def _summary_candidates(check: OrderCheck, draft: DraftReading, protocol: ProtocolData) -> tuple[str, ...]:
    """Summaries from the most to the least specific (the institution's name can be long)."""
    institution = protocol.institution_name
    weight = notation.weight(check.weight_kg)
    dose = notation.amount(draft.dose.per_dose_mg, "mg") if draft.dose.per_dose_mg is not None else ""
    if check.verdict == Verdict.ABOVE_MAXIMUM:
        top = draft.dose.top_per_dose_mg
        dose = notation.amount(top, "mg") if top is not None else dose
        limit = _limit_text(check, draft)
        return (
            f"Anakinra {dose} exceeds the {institution} protocol maximum for {weight} ({limit})",
            f"Anakinra {dose} exceeds the protocol maximum for {weight} ({limit})",
        )
    if check.verdict == Verdict.MATCHES:
        step = check.matched[0].step.name
        return (
            f"Anakinra {dose} matches the {institution} protocol ({step}) for {weight}; indication not assessed",
            f"Anakinra {dose} matches the protocol for {weight}; indication not assessed",
        )
    if check.verdict == Verdict.UNCONFIRMED:
        missing = _not_read_words(check)
        return (
            f"Anakinra {dose} could match the {institution} protocol for {weight}, but {missing}",
            f"Anakinra {dose} could match the protocol for {weight}, but {missing}",
        )
    if check.verdict == Verdict.DIFFERS:
        return (
            f"Anakinra {dose} differs from the {institution} protocol dose for {weight}; indication not assessed",
            f"Anakinra {dose} differs from the protocol dose for {weight}",
        )
    if check.dose_conflict:
        assert draft.dose.mg_per_kg is not None
        per_kg = notation.amount(draft.dose.mg_per_kg, "mg/kg", notation.KG_QUANTUM)
        if check.above_maximum:
            return (
                f"Anakinra draft states {dose} and {per_kg}, which disagree; {per_kg} exceeds the "
                f"{institution} protocol maximum for {weight}",
                f"Anakinra draft states {dose} and {per_kg}, which disagree; {per_kg} exceeds the protocol "
                f"maximum for {weight}",
            )
        return (
            f"Anakinra draft states {dose} and {per_kg}, which disagree at {weight}: the dose was not checked",
            "Anakinra draft states an mg dose and an mg/kg dose that disagree: the dose was not checked",
        )
    return (
        f"Anakinra draft states no readable dose; {institution} protocol dose for {weight} shown",
        f"Anakinra draft states no readable dose; protocol dose for {weight} shown",
    )


def _summary_for(check: OrderCheck, draft: DraftReading, protocol: ProtocolData, facts: Facts) -> str:
    """The most specific summary that fits with every required suffix (the weight's date)."""
    candidates = _summary_candidates(check, draft, protocol)
    required = "".join(f"; {s}" for s in _required_notes(facts))
    if weight_needs_confirming(check.weight_kg):
        candidates = tuple(c + WEIGHT_CONFIRM_SUFFIX for c in candidates) + candidates
    fallback = f"Anakinra dose at {notation.weight(check.weight_kg)}: see the card"
    return _summary(*(c + required for c in candidates), fallback + required)


ALLERGY_NOT_CHECKED = "anakinra allergy not checked"
OTHER_ORDERS_KEPT = 'the other anakinra orders stay: to remove them, use the card "More than one anakinra order"'
MORE_THAN_ONE = "more than one anakinra order"


def _required_notes(facts: Facts) -> list[str]:
    """What every dose card summary must say when it applies (and what keeps it from being `info`)."""
    notes = [facts.weight_age] if facts.weight_age else []
    if facts.allergies.not_checked:
        notes.append(ALLERGY_NOT_CHECKED)  # no allergy data, or a list that could not be read in full
    if facts.anakinra_orders > 1:
        notes.append(MORE_THAN_ONE)  # their sum is checked on its own card
    return notes


def _with_allergy_note(summary: str, facts: Facts) -> str:
    return f"{summary}; {ALLERGY_NOT_CHECKED}" if facts.allergies.not_checked else summary


def weight_needs_confirming(weight_kg: Decimal) -> bool:
    """The engine's weight_confirm rule: a weight this high may have been entered in pounds."""
    return weight_kg >= safety.WEIGHT_CONFIRM_FROM_KG


def _indicator(check: OrderCheck, facts: Facts) -> str:
    if check.above_maximum:
        return "critical"
    indicator = INDICATORS[check.verdict]
    if indicator == "info" and weight_needs_confirming(check.weight_kg):
        return "warning"  # the engine's weight_confirm warning
    if indicator == "info" and _required_notes(facts):
        return "warning"  # an old or undated weight, no allergy data, or another anakinra order
    return indicator


def _suggestions(
    check: OrderCheck, draft: DraftReading, request: dict[str, Any], protocol: ProtocolData, facts: Facts
) -> list[dict[str, Any]]:
    weight = notation.weight(check.weight_kg)
    follows = dict(
        zip(
            (id(r) for r in check.steps),
            fhir.taper_follows([{"kind": r.step.kind, "name": r.step.name} for r in check.steps]),
            strict=True,
        )
    )
    suggestions = []
    for correction in check.corrections:
        step = step_dict(correction.result)
        resource = fhir.corrected_request(
            request,
            step,
            route=correction.route,
            per_dose_mg=correction.per_dose_mg,
            follows=follows[id(correction.result)],
        )
        interval = notation.interval_text(
            correction.result.step.interval_hours, is_maximum=correction.result.step.interval_is_maximum
        )
        order = f"{notation.amount(correction.per_dose_mg, 'mg')} {notation.ROUTE_WORDS[correction.route]} {interval}"
        suggestions.append(
            {
                "label": f"Use {order} ({correction.result.step.name})",
                "uuid": str(uuid.uuid4()),
                "actions": [
                    {
                        "type": "update",
                        "description": (
                            f"Change the drafted anakinra to {order}: {protocol_label(protocol)}, "
                            f"{correction.result.step.name}, for {weight}"
                            + (f"; {fhir.DISPENSE_NOT_RECALCULATED}" if fhir.dispense_quantity_dropped(request) else "")
                            + (f"; {OTHER_ORDERS_KEPT}" if facts.anakinra_orders > 1 else "")
                        ),
                        "resource": resource,
                    }
                ],
            }
        )
    return suggestions


def dose_card(
    *, check: OrderCheck, draft: DraftReading, request: dict[str, Any], facts: Facts, setting: CardSetting
) -> dict[str, Any]:
    protocol = setting.protocol
    assert protocol is not None
    draft_ref = f"MedicationRequest/{request.get('id', '(no id)')}"
    findings = list(check.findings)
    names = ", ".join(r.step.name for r in check.matched)
    if check.verdict == Verdict.MATCHES:
        findings.insert(0, f"The draft matches what this protocol gives for this weight: {names}.")
    elif check.verdict == Verdict.UNCONFIRMED:
        findings.insert(
            0,
            f"As far as it could be read, the draft could be what this protocol gives for this weight ({names}), "
            "but the match is not confirmed: see what was not read below.",
        )
    elif check.verdict == Verdict.DIFFERS:
        findings.insert(0, "The draft is not what any step of this protocol gives for this weight.")
    if weight_needs_confirming(check.weight_kg):
        findings.insert(0, safety.WEIGHT_CONFIRM.text)
    if facts.anakinra_orders > 1:
        findings.insert(
            0,
            f"{facts.anakinra_orders} anakinra orders are drafted: this card checks this one alone; "
            'their sum is checked on the card "More than one anakinra order".',
        )
    if facts.weight_age:
        findings.insert(
            0, f"The weight may not be current ({facts.weight_age}): confirm today's weight before ordering."
        )
    suggestions = _suggestions(check, draft, request, protocol, facts) if request.get("id") else []
    if check.corrections and not request.get("id"):
        findings.append("The drafted order has no id, so no corrected order can be offered: change it by hand.")
    sections = [
        NOT_ASSESSED,
        "#### Check\n\n" + "\n".join(f"- {_md(f)}" for f in findings),
        _inputs_table(facts, draft, draft_ref),
        _steps_section(check),
        _caps_section(protocol),
        _citations_section(protocol),
        _provenance(protocol),
    ]
    card = _card(
        summary=_summary_for(check, draft, protocol, facts),
        indicator=_indicator(check, facts),
        detail="\n\n".join(sections),
        setting=setting,
        facts=facts,
        app_context=_draft_context(draft, draft_ref),
    )
    if suggestions:
        card["selectionBehavior"] = "at-most-one"
        card["suggestions"] = suggestions
    return card


def contraindication_card(*, facts: Facts, setting: CardSetting) -> dict[str, Any]:
    recorded = ", ".join(_md(a) for a in facts.allergies.recorded)
    sections = [
        f"**{safety.HYPERSENSITIVITY.text}**",
        f"The EHR records an allergy to: {recorded}.",
        _inputs_table(facts, None, ""),
    ]
    if setting.protocol is not None:
        label_facts = (safety.LABEL_FACTS["contraindicated_hypersensitivity"],)
        sections.extend([_citations_section(setting.protocol, label_facts), _provenance(setting.protocol)])
    else:
        sections.append(DECISION_SUPPORT)
    return _card(
        summary="Anakinra allergy recorded: anakinra is contraindicated. Do not give.",
        indicator="critical",
        detail="\n\n".join(sections),
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
    sections = [f"**The drafted dose was not checked against this weight.** {_md(reason)}"]
    if above_caps:
        sections.append("#### Stated caps\n\n" + "\n".join(f"- {_md(f)}" for f in above_caps))
        summary = "Anakinra draft is above the protocol's stated cap; weight unavailable"
    sections.append(_inputs_table(facts, draft, draft_ref))
    if setting.protocol is not None:
        sections.extend(
            [_caps_section(setting.protocol), _citations_section(setting.protocol), _provenance(setting.protocol)]
        )
    else:
        sections.append(DECISION_SUPPORT)
    return _card(
        summary=_summary(_with_allergy_note(summary, facts)),
        indicator="critical" if above_caps else "warning",
        detail="\n\n".join(sections),
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
                "label": f"Keep only {kept.ref} ({kept.reading.description}); remove {removed}",
                "uuid": str(uuid.uuid4()),
                "actions": [
                    {
                        "type": "delete",
                        "description": f"Remove the drafted {line.ref} ({line.reading.description})",
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
    readings = [(line.ref, line.reading) for line in lines]
    count = len(readings)
    per_day = [r.dose.top_per_day_mg for _, r in readings]
    readable = [p for p in per_day if p is not None]
    total = sum(readable, Decimal(0))
    listed = [f"- {_md(ref)}: {_md(r.description)}" for ref, r in readings]
    findings = [
        f"{count} anakinra orders are drafted together. Added up, the per-day amounts that could be read give "
        f"{notation.amount(total, 'mg/day')}."
    ]
    if len(readable) < count:
        findings.append(f"{count - len(readable)} of them state no per-day amount that can be read: not added.")
    over = []
    if limits is not None and limits.max_per_day_mg is not None and weight_kg is not None:
        maximum = notation.amount(limits.max_per_day_mg, "mg/day")
        if total > limits.max_per_day_mg:
            over.append(f"the protocol maximum for {notation.weight(weight_kg)} ({maximum})")
        findings.append(f"The most any step of this protocol gives per day at {notation.weight(weight_kg)}: {maximum}.")
    if limits is not None and limits.stated_per_day_mg is not None:
        cap = notation.amount(limits.stated_per_day_mg, "mg/day")
        if total > limits.stated_per_day_mg:
            over.append(f"the protocol's stated cap ({cap})")
        findings.append(f"The protocol's stated per-day cap: {cap}.")
    if over:
        findings.append("Together they are above " + " and ".join(over) + ".")
    suggestions = _keep_one_suggestions(lines)
    findings.append(
        "Check that only one anakinra order is meant"
        + (": each suggestion keeps one order and removes the others." if suggestions else ".")
    )
    sections = [
        "#### More than one anakinra order",
        "",
        *listed,
        "",
        "#### Check",
        "",
        *(f"- {_md(f)}" for f in findings),
    ]
    detail = "\n".join(sections)
    if setting.protocol is not None:
        detail += "\n\n" + "\n\n".join([_caps_section(setting.protocol), _provenance(setting.protocol)])
    else:
        detail += "\n\n" + DECISION_SUPPORT
    day = notation.amount(total, "mg/day")
    if over:
        candidates = (
            f"More than one anakinra order: together {day}, above the protocol maximum",
            "More than one anakinra order: together above the protocol maximum",
        )
    else:
        candidates = (
            f"More than one anakinra order ({count}): together {day}; check only one is meant",
            "More than one anakinra order: check only one is meant",
        )
    card = _card(
        summary=_summary(*(_with_allergy_note(c, facts) for c in candidates)),
        indicator="critical" if over else "warning",
        detail=detail,
        setting=setting,
        facts=facts,
    )
    if suggestions:
        card["selectionBehavior"] = "at-most-one"
        card["suggestions"] = suggestions
    return card
