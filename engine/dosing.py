"""Dose arithmetic for one dosing step and one weight, in Decimal from end to end.

Order of operations (clinical.md section 1.1):
  1. amount x weight (or the flat amount) gives the calculated dose, or the per-day amount
     divided by the doses a day when the basis is per day and an interval is given;
  2. "nearest vial" rounding, only where it moves the dose by at most the step's tolerance;
  3. the per-dose cap, then the per-day cap (which lowers the per-dose amount); a cap is reported only where
     it changes the amount as shown (0.1 mg), so 100.002 mg capped to 100 mg is applied but not reported;
  4. quantize the ordered amount to 0.1 mg, never above a cap;
  5. per-day amount = ordered dose x doses a day, or the capped per-day amount without an interval.
Ranges are computed bound by bound and stay ranges. This module decides numbers only; the
words that explain them are in engine.text.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from engine.data import BoundResult, CapEvent, DoseRange, RoundingDecision, Step, StepResult
from engine.notation import MG_QUANTUM as MG
from engine.notation import ML_QUANTUM as ML
from engine.vocabulary import Cap, DoseBasis

HOURS_PER_DAY = 24
ONE = Decimal(1)
HUNDRED = Decimal(100)


def doses_per_day(interval_hours: int | None) -> int | None:
    if interval_hours is None:
        return None
    if interval_hours <= 0 or HOURS_PER_DAY % interval_hours:
        raise ValueError(f"interval of {interval_hours} h does not divide a day")
    return HOURS_PER_DAY // interval_hours


def _round_to_vial(dose: Decimal, increment: Decimal, tolerance: Decimal) -> RoundingDecision:
    nearest = (dose / increment).quantize(ONE, rounding=ROUND_HALF_UP) * increment
    if nearest <= 0:
        return RoundingDecision(dose_mg=dose, nearest_mg=nearest, change_percent=None, applied=False)
    change_percent = abs(nearest - dose) / dose * HUNDRED
    return RoundingDecision(
        dose_mg=dose, nearest_mg=nearest, change_percent=change_percent, applied=change_percent <= tolerance
    )


def _quantize_not_above(value: Decimal, limit: Decimal | None) -> Decimal:
    """0.1 mg, half up, unless that would step over a cap; then down."""
    quantized = value.quantize(MG, rounding=ROUND_HALF_UP)
    if limit is not None and quantized > limit:
        quantized = value.quantize(MG, rounding=ROUND_DOWN)
    return quantized


def _shows(value: Decimal) -> Decimal:
    """An amount as it is shown: 0.1 mg, half up (clinical.md: at most one decimal place in mg)."""
    return value.quantize(MG, rounding=ROUND_HALF_UP)


def _cap_shows(before: Decimal, capped: Decimal, limit: Decimal | None) -> bool:
    """Whether a cap changed the amount as shown: the uncapped amount at 0.1 mg (half up) against the capped
    one as ordered (0.1 mg, never above a cap). A cap that lowers 100.002 mg to 100 mg changes nothing a
    clinician sees, so it is applied but not reported (clinical review round 3)."""
    return _shows(before) > _quantize_not_above(capped, limit)


def _bound(amount: Decimal, step: Step, weight_kg: Decimal, per_day_count: int | None) -> BoundResult:
    base = amount * weight_kg if step.per_kg else amount
    max_single, max_daily = step.max_single_dose_mg, step.max_daily_dose_mg
    events: list[CapEvent] = []  # rarely more than empty

    if per_day_count is None:  # Per-day basis with no stated frequency: a per-day amount only.
        day = base
        if max_daily is not None and day > max_daily:
            if _cap_shows(day, max_daily, max_daily):
                events.append(CapEvent(Cap.MAX_DAILY_DOSE, _shows(day), max_daily))
            day = max_daily
        return BoundResult(
            calculated_per_dose_mg=None,
            calculated_per_day_mg=base,
            per_dose_mg=None,
            per_day_mg=_quantize_not_above(day, max_daily),
            cap_events=tuple(events),
            rounding=None,
            exact_per_day_mg=day,
        )

    if step.per_dose_basis:
        calculated_dose, calculated_day = base, base * per_day_count
    else:
        calculated_dose, calculated_day = base / per_day_count, base

    dose = calculated_dose
    rounding = None
    if step.rounding_increment_mg is not None and step.rounding_tolerance_percent is not None:
        rounding = _round_to_vial(dose, step.rounding_increment_mg, step.rounding_tolerance_percent)
        if rounding.applied:
            dose = rounding.nearest_mg

    # Caps are applied exactly, and reported (`before` as shown, 0.1 mg) only where they change the amount as
    # shown; the per-day cap's `before` is the shown dose times the doses a day, as the arithmetic reads.
    limit = max_single
    if max_single is not None and dose > max_single:
        if _cap_shows(dose, max_single, max_single):
            events.append(CapEvent(Cap.MAX_SINGLE_DOSE, _shows(dose), max_single))
        dose = max_single
    if max_daily is not None:
        daily_share = max_daily / per_day_count
        limit = daily_share if limit is None else min(limit, daily_share)
        if dose * per_day_count > max_daily:
            if _cap_shows(dose, daily_share, limit):
                events.append(CapEvent(Cap.MAX_DAILY_DOSE, _shows(dose) * per_day_count, max_daily))
            dose = daily_share

    per_dose = _quantize_not_above(dose, limit)
    return BoundResult(
        calculated_per_dose_mg=calculated_dose,
        calculated_per_day_mg=calculated_day,
        per_dose_mg=per_dose,
        per_day_mg=per_dose * per_day_count,
        cap_events=tuple(events),
        rounding=rounding,
        exact_per_day_mg=dose * per_day_count,
    )


def _escalation_ceiling(step: Step, weight_kg: Decimal) -> tuple[Decimal | None, Decimal | None]:
    """(the ceiling for this weight, the same after the per-day cap)."""
    if step.escalation_ceiling_amount is None or step.escalation_ceiling_basis is None:
        return None, None
    ceiling = step.escalation_ceiling_amount
    if step.escalation_ceiling_basis == DoseBasis.MG_PER_KG_PER_DAY:
        ceiling = ceiling * weight_kg
    if step.max_daily_dose_mg is not None and ceiling > step.max_daily_dose_mg:
        return ceiling, step.max_daily_dose_mg
    return ceiling, _quantize_not_above(ceiling, step.max_daily_dose_mg)


def _pair(low: Decimal, high: Decimal, single: bool, quantum: Decimal = MG) -> DoseRange:
    first = low.quantize(quantum, rounding=ROUND_HALF_UP)
    return DoseRange(first, first if single else high.quantize(quantum, rounding=ROUND_HALF_UP))


def step_dose(*, step: Step, weight_kg: Decimal, concentration_mg_per_ml: Decimal) -> StepResult:
    """Everything a clinician needs to order one step for one weight."""
    per_day_count = step.doses_per_day
    low = _bound(step.amount_low, step, weight_kg, per_day_count)
    high = low if step.amount_high == step.amount_low else _bound(step.amount_high, step, weight_kg, per_day_count)
    uncapped_ceiling, ceiling = _escalation_ceiling(step, weight_kg)
    # Every cap that changed an amount as shown is reported (clinical.md 1.1), each where it acted: `capped_by`
    # for a cap that changed the per-dose or per-day amount, `max_escalation_capped_by` for the per-day cap
    # lowering only the escalation ceiling (for chop from 40.005 kg: 400.05 mg/day shows as 400.1).
    capped_by: tuple[Cap, ...] = ()
    applied = {e.cap for e in (*low.cap_events, *high.cap_events)}
    if applied:
        capped_by = tuple(c for c in Cap if c in applied)
    ceiling_capped_by: tuple[Cap, ...] = ()
    if uncapped_ceiling is not None and ceiling is not None and _cap_shows(uncapped_ceiling, ceiling, ceiling):
        ceiling_capped_by = (Cap.MAX_DAILY_DOSE,)
    single = high is low
    per_dose = volume = calculated_dose = None
    if low.per_dose_mg is not None and high.per_dose_mg is not None:  # already quantized to 0.1 mg
        per_dose = DoseRange(low.per_dose_mg, high.per_dose_mg)
        volume = _pair(
            low.per_dose_mg / concentration_mg_per_ml, high.per_dose_mg / concentration_mg_per_ml, single, ML
        )
        calculated_dose = _pair(low.calculated_per_dose_mg, high.calculated_per_dose_mg, single)  # type: ignore[arg-type]
    return StepResult(
        step=step,
        weight_kg=weight_kg,
        doses_per_day=per_day_count,
        low=low,
        high=high,
        calculated_per_dose_mg=calculated_dose,
        per_dose_mg=per_dose,
        calculated_per_day_mg=_pair(low.calculated_per_day_mg, high.calculated_per_day_mg, single),
        per_day_mg=DoseRange(low.per_day_mg, high.per_day_mg),
        escalation_uncapped_mg=uncapped_ceiling,
        max_escalation_per_day_mg=ceiling,
        capped_by=capped_by,
        max_escalation_capped_by=ceiling_capped_by,
        volume_ml=volume,
        concentration_mg_per_ml=concentration_mg_per_ml,
    )
