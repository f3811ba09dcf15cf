"""What a draft changes in the amounts a protocol gives, checked two ways before a pharmacist signs it.

Plausibility: each changed amount, as a per-day amount (a per-dose amount times the doses a day its
interval gives), against the most the letter reports - per kg for mg/kg bases, per day for flat mg bases
(the thresholds are data, passed in). A mistyped unit (mg/kg for mg) lands far above them.

Coverage: for each changed amount, which test patients' answers change because of it - found by putting
back that one amount as it was and running every test patient on both. An amount no test patient
exercises is named, so the author adds a patient or says why not.

Pure: engine data in, plain results out (no Django). Steps are paired by name, as in the diff.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from engine import notation
from engine.data import ProtocolData, Recommendation, Step
from protocols.patient_checks import PatientExpectation, expectation_check

PER_KG_DAY = "mg/kg/day"
MG_DAY = "mg/day"


@dataclass(frozen=True, slots=True)
class PlausibilityThresholds:
    """The most the letter reports, with where it says so."""

    mg_per_kg_per_day: Decimal | None  # None: no comparison amounts stated anywhere, nothing is flagged
    mg_per_day: Decimal | None
    citation: str


@dataclass(frozen=True, slots=True)
class ChangedAmount:
    step_name: str
    field: str  # the DosingStep field: amount_low, amount_high, max_single_dose_mg, ...
    label: str
    old: str  # as the pharmacist reads it, e.g. "2 mg/kg/dose every 6 h"; "not stated" when absent
    new: str
    per_day: Decimal | None  # the new amount as a most-per-day, in `per_day_unit`; None when absent
    per_day_unit: str
    threshold: Decimal | None
    citation: str  # where the threshold comes from
    key: str  # the new amount with everything that gives it its meaning: a confirmation holds for this only
    # How `per_day` follows from a per-dose amount: the amount (in `per_dose_unit`) times the doses a day its
    # interval gives, then held to the step's per-day cap. `doses_per_day` None: not multiplied (a per-day
    # amount, or a per-dose amount with no interval, counted as one dose a day).
    per_dose: Decimal | None = None
    per_dose_unit: str = ""
    doses_per_day: int | None = None
    at_most: bool = False  # "up to every N h": at most that many doses a day
    uncapped_per_day: Decimal | None = None

    @property
    def above(self) -> bool:
        return self.per_day is not None and self.threshold is not None and self.per_day > self.threshold

    @property
    def per_day_text(self) -> str:
        return "" if self.per_day is None else notation.amount(self.per_day, self.per_day_unit, Decimal("0.001"))

    @property
    def per_day_arithmetic(self) -> str:
        """How the most per day is reached, in numbers that agree: "4 doses a day x 1000 mg = 4000 mg/day, held
        to 3000 mg/day by the maximum per day"; a per-day amount is just itself."""
        if self.per_day is None:
            return ""
        if self.per_dose is None:
            return self.per_day_text
        unit = self.per_day_unit
        if self.doses_per_day is None:
            return f"counted as 1 dose a day (no interval stated) = {self.per_day_text}"
        doses = f"{'at most ' if self.at_most else ''}{self.doses_per_day} dose{'s' if self.doses_per_day != 1 else ''}"
        text = f"{doses} a day x {_number(self.per_dose)} {self.per_dose_unit} = "
        uncapped = self.uncapped_per_day if self.uncapped_per_day is not None else self.per_day
        text += notation.amount(uncapped, unit, Decimal("0.001"))
        if uncapped != self.per_day:
            text += f", held to {self.per_day_text} by the maximum per day"
        return text

    @property
    def per_day_working(self) -> str:
        """The new amount and its most per day: "1000 mg/dose every 6 h is 4 doses a day x 1000 mg = 4000 mg/day,
        held to 3000 mg/day by the maximum per day"; a per-day amount reads as itself ("4000 mg/day")."""
        arithmetic = self.per_day_arithmetic
        if not arithmetic or arithmetic == self.new:
            return self.new
        return f"{self.new} is {arithmetic}"

    @property
    def threshold_text(self) -> str:
        return "" if self.threshold is None else notation.amount(self.threshold, self.per_day_unit, Decimal("0.001"))


@dataclass(frozen=True, slots=True)
class AmountCoverage:
    amount: ChangedAmount
    test_patient_labels: tuple[str, ...]  # whose answers change because of this amount

    @property
    def covered(self) -> bool:
        return bool(self.test_patient_labels)


# The step fields that set how much is given. The interval is not an amount, but it multiplies one: it is
# checked for coverage (never for plausibility: it has no per-day amount of its own).
AMOUNT_LABELS = {
    "amount_low": "amount, low",
    "amount_high": "amount, high",
    "interval_hours": "interval",
    "max_single_dose_mg": "maximum per dose",
    "max_daily_dose_mg": "maximum per day",
    "escalation_ceiling_amount": "escalation ceiling",
}


def _number(value: Decimal) -> str:
    return notation.plain_number(value, Decimal("0.001"))


def _every(step: Step) -> str:
    if step.interval_hours is None:
        return ""
    return f" {'up to ' if step.interval_is_maximum else ''}every {step.interval_hours} h"


@dataclass(frozen=True, slots=True)
class _Meaning:
    value: Decimal | None
    text: str  # as read
    per_day: Decimal | None
    unit: str  # of per_day
    signature: tuple
    per_dose: Decimal | None = None  # the per-dose amount multiplied (None: a per-day amount)
    per_dose_unit: str = ""
    uncapped_per_day: Decimal | None = None


def _amount_meaning(step: Step, field: str) -> _Meaning:
    """One amount of a step: as read, as a most per day (Decimal), and what gives it its meaning."""
    value: Decimal | None = getattr(step, field)
    doses = step.doses_per_day
    if field in ("amount_low", "amount_high"):
        basis = step.dose_basis
        unit = PER_KG_DAY if basis.per_kg else MG_DAY
        text = f"{_number(value)} {basis.value}{_every(step)}"
        signature = (value, basis, doses)
        if not basis.per_dose:
            return _Meaning(value, text, value, unit, signature)
        per_day = value * doses if doses else value
        per_dose_unit = "mg/kg" if basis.per_kg else "mg"
        return _Meaning(value, text, per_day, unit, signature, value, per_dose_unit, per_day)
    if field == "interval_hours":
        text = _every(step).strip() or "not stated (per-day amounts only)"
        return _Meaning(value, text, None, MG_DAY, (value, step.interval_is_maximum))
    if field == "max_single_dose_mg":
        if value is None:
            return _Meaning(None, "not stated", None, MG_DAY, (None,))
        uncapped = value * doses if doses else value
        per_day = uncapped
        if step.max_daily_dose_mg is not None:
            per_day = min(per_day, step.max_daily_dose_mg)  # the per-day cap still applies after it
        text = f"{_number(value)} mg/dose{_every(step)}"
        return _Meaning(value, text, per_day, MG_DAY, (value, doses), value, "mg", uncapped)
    if field == "max_daily_dose_mg":
        if value is None:
            return _Meaning(None, "not stated", None, MG_DAY, (None,))
        return _Meaning(value, f"{_number(value)} mg/day", value, MG_DAY, (value,))
    # escalation_ceiling_amount: always a per-day basis
    basis = step.escalation_ceiling_basis
    if value is None or basis is None:
        return _Meaning(None, "not stated", None, MG_DAY, (None,))
    unit = PER_KG_DAY if basis.per_kg else MG_DAY
    return _Meaning(value, f"{_number(value)} {basis.value}", value, unit, (value, basis))


def _key_part(value: object) -> str:
    # Numbers by value: 20 typed in a form and 20.000 read back from the database are one amount.
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return "" if value is None else str(value)


def _threshold(unit: str, thresholds: PlausibilityThresholds) -> Decimal | None:
    return thresholds.mg_per_kg_per_day if unit == PER_KG_DAY else thresholds.mg_per_day


def step_changed_amounts(*, old: Step | None, new: Step, thresholds: PlausibilityThresholds) -> list[ChangedAmount]:
    """The amounts of `new` that differ from `old` (the same-named step of the version it was copied from;
    None for a new step, whose every amount is new)."""
    changed = []
    for field, label in AMOUNT_LABELS.items():
        meaning = _amount_meaning(new, field)
        old_text = "not stated (new step)"
        if old is not None:
            old_meaning = _amount_meaning(old, field)
            old_text = old_meaning.text
            if old_meaning.signature == meaning.signature:
                continue
        elif meaning.value is None:
            continue
        multiplied = meaning.per_dose is not None and meaning.per_day is not None
        changed.append(
            ChangedAmount(
                step_name=new.name,
                field=field,
                label=label,
                old=old_text,
                new=meaning.text,
                per_day=meaning.per_day,
                per_day_unit=meaning.unit,
                threshold=None if meaning.per_day is None else _threshold(meaning.unit, thresholds),
                citation=thresholds.citation,
                key=f"{new.name}|{field}|{'|'.join(_key_part(v) for v in meaning.signature)}",
                per_dose=meaning.per_dose if multiplied else None,
                per_dose_unit=meaning.per_dose_unit,
                doses_per_day=new.doses_per_day if multiplied else None,
                at_most=new.interval_is_maximum,
                uncapped_per_day=meaning.uncapped_per_day,
            )
        )
    return changed


def changed_amounts(
    *, old: ProtocolData | None, new: ProtocolData, thresholds: PlausibilityThresholds
) -> list[ChangedAmount]:
    """Every amount `new` changes from `old`, step by step in `new`'s order."""
    old_steps = {step.name: step for step in old.steps} if old is not None else {}
    return [
        amount
        for step in new.steps
        for amount in step_changed_amounts(old=old_steps.get(step.name), new=step, thresholds=thresholds)
    ]


def _answer(recommendation: Recommendation) -> tuple:
    """What a patient is given: status, warnings, and per step its amounts, volume, ceiling and frequency.
    Not the order's wording, which quotes every cap whether or not it bound this patient."""
    return (
        recommendation.status,
        tuple(sorted(w.code for w in recommendation.warnings)),
        tuple(
            (
                result.step.name,
                result.per_dose_mg,
                result.per_day_mg,
                result.volume_ml,
                result.max_escalation_per_day_mg,
                result.step.interval_hours,
                result.step.interval_is_maximum,
            )
            for result in recommendation.steps
        ),
    )


def _answers(protocol: ProtocolData, expectations: Sequence[PatientExpectation]) -> list[tuple]:
    return [_answer(expectation_check(expectation=e, protocol=protocol).recommendation) for e in expectations]


def _without(new: ProtocolData, old: ProtocolData | None, amount: ChangedAmount) -> ProtocolData | None:
    """`new` with this one amount as it was (a new step: without the step); None when that is no valid step."""
    old_step = next((s for s in old.steps if s.name == amount.step_name), None) if old is not None else None
    steps = []
    for step in new.steps:
        if step.name != amount.step_name:
            steps.append(step)
        elif old_step is not None:
            fields = {amount.field: getattr(old_step, amount.field)}
            if amount.field in ("amount_low", "amount_high"):
                fields |= {"dose_basis": old_step.dose_basis, "interval_hours": old_step.interval_hours}
            elif amount.field == "interval_hours":
                fields["interval_is_maximum"] = old_step.interval_is_maximum
            elif amount.field == "escalation_ceiling_amount":
                fields["escalation_ceiling_basis"] = old_step.escalation_ceiling_basis
            try:
                steps.append(replace(step, **fields))
            except ValueError:
                return None
    return replace(new, steps=tuple(steps))


def amount_coverage(
    *,
    old: ProtocolData | None,
    new: ProtocolData,
    amounts: Sequence[ChangedAmount],
    expectations: Sequence[PatientExpectation],
) -> list[AmountCoverage]:
    """For each changed amount, the test patients whose answer (status, warnings, amounts, frequency) changes
    when only that amount is put back as it was."""
    answers = _answers(new, expectations)
    coverage = []
    for amount in amounts:
        reverted = _without(new, old, amount)
        if reverted is None:
            labels: tuple[str, ...] = ()
        else:
            before = _answers(reverted, expectations)
            labels = tuple(e.label for e, a, b in zip(expectations, answers, before, strict=True) if a != b)
        coverage.append(AmountCoverage(amount=amount, test_patient_labels=labels))
    return coverage
