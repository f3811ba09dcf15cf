"""A published regimen from the literature (a center's own trial, the letter's Table 2) worked out for one
weight: shown beside that center's protocol for discussion with pharmacy, never as an order.

The arithmetic is a protocol step's (engine.dosing.step_dose, engine.text.arithmetic), with none of a
protocol's caps or rounding: the study reports none.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from engine import text
from engine.data import DoseRange, Step
from engine.dosing import step_dose
from engine.vocabulary import DoseBasis, Route, StepKind

# step_dose also works out a volume, which a literature regimen never shows: any concentration serves.
_VOLUME_NOT_SHOWN_MG_PER_ML = Decimal(1)


@dataclass(frozen=True, slots=True)
class LiteratureRegimen:
    dose_basis: DoseBasis
    amount_low: Decimal
    amount_high: Decimal
    interval_hours: int
    routes: tuple[Route, ...]


@dataclass(frozen=True, slots=True)
class LiteratureAmounts:
    per_dose_mg: DoseRange
    per_day_mg: DoseRange
    doses_per_day: int
    arithmetic: tuple[str, ...]


def literature_amounts(*, regimen: LiteratureRegimen, weight_kg: Decimal) -> LiteratureAmounts:
    """Per dose and per day for this weight, with the arithmetic written out."""
    step = Step(
        kind=StepKind.INITIAL,
        name="literature regimen",
        toxicities=frozenset(),
        dose_basis=regimen.dose_basis,
        amount_low=regimen.amount_low,
        amount_high=regimen.amount_high,
        routes=regimen.routes,
        interval_hours=regimen.interval_hours,
    )
    result = step_dose(step=step, weight_kg=weight_kg, concentration_mg_per_ml=_VOLUME_NOT_SHOWN_MG_PER_ML)
    assert result.per_dose_mg is not None and result.doses_per_day is not None  # an interval is required
    return LiteratureAmounts(
        per_dose_mg=result.per_dose_mg,
        per_day_mg=result.per_day_mg,
        doses_per_day=result.doses_per_day,
        arithmetic=text.arithmetic(result),
    )
