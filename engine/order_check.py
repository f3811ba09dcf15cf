"""Check a drafted anakinra order against one protocol, for one weight, without knowing the toxicity.

An EHR ordering hook sends the draft and (usually) a weight, but not the toxicity, its grade or the
tocilizumab and steroid history. So no indication can be assessed here. What can be checked without
them is the arithmetic: every dosing step of the protocol is computed for this weight (the same
`step_dose` the recommendation uses) and the draft is compared with what those steps give.

- `above_maximum`: the draft's mg dose gives more per dose, or more per day, than any step of the
  protocol gives at this weight (after the protocol's caps and escalation ceilings). Grade-independent.
- `matches`: the dose, the frequency and the route were all read, and all three are what one step
  gives. Nothing that was not read can match.
- `unconfirmed`: the dose could be what a step gives, but the frequency or the route (or another part
  of the draft) could not be read, so the match is not confirmed.
- `differs`: the draft is not what any step gives.
- `not_comparable`: the draft states no dose that can be read, or states an mg dose and an mg/kg dose
  that disagree (by more than 0.1 mg at this weight) in a way no step of the protocol explains: which
  one is meant is not guessed.

Where the draft does not match, each step with a per-dose amount is offered as a correction. Steps
whose protocol states no interval give no per-dose amount, so they are never offered (no frequency
is guessed).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from engine import notation
from engine.data import ProtocolData, Step, StepResult
from engine.dosing import step_dose
from engine.vocabulary import DoseBasis, Route

# An mg dose and an mg/kg dose on one order "agree" when they are within this at the weight.
SAME_DOSE_TOLERANCE_MG = notation.MG_QUANTUM


class Verdict(StrEnum):
    ABOVE_MAXIMUM = "above_maximum"
    DIFFERS = "differs"
    MATCHES = "matches"
    UNCONFIRMED = "unconfirmed"
    NOT_COMPARABLE = "not_comparable"


def _highest(*values: Decimal | None) -> Decimal | None:
    return max((v for v in values if v is not None), default=None)


@dataclass(frozen=True, slots=True)
class DraftDose:
    """What the drafted order states; None where it states nothing readable.

    `per_dose_mg` is the mg dose the order states (what is drawn up), or, only when it states no mg
    dose, its mg/kg dose times the weight. `mg_per_kg` is an mg/kg dose stated beside an mg dose: the
    check compares the two. `interval_is_maximum`: the timing is a most-often ("as needed" within it).
    `unread` says what else the order states that could not be read, so was not checked."""

    per_dose_mg: Decimal | None
    doses_per_day: Decimal | None
    route: Route | None
    mg_per_kg: Decimal | None = None
    interval_is_maximum: bool = False
    unread: tuple[str, ...] = ()
    # The most the order states for one dose and for one day anywhere (every dosage instruction, the
    # top of a dose range, mass units converted): only for the "above the maximum" check, never to match.
    highest_per_dose_mg: Decimal | None = None
    highest_per_day_mg: Decimal | None = None

    @property
    def top_per_dose_mg(self) -> Decimal | None:
        return _highest(self.per_dose_mg, self.highest_per_dose_mg)

    @property
    def top_per_day_mg(self) -> Decimal | None:
        return _highest(self.per_day_mg, self.highest_per_day_mg)

    @property
    def per_day_mg(self) -> Decimal | None:
        if self.per_dose_mg is None or self.doses_per_day is None:
            return None
        return self.per_dose_mg * self.doses_per_day

    @property
    def fully_read(self) -> bool:
        return (
            self.per_dose_mg is not None
            and self.doses_per_day is not None
            and self.route is not None
            and not self.unread
        )


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
    # The steps the draft is (matches), or could be as far as it was read (unconfirmed).
    matched: tuple[StepResult, ...]
    corrections: tuple[Correction, ...]
    # The draft's mg and mg/kg doses disagree (see the module docstring).
    dose_conflict: bool = False
    # Some dose the draft states (its mg dose, or with a conflict its mg/kg dose at this weight) is above
    # the most the protocol gives: true whenever the verdict is above_maximum.
    above_maximum: bool = False
    # What was not read, for the summary: "frequency", "route", or "order" (something else).
    not_read: tuple[str, ...] = ()


def _step_max_per_day(result: StepResult) -> Decimal:
    highest = result.per_day_mg.high
    if result.max_escalation_per_day_mg is not None:
        highest = max(highest, result.max_escalation_per_day_mg)
    return highest


def ordered_per_dose(
    *, dose_basis: DoseBasis, amount_low: Decimal, amount_high: Decimal, doses_per_day: int | None
) -> tuple[Decimal, Decimal] | None:
    """A step's amount for one dose in its own unit (mg/kg or mg), low and high: a per-day basis is
    divided by the doses a day, to 0.001. None for a per-day basis without an interval. The FHIR
    `ordered` dose, and what an mg/kg dose on a draft is compared with."""
    if dose_basis.per_dose:
        return amount_low, amount_high
    if doses_per_day is None:
        return None
    count = Decimal(doses_per_day)
    return (
        (amount_low / count).quantize(notation.KG_QUANTUM, rounding=ROUND_HALF_UP),
        (amount_high / count).quantize(notation.KG_QUANTUM, rounding=ROUND_HALF_UP),
    )


def _ordered_per_dose_mg_per_kg(step: Step) -> tuple[Decimal, Decimal] | None:
    if not step.per_kg:
        return None
    return ordered_per_dose(
        dose_basis=step.dose_basis,
        amount_low=step.amount_low,
        amount_high=step.amount_high,
        doses_per_day=step.doses_per_day,
    )


def _same_mg(first: Decimal, second: Decimal) -> bool:
    return abs(first - second) <= SAME_DOSE_TOLERANCE_MG


def _dose_conflict(draft: DraftDose, weight_kg: Decimal, steps: tuple[StepResult, ...]) -> bool:
    """An mg dose and an mg/kg dose that disagree at this weight, unless a step of the protocol gives
    exactly that pair (its mg/kg amount, and the mg dose its caps or vial rounding make of it)."""
    if draft.per_dose_mg is None or draft.mg_per_kg is None:
        return False
    if _same_mg(draft.mg_per_kg * weight_kg, draft.per_dose_mg):
        return False
    for result in steps:
        ordered = _ordered_per_dose_mg_per_kg(result.step)
        if ordered is None or result.per_dose_mg is None:
            continue
        for per_kg, mg in zip(ordered, (result.per_dose_mg.low, result.per_dose_mg.high), strict=True):
            if draft.mg_per_kg == per_kg and _same_mg(draft.per_dose_mg, mg):
                return False
    return True


def _route_ok(result: StepResult, draft: DraftDose, *, require_read: bool) -> bool:
    if draft.route is None:
        return not require_read
    return draft.route in result.step.routes


def _frequency_ok(result: StepResult, draft: DraftDose, *, require_read: bool) -> bool:
    if draft.doses_per_day is None:
        return not require_read
    step_count = result.step.doses_per_day
    if step_count is None:
        return True  # the protocol states no interval: the per-day amount is compared instead
    if result.step.interval_is_maximum:
        # "Up to every 6 hours": given less often is still within the protocol.
        return draft.doses_per_day <= step_count
    # A fixed schedule is not met by an "as needed" one.
    return not draft.interval_is_maximum and draft.doses_per_day == step_count


def _matches(result: StepResult, draft: DraftDose, *, require_read: bool) -> bool:
    """The draft is what this step gives. With `require_read` False, parts of the draft that were not
    read (route, frequency) are not held against it: "could match"."""
    if draft.per_dose_mg is None:
        return False
    if not _route_ok(result, draft, require_read=require_read):
        return False
    if not _frequency_ok(result, draft, require_read=require_read):
        return False
    if result.per_dose_mg is not None:
        return result.per_dose_mg.low <= draft.per_dose_mg <= result.per_dose_mg.high
    # No interval in the protocol: only a per-day amount (and an escalation ceiling) to compare.
    per_day = draft.per_day_mg
    if per_day is None:
        return not require_read and draft.per_dose_mg <= _step_max_per_day(result)
    return result.per_day_mg.low <= per_day <= _step_max_per_day(result)


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


def stated_caps(steps: tuple[Step, ...]) -> tuple[Decimal | None, Decimal | None]:
    """The protocol's own per-dose and per-day caps that hold whichever step is meant (the highest, and
    only when every step states one): they need no weight."""
    dose_caps = [s.max_single_dose_mg for s in steps]
    day_caps = [s.max_daily_dose_mg for s in steps]
    dose_cap = max(dose_caps) if steps and None not in dose_caps else None  # type: ignore[type-var]
    day_cap = max(day_caps) if steps and None not in day_caps else None  # type: ignore[type-var]
    return dose_cap, day_cap


def stated_caps_exceeded(
    *, per_dose_mg: Decimal | None, per_day_mg: Decimal | None, steps: tuple[Step, ...]
) -> list[str]:
    """The protocol's own per-dose and per-day caps, named when the draft is above them in every step."""
    found = []
    dose_cap, day_cap = stated_caps(steps)
    if dose_cap is not None and per_dose_mg is not None and per_dose_mg > dose_cap:
        found.append(f"It is above the protocol's stated cap of {notation.amount(dose_cap, 'mg')} per dose.")
    if day_cap is not None and per_day_mg is not None and per_day_mg > day_cap:
        found.append(f"It is above the protocol's stated cap of {notation.amount(day_cap, 'mg')} per day.")
    return found


def _findings(
    draft: DraftDose,
    weight_kg: Decimal,
    steps: tuple[Step, ...],
    max_per_dose: Decimal | None,
    max_per_day: Decimal | None,
) -> tuple[list[str], bool]:
    """Sentences on what exceeds the protocol's maximum for this weight, and whether anything does.
    The highest amount the order states anywhere counts here, even where the rest could not be read."""
    weight = notation.weight(weight_kg)
    top_dose = draft.top_per_dose_mg
    if top_dose is None:
        return ["The draft states no single dose in mg or mg/kg that can be read, so it was not compared."], False
    findings: list[str] = []
    if draft.per_dose_mg is None:
        findings.append("The draft states no single dose in mg or mg/kg that can be read, so it was not compared.")
    if draft.highest_per_dose_mg is not None and draft.highest_per_dose_mg != draft.per_dose_mg:
        findings.append(
            f"The most the draft states for one dose (in any dosage instruction or dose range) is "
            f"{notation.amount(draft.highest_per_dose_mg, 'mg')}."
        )
    dose = notation.amount(top_dose, "mg")
    above = False
    if max_per_dose is not None and top_dose > max_per_dose:
        above = True
        findings.append(
            f"{dose} per dose is above the most any step of this protocol gives per dose at {weight} "
            f"({notation.amount(max_per_dose, 'mg')})."
        )
    per_day = draft.top_per_day_mg
    if max_per_day is not None and per_day is not None and per_day > max_per_day:
        above = True
        findings.append(
            f"{notation.amount(per_day, 'mg/day')} is above the most any step of this protocol gives per day "
            f"at {weight} ({notation.amount(max_per_day, 'mg/day')})."
        )
    elif max_per_day is not None and top_dose > max_per_day:
        above = True
        findings.append(
            f"A single dose of {dose} is above the most any step of this protocol gives in a whole day "
            f"at {weight} ({notation.amount(max_per_day, 'mg/day')})."
        )
    findings.extend(stated_caps_exceeded(per_dose_mg=top_dose, per_day_mg=per_day, steps=steps))
    return findings, above


def _conflict_finding(draft: DraftDose, weight_kg: Decimal, max_per_dose: Decimal | None) -> tuple[str, bool]:
    """The sentence on an mg dose and an mg/kg dose that disagree, and whether the mg/kg dose at this
    weight is above the most any step gives per dose."""
    assert draft.per_dose_mg is not None and draft.mg_per_kg is not None
    weight = notation.weight(weight_kg)
    from_per_kg = draft.mg_per_kg * weight_kg
    above = max_per_dose is not None and from_per_kg > max_per_dose
    per_kg = notation.amount(draft.mg_per_kg, "mg/kg", notation.KG_QUANTUM)
    shown = notation.amount_beside(from_per_kg, draft.per_dose_mg, "mg")
    text = (
        f"The draft states {notation.amount(draft.per_dose_mg, 'mg')} and {per_kg} ({shown} at {weight}): "
        "they differ by more than 0.1 mg and no step of this protocol gives that pair, so which dose is meant "
        "is not guessed and the dose was not compared. Correct the order so that both state one dose."
    )
    if above:
        assert max_per_dose is not None
        text += (
            f" {shown} per dose would be above the most any step of this protocol gives per dose at {weight} "
            f"({notation.amount(max_per_dose, 'mg')})."
        )
    return text, above


def _not_read(draft: DraftDose) -> tuple[list[str], tuple[str, ...]]:
    """Sentences on what the draft states that was not read, and the short names of those parts."""
    findings, parts = [], []
    if draft.per_dose_mg is not None and draft.doses_per_day is None:
        findings.append(
            "The draft states no frequency that can be read: the frequency and the per-day amount were not checked."
        )
        parts.append("frequency")
    if draft.per_dose_mg is not None and draft.route is None:
        findings.append("The draft states no route that can be read (IV or subcut): the route was not checked.")
        parts.append("route")
    findings.extend(draft.unread)
    if draft.unread:
        parts.append("order")
    return findings, tuple(parts)


@dataclass(frozen=True, slots=True)
class Limits:
    """The most this protocol gives at a weight (None without a weight) and its stated caps."""

    max_per_dose_mg: Decimal | None
    max_per_day_mg: Decimal | None
    stated_per_dose_mg: Decimal | None
    stated_per_day_mg: Decimal | None


def protocol_limits(*, protocol: ProtocolData, weight_kg: Decimal | None) -> Limits:
    dose_cap, day_cap = stated_caps(protocol.steps)
    if weight_kg is None:
        return Limits(None, None, dose_cap, day_cap)
    steps = tuple(
        step_dose(step=step, weight_kg=weight_kg, concentration_mg_per_ml=protocol.concentration_mg_per_ml)
        for step in protocol.steps
    )
    return Limits(
        max_per_dose_mg=max((r.per_dose_mg.high for r in steps if r.per_dose_mg is not None), default=None),
        max_per_day_mg=max((_step_max_per_day(r) for r in steps), default=None),
        stated_per_dose_mg=dose_cap,
        stated_per_day_mg=day_cap,
    )


def order_check(*, protocol: ProtocolData, weight_kg: Decimal, draft: DraftDose) -> OrderCheck:
    """Compare a drafted order with every step of one protocol at this weight."""
    steps = tuple(
        step_dose(step=step, weight_kg=weight_kg, concentration_mg_per_ml=protocol.concentration_mg_per_ml)
        for step in protocol.steps
    )
    max_per_dose = max((r.per_dose_mg.high for r in steps if r.per_dose_mg is not None), default=None)
    max_per_day = max((_step_max_per_day(r) for r in steps), default=None)
    findings, above = _findings(draft, weight_kg, protocol.steps, max_per_dose, max_per_day)
    conflict = _dose_conflict(draft, weight_kg, steps)
    if conflict:
        sentence, per_kg_above = _conflict_finding(draft, weight_kg, max_per_dose)
        findings.insert(0, sentence)
        above_maximum = above or per_kg_above
    else:
        above_maximum = above
    unread_findings, not_read = _not_read(draft)
    findings.extend(unread_findings)
    matched = tuple(r for r in steps if _matches(r, draft, require_read=True)) if draft.fully_read else ()
    could_match = () if draft.fully_read else tuple(r for r in steps if _matches(r, draft, require_read=False))

    if above:
        verdict = Verdict.ABOVE_MAXIMUM  # the highest dose stated is too high, whatever else was read
    elif draft.per_dose_mg is None or conflict:
        verdict = Verdict.NOT_COMPARABLE
    elif matched:
        verdict = Verdict.MATCHES
    elif could_match:
        verdict = Verdict.UNCONFIRMED
        matched = could_match
    else:
        verdict = Verdict.DIFFERS
    # Said whatever else is found (an amount above the maximum too): the route is read and no step gives it.
    if draft.route is not None and steps and not any(draft.route in r.step.routes for r in steps):
        findings.append(f"No step of this protocol gives anakinra {notation.ROUTE_WORDS[draft.route]}.")
    # With doses that disagree, no point in a dose range is chosen from either of them.
    basis = replace(draft, per_dose_mg=None) if conflict else draft
    corrections = () if verdict == Verdict.MATCHES else _corrections(steps, basis)
    return OrderCheck(
        weight_kg=weight_kg,
        steps=steps,
        max_per_dose_mg=max_per_dose,
        max_per_day_mg=max_per_day,
        verdict=verdict,
        findings=tuple(findings),
        matched=matched if verdict in (Verdict.MATCHES, Verdict.UNCONFIRMED) else (),
        corrections=corrections,
        dose_conflict=conflict,
        above_maximum=above_maximum,
        not_read=not_read if verdict == Verdict.UNCONFIRMED else (),
    )
