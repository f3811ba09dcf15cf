"""Body weight in kg, to the gram: the one conversion and the one quantization every way a weight comes in
shares (the JSON API, the bedside wizard, an EHR's Observation).

Conversions are exact (the avoirdupois pound is 0.45359237 kg by definition); the result is then taken to
the gram, half up, as the dose arithmetic uses it. Nothing here guesses a unit: callers name it.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext
from enum import StrEnum

from engine import notation

WEIGHT_QUANTUM_KG = notation.KG_QUANTUM  # one gram


class WeightUnit(StrEnum):
    KG = "kg"
    G = "g"
    LB = "lb"  # the international avoirdupois pound (UCUM [lb_av])


KG_PER_UNIT = {
    WeightUnit.KG: Decimal(1),
    WeightUnit.G: Decimal("0.001"),
    WeightUnit.LB: Decimal("0.45359237"),
}


def weight_to_gram(weight_kg: Decimal) -> Decimal:
    """A weight in kg taken to the gram (0.001 kg), half up: 20.0005 kg -> 20.001 kg."""
    return weight_kg.quantize(WEIGHT_QUANTUM_KG, rounding=ROUND_HALF_UP)


def weight_kg(value: Decimal, unit: WeightUnit) -> Decimal:
    """`value` in `unit` as kg, converted exactly and then taken to the gram: 44.092 lb -> 20 kg (20.000)."""
    factor = KG_PER_UNIT[unit]
    # Enough digits that the product is exact before the one rounding (to the gram).
    with localcontext() as context:
        context.prec = len(value.as_tuple().digits) + len(factor.as_tuple().digits) + 2
        exact = value * factor
    return weight_to_gram(exact)
