"""Check a drafted anakinra order against one protocol, for one weight, without knowing the toxicity.

An EHR ordering hook sends the draft and (usually) a weight, but not the toxicity, its grade or the
tocilizumab and steroid history. So no indication can be assessed here. What can be checked without
them is the arithmetic: every dosing step of the protocol is computed for this weight (the same
`step_dose` the recommendation uses) and the draft is compared with what those steps give.

- `above_maximum`: the draft gives more per dose, or more per day, than any step of the protocol
  gives at this weight (after the protocol's caps and escalation ceilings). Grade-independent.
- `matches`: the draft is what at least one step gives (dose, frequency and route as far as the
  draft states them).
- `differs`: neither.
- `not_comparable`: the draft states no dose in mg (or mg/kg) that can be read.

Where the draft does not match, each step with a per-dose amount is offered as a correction. Steps
whose protocol states no interval give no per-dose amount, so they are never offered (no frequency
is guessed).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from engine import notation
from engine.data import ProtocolData, Step, StepResult
from engine.dosing import doses_per_day, step_dose
from engine.vocabulary import Route


class Verdict(StrEnum):
    ABOVE_MAXIMUM = "above_maximum"
    DIFFERS = "differs"
    MATCHES = "matches"
    NOT_COMPARABLE = "not_comparable"


@dataclass(frozen=True, slots=True)
class DraftDose:
    """What the drafted order states; None where it states nothing readable."""

    per_dose_mg: Decimal | None
    doses_per_day: Decimal | None
    route: Route | None

    @property
    def per_day_mg(self) -> Decimal | None:
        if self.per_dose_mg is None or self.doses_per_day is None:
            return None
        return self.per_dose_mg * self.doses_per_day


@dataclass(frozen=True, slots=True)
class Correction:
    """One step of the protocol offered in place of the draft, by one route."""

    result: StepResult
    route: Route
    per_dose_mg: Decimal


@dataclass(frozen=True, slots=True)
class OrderCheck:
    weight_kg: Decimal
    steps: tuple[StepResult, ...]
    max_per_dose_mg: Decimal | None
    max_per_day_mg: Decimal | None
    verdict: Verdict
    findings: tuple[str, ...]
    matched: tuple[StepResult, ...]
    corrections: tuple[Correction, ...]


def _step_max_per_day(result: StepResult) -> Decimal:
    highest = result.per_day_mg.high
    if result.max_escalation_per_day_mg is not None:
        highest = max(highest, result.max_escalation_per_day_mg)
    return highest


def _route_ok(result: StepResult, draft: DraftDose) -> bool:
    return draft.route is None or draft.route in result.step.routes


def _frequency_ok(result: StepResult, draft: DraftDose) -> bool:
    if draft.doses_per_day is None:
        return True
    step_count = doses_per_day(result.step.interval_hours)
    if step_count is None:
        return True
    if result.step.interval_is_maximum:
        # "Up to every 6 hours": given less often is still within the protocol.
        return draft.doses_per_day <= step_count
    return draft.doses_per_day == step_count


def _matches(result: StepResult, draft: DraftDose) -> bool:
    if draft.per_dose_mg is None or not _route_ok(result, draft):
        return False
    if result.per_dose_mg is not None:
        within = result.per_dose_mg.low <= draft.per_dose_mg <= result.per_dose_mg.high
        return within and _frequency_ok(result, draft)
    # No interval in the protocol: only a per-day amount (and an escalation ceiling) to compare.
    per_day = draft.per_day_mg
    return per_day is not None and result.per_day_mg.low <= per_day <= _step_max_per_day(result)


def _corrections(steps: tuple[StepResult, ...], draft: DraftDose) -> tuple[Correction, ...]:
    found: list[Correction] = []
    for result in steps:
        if result.per_dose_mg is None:
            continue
        if result.per_dose_mg.is_single:
            dose = result.per_dose_mg.low
        elif draft.per_dose_mg is None:
            continue  # choosing a point in a range is the prescriber's decision
        else:
            dose = min(max(draft.per_dose_mg, result.per_dose_mg.low), result.per_dose_mg.high)
        routes = (draft.route,) if draft.route in result.step.routes else result.step.routes
        found.extend(Correction(result=result, route=route, per_dose_mg=dose) for route in routes)
    return tuple(found)


def _stated_caps_exceeded(draft: DraftDose, steps: tuple[Step, ...]) -> list[str]:
    """The protocol's own per-dose and per-day caps, named when the draft is above them in every step."""
    found = []
    dose_caps = [s.max_single_dose_mg for s in steps]
    if steps and None not in dose_caps and draft.per_dose_mg is not None and draft.per_dose_mg > max(dose_caps):
        found.append(f"It is above the protocol's stated cap of {notation.amount(max(dose_caps), 'mg')} per dose.")
    day_caps = [s.max_daily_dose_mg for s in steps]
    per_day = draft.per_day_mg
    if steps and None not in day_caps and per_day is not None and per_day > max(day_caps):
        found.append(f"It is above the protocol's stated cap of {notation.amount(max(day_caps), 'mg')} per day.")
    return found


def _findings(
    draft: DraftDose,
    weight_kg: Decimal,
    steps: tuple[Step, ...],
    max_per_dose: Decimal | None,
    max_per_day: Decimal | None,
) -> tuple[list[str], bool]:
    """Sentences on what exceeds the protocol's maximum for this weight, and whether anything does."""
    weight = notation.amount(weight_kg, "kg", Decimal("0.001"))
    findings: list[str] = []
    if draft.per_dose_mg is None:
        findings.append("The draft states no dose in mg or mg/kg that can be read, so it was not compared.")
        return findings, False
    dose = notation.amount(draft.per_dose_mg, "mg")
    above = False
    if max_per_dose is not None and draft.per_dose_mg > max_per_dose:
        above = True
        findings.append(
            f"{dose} per dose is above the most any step of this protocol gives per dose at {weight} "
            f"({notation.amount(max_per_dose, 'mg')})."
        )
    per_day = draft.per_day_mg
    if max_per_day is not None and per_day is not None and per_day > max_per_day:
        above = True
        findings.append(
            f"{notation.amount(per_day, 'mg/day')} is above the most any step of this protocol gives per day "
            f"at {weight} ({notation.amount(max_per_day, 'mg/day')})."
        )
    elif max_per_day is not None and draft.per_dose_mg > max_per_day:
        above = True
        findings.append(
            f"A single dose of {dose} is above the most any step of this protocol gives in a whole day "
            f"at {weight} ({notation.amount(max_per_day, 'mg/day')})."
        )
    findings.extend(_stated_caps_exceeded(draft, steps))
    if draft.doses_per_day is None:
        findings.append("The draft states no frequency that can be read: the per-day amount was not checked.")
    if draft.route is None:
        findings.append("The draft states no route that can be read (IV or subcut): the route was not checked.")
    return findings, above


def order_check(*, protocol: ProtocolData, weight_kg: Decimal, draft: DraftDose) -> OrderCheck:
    """Compare a drafted order with every step of one protocol at this weight."""
    steps = tuple(
        step_dose(step=step, weight_kg=weight_kg, concentration_mg_per_ml=protocol.concentration_mg_per_ml)
        for step in protocol.steps
    )
    max_per_dose = max((r.per_dose_mg.high for r in steps if r.per_dose_mg is not None), default=None)
    max_per_day = max((_step_max_per_day(r) for r in steps), default=None)
    findings, above = _findings(draft, weight_kg, protocol.steps, max_per_dose, max_per_day)
    matched = tuple(r for r in steps if _matches(r, draft))

    if draft.per_dose_mg is None:
        verdict = Verdict.NOT_COMPARABLE
    elif above:
        verdict = Verdict.ABOVE_MAXIMUM
    elif matched:
        verdict = Verdict.MATCHES
    else:
        verdict = Verdict.DIFFERS
        if draft.route is not None and not any(draft.route in r.step.routes for r in steps):
            route = notation.ROUTE_WORDS[draft.route]
            findings.append(f"No step of this protocol gives anakinra {route}.")
    corrections = () if verdict == Verdict.MATCHES else _corrections(steps, draft)
    return OrderCheck(
        weight_kg=weight_kg,
        steps=steps,
        max_per_dose_mg=max_per_dose,
        max_per_day_mg=max_per_day,
        verdict=verdict,
        findings=tuple(findings),
        matched=matched,
        corrections=corrections,
    )
