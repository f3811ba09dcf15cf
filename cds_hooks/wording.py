"""Every sentence of a CDS Hooks card that is not in its markdown template: summaries (plain text, under 140
characters), the findings listed under "Check", the rows of the inputs table, link and suggestion labels.

With the templates in templates/cds_hooks/cards/ this is the one place a pharmacist reviews what a card says
(docs/architecture/wording.md). Amounts are in the engine's notation (engine.notation); limits are read
from their one declaration (engine.limits). Markdown escaping is not done here: the templates escape every
value with the `md` filter, so these functions return plain text.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from cds_hooks.fhir_read import READ_LIMIT
from engine import limits, notation, safety
from engine.data import ProtocolData, Step, StepResult, Warning
from engine.order_check import OrderCheck, Verdict
from engine.recommend import THRESHOLDS_MISSING_NOTE

if TYPE_CHECKING:
    from cds_hooks.cards import Facts
    from cds_hooks.fhir_read import DraftReading

SUMMARY_LIMIT = 140
OVERRIDE_REASONS = (
    ("clinical-judgement", "Clinical judgement: dose confirmed with pharmacy"),
    ("other-protocol", "Following a different institution protocol"),
    ("weight-not-current", "The weight in the EHR is not current"),
    ("escalation-or-taper", "Planned escalation or taper"),
)
SMART_LINK_LABEL = "Open Anakinra CDS on this patient (enter toxicity and grade there)"
WIZARD_LINK_LABEL = "Open the bedside wizard with these inputs (enter toxicity and grade there)"
WEIGHT_CONFIRM_SUFFIX = "; confirm the weight is in kg"
ALLERGY_NOT_CHECKED = "anakinra allergy not checked"
OTHER_ORDERS_KEPT = 'the other anakinra orders stay: to remove them, use the card "More than one anakinra order"'
MORE_THAN_ONE = "more than one anakinra order"
CONTRAINDICATED_SUMMARY = "Anakinra allergy recorded: anakinra is contraindicated. Do not give."
ABOVE_STATED_CAP_SUMMARY = "Anakinra draft is above the protocol's stated cap; weight unavailable"


def fitting_summary(*candidates: str) -> str:
    """The first candidate that fits; the last one is kept short enough to always fit."""
    for text in candidates:
        if len(text) < SUMMARY_LIMIT:
            return text
    raise ValueError("no summary under 140 characters")


def protocol_label(protocol: ProtocolData) -> str:
    return f"{protocol.institution_name} anakinra protocol, version {protocol.version_number}"


def weight_range() -> str:
    """The weights a dose is checked at, from their one declaration: "1 to 150 kg"."""
    weight = limits.WEIGHT_KG
    return f"{weight.low} to {weight.high} {weight.unit}"


# --- Detail: the inputs table, the steps, the caps ---------------------------------------------------------


def inputs_rows(facts: Facts, draft: DraftReading | None, draft_ref: str) -> list[tuple[str, str, str]]:
    """(input, value, source) for the "Inputs used" table, as plain text."""
    rows = []
    if facts.weight is None:
        rows.append(("Weight", "not available", "no prefetch and no FHIR server access"))
    elif facts.weight.kg is None:
        source = "Observation LOINC 29463-7" if facts.weight.unreadable else facts.weight.source
        rows.append(("Weight", facts.weight.problem, source))
    else:
        value = notation.weight(facts.weight.kg)
        if facts.weight.conversion:
            value += f" ({facts.weight.conversion})"
        rows.append(("Weight", value, facts.weight.source))
    age = f"{facts.age_years} years" if facts.age_years is not None else "not available"
    rows.append(("Age", age, "Patient.birthDate"))
    if draft is not None:
        rows.append(("Drafted order", draft.description, draft_ref))
    allergies = facts.allergies
    if allergies.recorded:
        allergy = "recorded: " + ", ".join(allergies.recorded)
        if allergies.not_checked:
            allergy += f" (the rest of the list was not checked: {allergies.not_checked})"
    elif allergies.not_checked:
        allergy = f"not checked: {allergies.not_checked}"
    else:
        allergy = "none recorded for anakinra"
    rows.append(("Anakinra allergy", allergy, "AllergyIntolerance"))
    rows.append(("Toxicity and grade", "not sent by the EHR", "enter in the bedside wizard"))
    rows.append(("Prior tocilizumab and steroids", "not sent by the EHR", "enter in the bedside wizard"))
    return rows


def grades_text(result: StepResult) -> str:
    """What a step applies to: "CRS, ICANS, grades 1 to 2"."""
    step = result.step
    toxicities = ", ".join(t.value for t in sorted(step.toxicities, key=lambda t: ("CRS", "ICANS", "carHLH").index(t)))
    grades = (
        f"grade {step.min_grade}"
        if step.min_grade == step.max_grade
        else f"grades {step.min_grade} to {step.max_grade}"
    )
    return f"{toxicities}, {grades}"


def cap_phrases(step: Step) -> tuple[str, ...]:
    """A step's stated caps ("400 mg per day", "escalation up to 10 mg/kg/day"); none when it states none."""
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
    return tuple(caps)


# --- The dose card -------------------------------------------------------------------------------------------


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


def escalating(result: StepResult, draft: DraftReading) -> bool:
    """The draft matches a step with no interval by giving more a day than the step's starting amount, up to
    its escalation ceiling (engine.order_check): within the escalation range, not the starting dose."""
    per_day = draft.dose.per_day_mg
    return (
        result.per_dose_mg is None
        and result.max_escalation_per_day_mg is not None
        and per_day is not None
        and per_day > result.per_day_mg.high
    )


def escalation_range(result: StepResult) -> str:
    """ "start 40 mg/day, ceiling 200 mg/day": the engine's starting amount and (capped) ceiling at this weight."""
    assert result.max_escalation_per_day_mg is not None
    start = notation.amount_range(result.per_day_mg.low, result.per_day_mg.high, "mg/day")
    return f"start {start}, ceiling {notation.amount(result.max_escalation_per_day_mg, 'mg/day')}"


def _far_above(check: OrderCheck) -> str:
    """The sentence on a drafted amount too large to read (a billion or more in its unit)."""
    most = []
    if check.max_per_dose_mg is not None:
        most.append(f"{notation.amount(check.max_per_dose_mg, 'mg')} per dose")
    if check.max_per_day_mg is not None:
        most.append(f"{notation.amount(check.max_per_day_mg, 'mg/day')}")
    given = f" (the most any step gives at {notation.weight(check.weight_kg)}: {' and '.join(most)})" if most else ""
    return (
        f"The draft states an amount of {notation.plain_number(READ_LIMIT)} or more in its unit: far above any "
        f"dose of this protocol{given}. It was not read as a dose: correct the order."
    )


def _summary_candidates(check: OrderCheck, draft: DraftReading, protocol: ProtocolData) -> tuple[str, ...]:
    """Summaries from the most to the least specific (the institution's name can be long)."""
    institution = protocol.institution_name
    weight = notation.weight(check.weight_kg)
    dose = notation.amount(draft.dose.per_dose_mg, "mg") if draft.dose.per_dose_mg is not None else ""
    if draft.beyond_reading and check.verdict != Verdict.ABOVE_MAXIMUM:
        return (
            f"Anakinra draft states an amount far above any {institution} protocol dose for {weight}: correct it",
            f"Anakinra draft states an amount far above any protocol dose for {weight}: correct it",
        )
    if check.verdict == Verdict.MATCHES and escalating(check.matched[0], draft):
        result = check.matched[0]
        per_day = notation.amount(draft.dose.per_day_mg, "mg/day")  # type: ignore[arg-type]
        escalation = escalation_range(result)
        return (
            f"Anakinra {dose} ({per_day}): within the {institution} protocol's escalation range for {weight} "
            f"({escalation})",
            f"Anakinra {dose} ({per_day}): within the protocol's escalation range for {weight} ({escalation})",
            f"Anakinra {dose}: within the protocol's escalation range for {weight}; indication not assessed",
        )
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


def required_notes(facts: Facts) -> list[str]:
    """What every dose card summary must say when it applies (and what keeps it from being `info`)."""
    notes = [facts.weight_age] if facts.weight_age else []
    if facts.allergies.not_checked:
        notes.append(ALLERGY_NOT_CHECKED)  # no allergy data, or a list that could not be read in full
    if facts.anakinra_orders > 1:
        notes.append(MORE_THAN_ONE)  # their sum is checked on its own card
    return notes


def weight_needs_confirming(weight_kg: Decimal) -> bool:
    """The engine's weight_confirm rule: a weight this high may have been entered in pounds."""
    return weight_kg >= safety.WEIGHT_CONFIRM_FROM_KG


def dose_summary(check: OrderCheck, draft: DraftReading, protocol: ProtocolData, facts: Facts) -> str:
    """The most specific summary that fits with every required suffix (the weight's date)."""
    candidates = _summary_candidates(check, draft, protocol)
    required = "".join(f"; {s}" for s in required_notes(facts))
    if weight_needs_confirming(check.weight_kg):
        candidates = tuple(c + WEIGHT_CONFIRM_SUFFIX for c in candidates) + candidates
    fallback = f"Anakinra dose at {notation.weight(check.weight_kg)}: see the card"
    return fitting_summary(*(c + required for c in candidates), fallback + required)


def with_allergy_note(summary: str, facts: Facts) -> str:
    return f"{summary}; {ALLERGY_NOT_CHECKED}" if facts.allergies.not_checked else summary


def dose_findings(check: OrderCheck, draft: DraftReading, facts: Facts, *, has_id: bool) -> list[str]:
    """The "Check" list of a dose card: the card's own sentences around the engine's findings."""
    findings = list(check.findings)
    names = ", ".join(r.step.name for r in check.matched)
    if check.verdict == Verdict.MATCHES:
        starts = [r for r in check.matched if not escalating(r, draft)]
        above_start = [r for r in check.matched if escalating(r, draft)]
        if above_start:
            per_day = notation.amount(draft.dose.per_day_mg, "mg/day")  # type: ignore[arg-type]
            findings[0:0] = [
                f"The draft gives {per_day}: above the starting dose and within this protocol's escalation range "
                f"for this weight ({r.step.name}: {escalation_range(r)})."
                for r in above_start
            ]
        if starts:
            matched = ", ".join(r.step.name for r in starts)
            findings.insert(0, f"The draft matches what this protocol gives for this weight: {matched}.")
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
    if draft.beyond_reading:
        findings.insert(0, _far_above(check))
    if check.corrections and not has_id:
        findings.append("The drafted order has no id, so no corrected order can be offered: change it by hand.")
    return findings


def correction_order(per_dose_mg: Decimal, route_words: str, result: StepResult) -> str:
    """A corrected order in words: "40 mg IV every 6 hours"."""
    interval = notation.interval_text(result.step.interval_hours, is_maximum=result.step.interval_is_maximum)
    return f"{notation.amount(per_dose_mg, 'mg')} {route_words} {interval}"


def correction_label(order: str, result: StepResult) -> str:
    return f"Use {order} ({result.step.name})"


def correction_description(
    order: str, result: StepResult, protocol: ProtocolData, weight_kg: Decimal, *, notes: tuple[str, ...]
) -> str:
    text = (
        f"Change the drafted anakinra to {order}: {protocol_label(protocol)}, "
        f"{result.step.name}, for {notation.weight(weight_kg)}"
    )
    return text + "".join(f"; {note}" for note in notes)


def engine_notes(warnings: tuple[Warning, ...], check: OrderCheck, protocol: ProtocolData) -> list[tuple[str, str]]:
    """(severity, text) of every warning and info note the engine raised from this protocol's steps at this
    weight (engine.safety.step_warnings; the weight_confirm warning is said under "Check"), and the note that
    the version states no comparison amounts, where it states none."""
    notes = [(w.severity.value, w.text) for w in warnings]
    if check.steps and protocol.thresholds is None:
        notes.append(("info", THRESHOLDS_MISSING_NOTE))
    return notes


# --- The card whose dose was not checked ---------------------------------------------------------------------


def no_protocol(institution_slug: str | None) -> tuple[str, str]:
    """(reason, summary) when there is no published protocol to check against."""
    if institution_slug:
        reason = f"The configured institution {institution_slug!r} has no published protocol."
        summary = "The configured institution has no published protocol: the anakinra dose was not checked"
    else:
        reason = "No institution protocol is configured for this EHR."
        summary = "No institution protocol is configured for this EHR: the anakinra dose was not checked"
    return reason + " Compare the centers in the bedside wizard.", summary


def no_usable_weight(*, problem: str, unreadable: bool) -> tuple[str, str]:
    """(reason, summary) when the EHR sent no weight in kg that can be used."""
    summary = (
        "The weight could not be read from the EHR: the anakinra dose was not checked"
        if unreadable
        else "No usable weight in kg from the EHR: the anakinra dose was not checked"
    )
    return problem + " Enter the weight in kg in the bedside wizard.", summary


def weight_out_of_range(weight_kg: Decimal) -> tuple[str, str]:
    """(reason, summary) when the EHR's weight is outside the weights a dose is checked at."""
    reason = (
        f"The weight from the EHR, {notation.weight(weight_kg)}, is outside "
        f"{weight_range()}. Check the weight and enter it in the bedside wizard."
    )
    summary = f"The weight from the EHR is outside {weight_range()}: the anakinra dose was not checked"
    return reason, summary


# --- More than one anakinra order ----------------------------------------------------------------------------


def duplicates_findings(
    *,
    count: int,
    unreadable: int,
    total_mg: Decimal,
    weight_kg: Decimal | None,
    max_per_day_mg: Decimal | None,
    stated_per_day_mg: Decimal | None,
    over: list[str],
    suggestions: bool,
) -> list[str]:
    findings = [
        f"{count} anakinra orders are drafted together. Added up, the per-day amounts that could be read give "
        f"{notation.amount(total_mg, 'mg/day')}."
    ]
    if unreadable:
        findings.append(f"{unreadable} of them state no per-day amount that can be read: not added.")
    if max_per_day_mg is not None and weight_kg is not None:
        findings.append(
            f"The most any step of this protocol gives per day at {notation.weight(weight_kg)}: "
            f"{notation.amount(max_per_day_mg, 'mg/day')}."
        )
    if stated_per_day_mg is not None:
        findings.append(f"The protocol's stated per-day cap: {notation.amount(stated_per_day_mg, 'mg/day')}.")
    if over:
        findings.append("Together they are above " + " and ".join(over) + ".")
    findings.append(
        "Check that only one anakinra order is meant"
        + (": each suggestion keeps one order and removes the others." if suggestions else ".")
    )
    return findings


def above_protocol_maximum(weight_kg: Decimal, max_per_day_mg: Decimal) -> str:
    return f"the protocol maximum for {notation.weight(weight_kg)} ({notation.amount(max_per_day_mg, 'mg/day')})"


def above_stated_cap(stated_per_day_mg: Decimal) -> str:
    return f"the protocol's stated cap ({notation.amount(stated_per_day_mg, 'mg/day')})"


def duplicates_summary(*, count: int, total_mg: Decimal, over: bool, facts: Facts) -> str:
    day = notation.amount(total_mg, "mg/day")
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
    return fitting_summary(*(with_allergy_note(c, facts) for c in candidates))


def keep_one_label(kept_ref: str, kept_description: str, removed: str) -> str:
    return f"Keep only {kept_ref} ({kept_description}); remove {removed}"


def remove_description(ref: str, description: str) -> str:
    return f"Remove the drafted {ref} ({description})"
