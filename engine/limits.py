"""Every input limit, declared once (docs/api.md, request body; clinical.md section 4 for the weight).

The JSON API's request model (`engine.inputs`, and so the OpenAPI document), the bedside wizard's forms, the
pharmacists' test-patient form, the protocol tables' constraints and the CDS Hooks weight check all read these.
Changing a number here changes it everywhere: it is a change in clinical behaviour (CHANGELOG.md).

Pure: no Django, no pydantic, nothing but the engine's vocabulary, so every layer can import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from engine.vocabulary import Toxicity


@dataclass(frozen=True, slots=True)
class Limit:
    """A number from `low` to `high` inclusive.

    `unit` is named in error messages ("must be from 1 to 150 kg"); `decimals` is the most decimal places
    accepted (None: a whole number, or for the weight any number of places, quantized to the gram first);
    `max_digits` is the most digits in all a form's decimal box takes (Django's DecimalField), where one does.
    """

    low: int | Decimal
    high: int
    unit: str = ""
    decimals: int | None = None
    max_digits: int | None = None

    def contains(self, value: Decimal | int) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True, slots=True)
class Count:
    """A list of `low` to `high` items."""

    low: int
    high: int
    noun: str


# --- The patient (the API request, the bedside wizard's first step, a test patient) ------------------------

# Kilograms only. Any number of decimals in the API and the wizard: quantized to the gram
# (engine.weights.WEIGHT_QUANTUM_KG) before this check. A test patient's weight is stored to the gram.
WEIGHT_KG = Limit(1, 150, "kg")
WEIGHT_KG_STORED = Limit(1, 150, "kg", decimals=3, max_digits=6)
AGE_YEARS = Limit(0, 40, "years", decimals=2, max_digits=4)
PRIOR_TOCILIZUMAB_DOSES = Limit(0, 10)
DAYS_SINCE_INFUSION = Limit(0, 365)
CREATININE_CLEARANCE_ML_MIN = Limit(0, 300, "mL/min", decimals=1, max_digits=5)

# --- Toxicities ---------------------------------------------------------------------------------------------

# ASTCT grade (CRS, ICANS) or clinician-entered severity (carHLH). Also the grade band of a protocol's rules
# and steps (protocols.models).
TOXICITY_GRADE = Limit(1, 4)
# Each toxicity type at most once, so at most one item per type.
TOXICITIES = Count(1, len(Toxicity), "toxicities")

# --- Grading helpers on the wizard's second step (engine.grading) --------------------------------------------

ICE_SCORE = Limit(0, 10)
CAPD_TOTAL = Limit(0, 32)
OXYGEN_FLOW_L_MIN = Limit(Decimal("0.1"), 100, "L/min", decimals=1, max_digits=4)

# --- A protocol's rules (protocols.models, the seed data file) ----------------------------------------------

# The prior tocilizumab doses a rule may ask for, and from which dose a repeat-tocilizumab note applies.
RULE_TOCILIZUMAB_DOSES = Limit(0, 10)
RULE_REPEAT_TOCILIZUMAB_FROM_DOSES = Limit(1, 10)
