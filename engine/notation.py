"""Safe clinical notation: no trailing zeros, always a leading zero, a space before the unit."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from engine.vocabulary import Route

MG_QUANTUM = Decimal("0.1")
ML_QUANTUM = Decimal("0.01")
KG_QUANTUM = Decimal("0.001")  # weights to the gram; amounts per kg to 0.001
PRECISIONS = (Decimal("0.1"), Decimal("0.01"), Decimal("0.001"))

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


def weight(value: Decimal) -> str:
    return amount(value, "kg", KG_QUANTUM)


def plain_decimal(value: Decimal) -> Decimal:
    """The same number without trailing zeros or an exponent: Decimal("10.000") -> Decimal("10")."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def _distinct_quantum(value: Decimal, other: Decimal) -> Decimal:
    """The coarsest precision (0.1, 0.01, 0.001) at which two different numbers print differently,
    so that "100.04 mg is above the 100 mg maximum" never reads "100 mg is above 100 mg"."""
    for quantum in PRECISIONS:
        if value == other or plain_number(value, quantum) != plain_number(other, quantum):
            return quantum
    return PRECISIONS[-1]


def amount_beside(value: Decimal, other: Decimal, unit: str) -> str:
    """`value` with its unit, precise enough to be told apart from `other`."""
    return amount(value, unit, _distinct_quantum(value, other))


def percent_beside(value: Decimal, other: Decimal) -> str:
    return f"{plain_number(value, _distinct_quantum(value, other))}%"


def amount_range(low: Decimal, high: Decimal, unit: str, quantum: Decimal = MG_QUANTUM) -> str:
    """Ranges say "to" rather than a dash, which can be misread as a minus sign."""
    if plain_number(low, quantum) == plain_number(high, quantum):
        return amount(low, unit, quantum)
    return f"{plain_number(low, quantum)} to {plain_number(high, quantum)} {unit}"


def routes_text(routes: tuple[Route, ...]) -> str:
    return " or ".join(ROUTE_WORDS[r] for r in routes)


def doses_a_day_text(count: int) -> str:
    return "1 dose a day" if count == 1 else f"{count} doses a day"


def _every(interval_hours: int) -> str:
    return "every 1 hour" if interval_hours == 1 else f"every {interval_hours} hours"


def minimum_interval_text(interval_hours: int) -> str:
    """A most-often interval on its own: "no more often than every 6 hours"."""
    return f"no more often than {_every(interval_hours)}"


def interval_text(interval_hours: int | None, *, is_maximum: bool = False) -> str:
    """A schedule ("every 6 hours"), or a most-often interval said so that it cannot be read as a
    schedule or as "whenever needed": "no more often than every 6 hours, at most 4 doses a day"."""
    if interval_hours is None:
        return ""
    if not is_maximum:
        return _every(interval_hours)
    text = minimum_interval_text(interval_hours)
    if interval_hours > 0 and 24 % interval_hours == 0:
        text += f", at most {doses_a_day_text(24 // interval_hours)}"
    return text


def percent(value: Decimal) -> str:
    return f"{plain_number(value, MG_QUANTUM)}%"
