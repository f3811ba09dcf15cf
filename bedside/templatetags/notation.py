"""Safe clinical notation in templates: no trailing zeros, a leading zero, a space before the unit,
"subcut" for SC. Built on engine.notation; amounts are Decimals (or ints), never floats."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template

from bedside import presentation
from bedside.presentation import as_decimal
from engine import notation as engine_notation
from engine.vocabulary import Route

register = template.Library()

# Weights keep their grams; volumes two decimals; everything else 0.1 (mg).
QUANTA = {"kg": Decimal("0.001"), "mL": engine_notation.ML_QUANTUM, "years": Decimal("0.01")}
PER_KG_QUANTUM = Decimal("0.001")


def _quantum(unit: str) -> Decimal:
    if unit.startswith("mg/kg"):
        return PER_KG_QUANTUM  # a protocol's stated amount, e.g. 2.25 mg/kg/dose, is shown as stated
    return QUANTA.get(unit, engine_notation.MG_QUANTUM)


@register.filter
def amount(value: Any, unit: str = "mg") -> str:
    """`40|amount:"mg"` -> "40 mg"; an empty value stays empty."""
    if value is None or value == "":
        return ""
    return engine_notation.amount(as_decimal(value), unit, _quantum(unit))


@register.filter
def dose_range(value: dict[str, Any] | None, unit: str = "mg") -> str:
    """`{"low": 8, "high": 10}|dose_range:"mg/day"` -> "8 to 10 mg/day"."""
    if not value:
        return ""
    return engine_notation.amount_range(as_decimal(value["low"]), as_decimal(value["high"]), unit, _quantum(unit))


@register.filter
def routes_words(routes: list[str]) -> str:
    return engine_notation.routes_text(tuple(Route(r) for r in routes))


@register.filter
def interval_words(step: dict[str, Any]) -> str:
    text = engine_notation.interval_text(step.get("interval_hours"), is_maximum=step.get("interval_is_maximum", False))
    return text or "not specified by this protocol - confirm with pharmacy"


@register.filter
def differs(first: dict[str, Any] | None, second: dict[str, Any] | None) -> bool:
    """True when two stored ranges differ (the calculated and the ordered amount, say)."""
    if not first or not second:
        return False
    return (as_decimal(first["low"]), as_decimal(first["high"])) != (
        as_decimal(second["low"]),
        as_decimal(second["high"]),
    )


@register.filter
def plain_amount(value: Any) -> str:
    """A stored number without a unit: `Decimal("2.50")` -> "2.5"."""
    if value is None or value == "":
        return ""
    return engine_notation.plain_number(as_decimal(value), Decimal("0.001"))


@register.filter
def reference_text(ref: Any) -> str:
    """An evidence.Reference as one citation line, with no empty-field separators."""
    return presentation.reference_text(ref)


@register.filter
def volume_words(step: dict[str, Any]) -> str:
    """A step's volume per dose with the concentration it assumes, so neither is ever read alone:
    "0.27 mL at 150 mg/mL". Empty when there is no volume."""
    if not step.get("volume_ml"):
        return ""
    volume = dose_range(step["volume_ml"], "mL")
    concentration = step.get("concentration_mg_per_ml")
    if concentration is None:
        return f"{volume} (concentration not recorded: confirm with pharmacy)"
    return f"{volume} at {amount(concentration, 'mg/mL')}"
