"""Safe clinical notation: no trailing zeros, always a leading zero, a space before the unit."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from engine.vocabulary import Route

MG_QUANTUM = Decimal("0.1")
ML_QUANTUM = Decimal("0.01")

ROUTE_WORDS = {Route.IV: "IV", Route.SC: "subcut"}


@lru_cache(maxsize=8192)  # The same amounts recur across steps, centers and requests.
def plain_number(value: Decimal, quantum: Decimal = MG_QUANTUM) -> str:
    """`Decimal("40.0")` -> "40", `Decimal(".5")` -> "0.5"; never exponent notation."""
    quantized = value.quantize(quantum, rounding=ROUND_HALF_UP)
    text = format(quantized, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text == "-0":
        text = "0"
    return text


def amount(value: Decimal, unit: str, quantum: Decimal = MG_QUANTUM) -> str:
    return f"{plain_number(value, quantum)} {unit}"


def amount_range(low: Decimal, high: Decimal, unit: str, quantum: Decimal = MG_QUANTUM) -> str:
    """Ranges say "to" rather than a dash, which can be misread as a minus sign."""
    if plain_number(low, quantum) == plain_number(high, quantum):
        return amount(low, unit, quantum)
    return f"{plain_number(low, quantum)} to {plain_number(high, quantum)} {unit}"


def routes_text(routes: tuple[Route, ...]) -> str:
    return " or ".join(ROUTE_WORDS[r] for r in routes)


def interval_text(interval_hours: int | None, *, is_maximum: bool = False) -> str:
    if interval_hours is None:
        return ""
    words = "every 1 hour" if interval_hours == 1 else f"every {interval_hours} hours"
    return f"up to {words}" if is_maximum else words


def percent(value: Decimal) -> str:
    return f"{plain_number(value, MG_QUANTUM)}%"
