"""Dose arithmetic for one dosing step and one weight, in Decimal from end to end.

Order of operations (clinical.md section 1.1):
  1. amount x weight (or the flat amount) gives the calculated dose, or the per-day amount
     divided by the doses a day when the basis is per day and an interval is given;
  2. "nearest vial" rounding, only where it moves the dose by at most the step's tolerance;
  3. the per-dose cap, then the per-day cap (which lowers the per-dose amount);
  4. quantize the ordered amount to 0.1 mg, never above a cap;
  5. per-day amount = ordered dose x doses a day, or the capped per-day amount without an interval.
Ranges are computed bound by bound and stay ranges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from engine import notation
from engine.data import DoseRange, Rounding, Step, StepResult
from engine.vocabulary import Cap, DoseBasis

HOURS_PER_DAY = 24
MG = notation.MG_QUANTUM
ML = notation.ML_QUANTUM


def doses_per_day(interval_hours: int | None) -> int | None:
    if interval_hours is None:
        return None
    if interval_hours <= 0 or HOURS_PER_DAY % interval_hours:
        raise ValueError(f"interval of {interval_hours} h does not divide a day")
    return HOURS_PER_DAY // interval_hours


@dataclass(slots=True)
class _Bound:
    """One bound (low or high) of a step, before presentation."""

    calculated_per_dose: Decimal | None
    calculated_per_day: Decimal
    per_dose: Decimal | None
    per_day: Decimal
    caps: list[Cap] = field(default_factory=list)
    cap_notes: list[str] = field(default_factory=list)
    rounded_to: Decimal | None = None
    rounding_note: str = ""


def _round_to_vial(dose: Decimal, step: Step) -> tuple[Decimal | None, str]:
    """The nearest whole multiple of the increment, if within tolerance; else None and why not."""
    increment = step.rounding_increment_mg
    tolerance = step.rounding_tolerance_percent
    assert increment is not None and tolerance is not None
    nearest = (dose / increment).quantize(Decimal(1), rounding=ROUND_HALF_UP) * increment
    if nearest <= 0:
        return None, (
            f"{notation.amount(dose, 'mg')} not rounded: the nearest multiple of "
            f"{notation.amount(increment, 'mg')} would be no dose at all"
        )
    change_percent = abs(nearest - dose) / dose * 100
    if change_percent <= tolerance:
        if nearest == dose:
            return (
                nearest,
                f"{notation.amount(dose, 'mg')} is already a whole multiple of {notation.amount(increment, 'mg')}",
            )
        return nearest, (
            f"{notation.amount(dose, 'mg')} rounded to {notation.amount(nearest, 'mg')} "
            f"(nearest multiple of {notation.amount(increment, 'mg')}; changes the dose by "
            f"{notation.percent(change_percent)}, within {notation.percent(tolerance)})"
        )
    return None, (
        f"{notation.amount(dose, 'mg')} not rounded: the nearest multiple of {notation.amount(increment, 'mg')} "
        f"({notation.amount(nearest, 'mg')}) would change the dose by {notation.percent(change_percent)}, "
        f"more than {notation.percent(tolerance)}"
    )


def _quantize_not_above(value: Decimal, limit: Decimal | None) -> Decimal:
    """0.1 mg, half up, unless that would step over a cap; then down."""
    quantized = value.quantize(MG, rounding=ROUND_HALF_UP)
    if limit is not None and quantized > limit:
        quantized = value.quantize(MG, rounding=ROUND_DOWN)
    return quantized


def _bound(amount: Decimal, step: Step, weight_kg: Decimal) -> _Bound:
    per_day_count = doses_per_day(step.interval_hours)
    base = amount * weight_kg if step.dose_basis.per_kg else amount

    if step.dose_basis.per_dose:
        assert per_day_count is not None, "a per-dose basis needs an interval"
        calculated_dose: Decimal | None = base
        calculated_day = base * per_day_count
    else:
        calculated_day = base
        calculated_dose = base / per_day_count if per_day_count else None

    if calculated_dose is None:
        day = calculated_day
        result = _Bound(calculated_per_dose=None, calculated_per_day=calculated_day, per_dose=None, per_day=day)
        if step.max_daily_dose_mg is not None and day > step.max_daily_dose_mg:
            day = step.max_daily_dose_mg
            result.caps.append(Cap.MAX_DAILY_DOSE)
            result.cap_notes.append(
                f"{notation.amount(calculated_day, 'mg/day')} is above the "
                f"{notation.amount(step.max_daily_dose_mg, 'mg/day')} maximum"
            )
        result.per_day = _quantize_not_above(day, step.max_daily_dose_mg)
        return result

    assert per_day_count is not None
    result = _Bound(
        calculated_per_dose=calculated_dose, calculated_per_day=calculated_day, per_dose=None, per_day=calculated_day
    )
    dose = calculated_dose
    if step.rounding_increment_mg is not None:
        rounded, result.rounding_note = _round_to_vial(dose, step)
        if rounded is not None:
            result.rounded_to = rounded
            dose = rounded

    limit: Decimal | None = None
    if step.max_single_dose_mg is not None:
        limit = step.max_single_dose_mg
        if dose > step.max_single_dose_mg:
            result.caps.append(Cap.MAX_SINGLE_DOSE)
            result.cap_notes.append(
                f"{notation.amount(dose, 'mg')} per dose is above the "
                f"{notation.amount(step.max_single_dose_mg, 'mg/dose')} maximum"
            )
            dose = step.max_single_dose_mg
    if step.max_daily_dose_mg is not None:
        daily_share = step.max_daily_dose_mg / per_day_count
        limit = daily_share if limit is None else min(limit, daily_share)
        if dose * per_day_count > step.max_daily_dose_mg:
            result.caps.append(Cap.MAX_DAILY_DOSE)
            result.cap_notes.append(
                f"{per_day_count} doses of {notation.amount(dose, 'mg')} "
                f"({notation.amount(dose * per_day_count, 'mg/day')}) is above the "
                f"{notation.amount(step.max_daily_dose_mg, 'mg/day')} maximum; "
                f"per dose lowered to {notation.amount(daily_share, 'mg')}"
            )
            dose = daily_share

    result.per_dose = _quantize_not_above(dose, limit)
    result.per_day = result.per_dose * per_day_count
    return result


def _escalation_ceiling(step: Step, weight_kg: Decimal) -> tuple[Decimal | None, list[str]]:
    if step.escalation_ceiling_amount is None or step.escalation_ceiling_basis is None:
        return None, []
    ceiling = step.escalation_ceiling_amount
    if step.escalation_ceiling_basis == DoseBasis.MG_PER_KG_PER_DAY:
        ceiling = ceiling * weight_kg
    if step.max_daily_dose_mg is not None and ceiling > step.max_daily_dose_mg:
        note = (
            f"escalation ceiling {notation.amount(ceiling, 'mg/day')} is above the "
            f"{notation.amount(step.max_daily_dose_mg, 'mg/day')} maximum: escalate up to "
            f"{notation.amount(step.max_daily_dose_mg, 'mg/day')}"
        )
        return step.max_daily_dose_mg, [note]
    return _quantize_not_above(ceiling, step.max_daily_dose_mg), []


def _range(low: Decimal | None, high: Decimal | None, quantum: Decimal = MG) -> DoseRange | None:
    if low is None or high is None:
        return None
    return DoseRange(low.quantize(quantum, rounding=ROUND_HALF_UP), high.quantize(quantum, rounding=ROUND_HALF_UP))


def _basis_amount(step: Step) -> str:
    return notation.amount_range(step.amount_low, step.amount_high, step.dose_basis.value, Decimal("0.001"))


def _arithmetic(step: Step, weight_kg: Decimal, low: _Bound, high: _Bound) -> list[str]:
    lines: list[str] = []
    per_day_count = doses_per_day(step.interval_hours)
    weight = notation.amount(weight_kg, "kg", Decimal("0.001"))
    basis = _basis_amount(step)
    if step.dose_basis.per_dose:
        calc = notation.amount_range(low.calculated_per_dose, high.calculated_per_dose, "mg per dose")
        lines.append(f"{basis} x {weight} = {calc}" if step.dose_basis.per_kg else f"{basis}: {calc}")
    else:
        calc_day = notation.amount_range(low.calculated_per_day, high.calculated_per_day, "mg/day")
        lines.append(f"{basis} x {weight} = {calc_day}" if step.dose_basis.per_kg else f"{basis}: {calc_day}")
        if per_day_count is not None:
            calc = notation.amount_range(low.calculated_per_dose, high.calculated_per_dose, "mg per dose")
            lines.append(f"divided into {per_day_count} doses ({notation.interval_text(step.interval_hours)}) = {calc}")
    for bound in (low, high) if low is not high else (low,):
        if bound.rounding_note and (bound is low or bound.rounding_note != low.rounding_note):
            lines.append(bound.rounding_note)
        for note in bound.cap_notes:
            if note not in lines:
                lines.append(note)
    if per_day_count is not None:
        ordered = notation.amount_range(low.per_dose, high.per_dose, "mg")
        per_day = notation.amount_range(low.per_day, high.per_day, "mg/day")
        lines.append(f"{per_day_count} doses a day x {ordered} = {per_day}")
    elif low.caps or high.caps:
        lines.append(f"per day: {notation.amount_range(low.per_day, high.per_day, 'mg/day')}")
    return lines


def _order_text(
    step: Step, per_dose: DoseRange | None, per_day: DoseRange, ceiling: Decimal | None, ceiling_capped: bool
) -> str:
    route = notation.routes_text(step.routes)
    details = [_basis_amount(step)]
    if step.escalation_ceiling_amount is not None and ceiling is not None:
        assert step.escalation_ceiling_basis is not None
        stated = notation.amount(step.escalation_ceiling_amount, step.escalation_ceiling_basis.value, Decimal("0.001"))
        joiner = "but at most" if ceiling_capped else "="
        details.append(f"may escalate up to {stated} {joiner} {notation.amount(ceiling, 'mg/day')}")
    caps = []
    if step.max_single_dose_mg is not None:
        caps.append(notation.amount(step.max_single_dose_mg, "mg/dose"))
    if step.max_daily_dose_mg is not None:
        caps.append(notation.amount(step.max_daily_dose_mg, "mg/day"))
    if caps:
        details.append("max " + ", ".join(caps))
    if per_dose is not None:
        frequency = notation.interval_text(step.interval_hours, is_maximum=step.interval_is_maximum)
        dose = notation.amount_range(per_dose.low, per_dose.high, "mg")
        return f"anakinra {dose} {route} {frequency} ({'; '.join(details)})"
    daily = notation.amount_range(per_day.low, per_day.high, "mg/day")
    return (
        f"anakinra {daily} {route} ({'; '.join(details)}); "
        "frequency not specified by this protocol - confirm with pharmacy"
    )


def step_dose(*, step: Step, weight_kg: Decimal, concentration_mg_per_ml: Decimal) -> StepResult:
    """Everything a clinician needs to order one step for one weight."""
    low = _bound(step.amount_low, step, weight_kg)
    high = low if step.amount_high == step.amount_low else _bound(step.amount_high, step, weight_kg)
    ceiling, ceiling_notes = _escalation_ceiling(step, weight_kg)

    # capped_by describes the ordered amounts; a capped escalation ceiling is explained in cap_notes.
    caps = [c for c in Cap if c in low.caps or c in high.caps]
    cap_notes = list(dict.fromkeys([*low.cap_notes, *high.cap_notes, *ceiling_notes]))

    rounding = None
    if step.rounding_increment_mg is not None:
        applied = low.rounded_to is not None or high.rounded_to is not None
        if low.per_dose is None:
            note = "no per-dose amount to round: the protocol states no interval"
        else:
            note = "; ".join(dict.fromkeys(n for n in (low.rounding_note, high.rounding_note) if n))
        rounding = Rounding(increment_mg=step.rounding_increment_mg, applied=applied, note=note)

    per_dose = _range(low.per_dose, high.per_dose)
    per_day = DoseRange(low.per_day, high.per_day)
    return StepResult(
        step=step,
        calculated_per_dose_mg=_range(low.calculated_per_dose, high.calculated_per_dose),
        per_dose_mg=per_dose,
        calculated_per_day_mg=_range(low.calculated_per_day, high.calculated_per_day),  # type: ignore[arg-type]
        per_day_mg=per_day,
        max_escalation_per_day_mg=ceiling,
        capped_by=tuple(caps),
        cap_notes=tuple(cap_notes),
        rounding=rounding,
        volume_ml=volume_ml(per_dose_mg=per_dose, concentration_mg_per_ml=concentration_mg_per_ml),
        arithmetic=tuple(_arithmetic(step, weight_kg, low, high)),
        order_text=_order_text(step, per_dose, per_day, ceiling, bool(ceiling_notes)),
    )


def volume_ml(*, per_dose_mg: DoseRange | None, concentration_mg_per_ml: Decimal) -> DoseRange | None:
    if per_dose_mg is None:
        return None
    return DoseRange(
        (per_dose_mg.low / concentration_mg_per_ml).quantize(ML, rounding=ROUND_HALF_UP),
        (per_dose_mg.high / concentration_mg_per_ml).quantize(ML, rounding=ROUND_HALF_UP),
    )
