"""The words that explain a step's numbers: order line, arithmetic written out, cap and rounding notes.

Pure functions of an engine.data.StepResult, in safe clinical notation (engine.notation). The import goes
one way (this module reads engine.data; engine.data knows nothing of words). `step_words` builds a step's
words once, as a frozen StepWords, which the JSON (engine.present), the CDS Hooks cards and the pages use.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from engine import notation
from engine.data import BoundResult, CapEvent, Step, StepResult
from engine.vocabulary import Cap

AMOUNT_QUANTUM = notation.KG_QUANTUM  # amounts in the dose basis (mg/kg...) are shown to 0.001
SMALL_VOLUME_ML = Decimal("0.1")
TOLERANCE_WORDS = "rounding tolerance (this app's documented choice, set by pharmacists; not a literature figure)"


@dataclass(frozen=True, slots=True)
class Rounding:
    increment_mg: Decimal
    applied: bool
    note: str


@dataclass(frozen=True, slots=True)
class StepWords:
    """Every sentence about one step's numbers at one weight, built once by `step_words`."""

    order_text: str
    arithmetic: tuple[str, ...]
    cap_notes: tuple[str, ...]
    rounding: Rounding | None
    escalation_text: str
    volume_note: str
    # What a reader of the arithmetic has not yet been told: the rounding note, then each cap note,
    # where the arithmetic does not already say it (the CDS Hooks card lists them under the arithmetic).
    further_notes: tuple[str, ...]


def step_words(result: StepResult) -> StepWords:
    """The words of one step's result, each computed once."""
    lines = arithmetic(result)
    caps = cap_notes(result)
    rounded = rounding(result)
    further = []
    if rounded is not None and rounded.note and rounded.note not in lines:
        further.append(rounded.note)
    # A cap that lowered only the escalation ceiling is said there, never beside an amount it did not change.
    further.extend(note for note in caps if note not in lines)
    return StepWords(
        order_text=order_text(result),
        arithmetic=lines,
        cap_notes=caps,
        rounding=rounded,
        escalation_text=escalation_text(result),
        volume_note=volume_note(result),
        further_notes=tuple(further),
    )


@lru_cache(maxsize=512)
def _basis_amount(step: Step) -> str:
    return notation.amount_range(step.amount_low, step.amount_high, step.dose_basis.value, AMOUNT_QUANTUM)


def _cap_note(event: CapEvent, doses_per_day: int | None, ordered_dose: Decimal | None) -> str:
    if event.cap == Cap.MAX_SINGLE_DOSE:
        return (
            f"{notation.amount_beside(event.before, event.after, 'mg')} per dose is above the "
            f"{notation.amount(event.after, 'mg/dose')} maximum"
        )
    if doses_per_day is None:
        return (
            f"{notation.amount_beside(event.before, event.after, 'mg/day')} is above the "
            f"{notation.amount(event.after, 'mg/day')} maximum"
        )
    dose = event.before / doses_per_day
    lowered = ordered_dose if ordered_dose is not None else event.after / doses_per_day
    return (
        f"{doses_per_day} doses of {notation.amount(dose, 'mg')} "
        f"({notation.amount_beside(event.before, event.after, 'mg/day')}) is above the "
        f"{notation.amount(event.after, 'mg/day')} maximum; per dose lowered to {notation.amount(lowered, 'mg')}"
    )


def _rounding_note(bound: BoundResult, step: Step) -> str:
    decision = bound.rounding
    if decision is None:
        return ""
    increment = notation.amount(step.rounding_increment_mg, "mg")  # type: ignore[arg-type]
    dose = notation.amount(decision.dose_mg, "mg")
    if decision.change_percent is None:
        return f"{dose} not rounded: the nearest multiple of {increment} would be no dose at all"
    tolerance = notation.percent(step.rounding_tolerance_percent)  # type: ignore[arg-type]
    change = notation.percent_beside(decision.change_percent, step.rounding_tolerance_percent)  # type: ignore[arg-type]
    if decision.applied and decision.nearest_mg == decision.dose_mg:
        return f"{dose} is already a whole multiple of {increment}"
    # The tolerance is the app's documented choice, kept in the step's data for pharmacists to change
    # (clinical.md 1.1), not a figure from the letter or the label: the words say so.
    below = decision.nearest_mg - step.rounding_increment_mg  # type: ignore[operator]
    if below > 0 and (decision.nearest_mg - decision.dose_mg) * 2 == step.rounding_increment_mg:
        # Halfway between two multiples (stjude at 60 kg: 150 mg): neither is "the nearest", so say both and
        # which one was taken (a tie rounds half up; the spec names no tie rule).
        between = f"halfway between {notation.amount(below, 'mg')} and {notation.amount(decision.nearest_mg, 'mg')}"
        if decision.applied:
            return (
                f"{dose} rounded up to {notation.amount(decision.nearest_mg, 'mg')} ({between}, the two nearest "
                f"multiples of {increment}: a tie is rounded up; changes the dose by {change}, within the "
                f"{tolerance} {TOLERANCE_WORDS})"
            )
        return (
            f"{dose} not rounded: it is {between}, the two nearest multiples of {increment}, and either would "
            f"change the dose by {change}, more than the {tolerance} {TOLERANCE_WORDS}"
        )
    if decision.applied:
        return (
            f"{dose} rounded to {notation.amount(decision.nearest_mg, 'mg')} (nearest multiple of {increment}; "
            f"changes the dose by {change}, within the {tolerance} {TOLERANCE_WORDS})"
        )
    return (
        f"{dose} not rounded: the nearest multiple of {increment} ({notation.amount(decision.nearest_mg, 'mg')}) "
        f"would change the dose by {change}, more than the {tolerance} {TOLERANCE_WORDS}"
    )


def _bounds(result: StepResult) -> tuple[BoundResult, ...]:
    return (result.low,) if result.high is result.low else (result.low, result.high)


def escalation_text(result: StepResult) -> str:
    """The escalation ceiling at this weight, and the cap that lowered it if one did:
    "escalation ceiling 10 mg/kg/day = 510 mg/day, capped at 400 mg/day"."""
    step, ceiling = result.step, result.max_escalation_per_day_mg
    if step.escalation_ceiling_amount is None or step.escalation_ceiling_basis is None or ceiling is None:
        return ""
    uncapped = result.escalation_uncapped_mg if result.escalation_uncapped_mg is not None else ceiling
    stated = notation.amount(step.escalation_ceiling_amount, step.escalation_ceiling_basis.value, AMOUNT_QUANTUM)
    words = f"escalation ceiling {stated}"
    if step.escalation_ceiling_basis.per_kg:
        words += f" = {notation.amount(uncapped, 'mg/day')}"
    if result.max_escalation_capped_by:
        words += f", capped at {notation.amount(ceiling, 'mg/day')}"
    return words


def cap_notes(result: StepResult) -> tuple[str, ...]:
    notes = [_cap_note(e, result.doses_per_day, b.per_dose_mg) for b in _bounds(result) for e in b.cap_events]
    if result.max_escalation_capped_by:
        notes.append(escalation_text(result))
    return tuple(dict.fromkeys(notes))


def rounding(result: StepResult) -> Rounding | None:
    step = result.step
    if step.rounding_increment_mg is None:
        return None
    if result.doses_per_day is None:
        note = "no per-dose amount to round: the protocol states no interval"
    else:
        note = "; ".join(dict.fromkeys(n for n in (_rounding_note(b, step) for b in _bounds(result)) if n))
    applied = any(b.rounding is not None and b.rounding.applied for b in _bounds(result))
    return Rounding(increment_mg=step.rounding_increment_mg, applied=applied, note=note)


def arithmetic(result: StepResult) -> tuple[str, ...]:
    step, low, high, count = result.step, result.low, result.high, result.doses_per_day
    weight = notation.weight(result.weight_kg)
    basis = _basis_amount(step)
    lines: list[str] = []
    if step.dose_basis.per_dose:
        calc = notation.amount_range(low.calculated_per_dose_mg, high.calculated_per_dose_mg, "mg per dose")  # type: ignore[arg-type]
        lines.append(f"{basis} x {weight} = {calc}" if step.dose_basis.per_kg else f"{basis}: {calc}")
    else:
        calc_day = notation.amount_range(low.calculated_per_day_mg, high.calculated_per_day_mg, "mg/day")
        lines.append(f"{basis} x {weight} = {calc_day}" if step.dose_basis.per_kg else f"{basis}: {calc_day}")
        if count is not None:
            calc = notation.amount_range(low.calculated_per_dose_mg, high.calculated_per_dose_mg, "mg per dose")  # type: ignore[arg-type]
            interval = (
                notation.minimum_interval_text(step.interval_hours)  # type: ignore[arg-type]
                if step.interval_is_maximum
                else notation.interval_text(step.interval_hours)
            )
            lines.append(f"divided into {count} doses ({interval}) = {calc}")
    for bound in _bounds(result):
        note = _rounding_note(bound, step)
        if note and note not in lines:
            lines.append(note)
        for event in bound.cap_events:
            cap_line = _cap_note(event, count, bound.per_dose_mg)
            if cap_line not in lines:
                lines.append(cap_line)
    if count is not None:
        ordered = notation.amount_range(result.per_dose_mg.low, result.per_dose_mg.high, "mg")  # type: ignore[union-attr]
        per_day = notation.amount_range(result.per_day_mg.low, result.per_day_mg.high, "mg/day")
        doses = notation.doses_a_day_text(count)
        if step.interval_is_maximum:
            # A most-often interval caps how often, it is not a schedule: the day's amount is a most.
            interval = notation.minimum_interval_text(step.interval_hours)  # type: ignore[arg-type]
            lines.append(f"at most {doses} ({interval}) x {ordered} = at most {per_day}")
        else:
            lines.append(f"{doses} x {ordered} = {per_day}")
    elif low.cap_events or high.cap_events:
        lines.append(f"per day: {notation.amount_range(result.per_day_mg.low, result.per_day_mg.high, 'mg/day')}")
    return tuple(lines)


def order_text(result: StepResult) -> str:
    step = result.step
    route = notation.routes_text(step.routes)
    details = [_basis_amount(step)]
    if escalation := escalation_text(result):
        details.append(escalation.replace("escalation ceiling", "may escalate up to", 1))
    rounded = [
        b.rounding
        for b in _bounds(result)
        if b.rounding and b.rounding.applied and b.rounding.nearest_mg != b.rounding.dose_mg
    ]
    if rounded:
        increment = notation.amount(step.rounding_increment_mg, "mg")  # type: ignore[arg-type]
        if len(rounded) == 1 and result.high is result.low:
            details.append(f"rounded from {notation.amount(rounded[0].dose_mg, 'mg')} to a multiple of {increment}")
        else:
            details.append(f"rounded to multiples of {increment}")
    caps = []
    if step.max_single_dose_mg is not None:
        caps.append(notation.amount(step.max_single_dose_mg, "mg/dose"))
    if step.max_daily_dose_mg is not None:
        caps.append(notation.amount(step.max_daily_dose_mg, "mg/day"))
    if caps:
        details.append("max " + ", ".join(caps))
    if result.per_dose_mg is not None:
        frequency = notation.interval_text(step.interval_hours, is_maximum=step.interval_is_maximum)
        dose = notation.amount_range(result.per_dose_mg.low, result.per_dose_mg.high, "mg")
        return f"anakinra {dose} {route} {frequency} ({'; '.join(details)})"
    daily = notation.amount_range(result.per_day_mg.low, result.per_day_mg.high, "mg/day")
    return (
        f"anakinra {daily} {route} ({'; '.join(details)}); "
        "frequency not specified by this protocol - confirm with pharmacy"
    )


def volume_note(result: StepResult) -> str:
    """Said beside volumes too small to draw up as shown (two decimals of a mL)."""
    if result.volume_ml is None or result.volume_ml.low >= SMALL_VOLUME_ML:
        return ""
    return (
        f"Below {notation.amount(SMALL_VOLUME_ML, 'mL', notation.ML_QUANTUM)} at "
        f"{notation.amount(result.concentration_mg_per_ml, 'mg/mL')}, the volume is shown to 0.01 mL only: "
        "confirm with pharmacy how to measure it."
    )
