"""engine.weights: exact conversion to kg, then one quantization to the gram (half up)."""

from decimal import Decimal

import pytest

from engine.weights import WeightUnit, weight_kg, weight_to_gram

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("weight", "expected"),
    [
        (Decimal("20"), Decimal("20.000")),
        (Decimal("20.0005"), Decimal("20.001")),
        (Decimal("20.00049"), Decimal("20.000")),
        (Decimal("19.9995"), Decimal("20.000")),
    ],
)
def test_weight_to_gram_rounds_half_up(weight, expected):
    rounded = weight_to_gram(weight)

    assert (rounded, rounded.as_tuple().exponent) == (expected, -3)


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (Decimal("44.092"), WeightUnit.LB, Decimal("20.000")),  # 19.99979477804 kg
        (Decimal("44"), WeightUnit.LB, Decimal("19.958")),  # 19.95806428 kg
        (Decimal("1"), WeightUnit.LB, Decimal("0.454")),  # 0.45359237 kg
        (Decimal("20000"), WeightUnit.G, Decimal("20.000")),
        (Decimal("20000.5"), WeightUnit.G, Decimal("20.001")),  # 20.0005 kg, half up
        (Decimal("12.3456"), WeightUnit.KG, Decimal("12.346")),
    ],
)
def test_weight_kg_converts_exactly_then_quantizes_once(value, unit, expected):
    assert weight_kg(value, unit) == expected


def test_weight_kg_is_exact_beyond_the_default_decimal_precision():
    # 20000.4999... g is 20.0004999... kg: below half a gram. At Decimal's default 28 digits the product
    # would first round to 20.0005 and then up to 20.001; the one rounding is at the gram.
    assert weight_kg(Decimal("20000.4999999999999999999999999999"), WeightUnit.G) == Decimal("20.000")
