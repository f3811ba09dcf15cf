"""Run a protocol's test patients through the engine and compare with what the pharmacist expects.

Pure: engine data in, plain results out (no Django). A check passes when the status is the
expected one and, for a named step, the ordered per-dose and per-day ranges are exactly the
expected ones (a missing per-dose range is expected when the step states no interval).
"""

from __future__ import annotations

from dataclasses import dataclass

from engine import notation
from engine.data import DoseRange, PatientInputs, ProtocolData, Recommendation, StepResult
from engine.recommend import recommend
from engine.vocabulary import Status


@dataclass(frozen=True, slots=True)
class PatientExpectation:
    test_patient_id: int
    label: str
    patient: PatientInputs
    status: Status
    step_name: str = ""
    per_dose_mg: DoseRange | None = None
    per_day_mg: DoseRange | None = None


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    expectation: PatientExpectation
    recommendation: Recommendation
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def checked_step(self) -> StepResult | None:
        return step_named(self.recommendation, self.expectation.step_name)


def range_text(value: DoseRange | None, unit: str = "mg") -> str:
    if value is None:
        return "none"
    return notation.amount_range(value.low, value.high, unit)


def step_named(recommendation: Recommendation, name: str) -> StepResult | None:
    if not name:
        return None
    return next((s for s in recommendation.steps if s.step.name == name), None)


def _same_range(expected: DoseRange | None, actual: DoseRange | None) -> bool:
    if expected is None or actual is None:
        return expected is None and actual is None
    return expected.low == actual.low and expected.high == actual.high


def expectation_check(*, expectation: PatientExpectation, protocol: ProtocolData) -> CheckOutcome:
    recommendation = recommend(protocol=protocol, patient=expectation.patient)
    problems: list[str] = []
    if recommendation.status != expectation.status:
        problems.append(f"status: expected {expectation.status.value}, got {recommendation.status.value}")
    if expectation.step_name:
        matching = [s for s in recommendation.steps if s.step.name == expectation.step_name]
        if not matching:
            shown = ", ".join(f'"{s.step.name}"' for s in recommendation.steps) or "none"
            problems.append(f'step "{expectation.step_name}" is not in the answer (steps given: {shown})')
        elif len(matching) > 1:
            problems.append(f'step "{expectation.step_name}": several steps have this name; rename one')
        else:
            step = matching[0]
            if not _same_range(expectation.per_dose_mg, step.per_dose_mg):
                problems.append(
                    f"{expectation.step_name}, per dose: expected {range_text(expectation.per_dose_mg)}, "
                    f"got {range_text(step.per_dose_mg)}"
                )
            if not _same_range(expectation.per_day_mg, step.per_day_mg):
                problems.append(
                    f"{expectation.step_name}, per day: expected {range_text(expectation.per_day_mg, 'mg/day')}, "
                    f"got {range_text(step.per_day_mg, 'mg/day')}"
                )
    return CheckOutcome(expectation=expectation, recommendation=recommendation, problems=tuple(problems))
