"""Safety rules that apply to every center (clinical.md section 4: the letter and the Kineret US label).

These thresholds are not center-specific: they come from the letter's cross-center summary and the
product label, and the warning text says so. Center rules live in the protocol data.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from engine import notation
from engine.data import PatientInputs, StepResult, Warning
from engine.vocabulary import CarTarget, Route, Severity, Toxicity

# Highest daily amounts any of the six centers reports (Table 1): 400 mg/day, 10 mg/kg/day.
REPORTED_MAX_MG_PER_DAY = Decimal("400")
REPORTED_MAX_MG_PER_KG_PER_DAY = Decimal("10")
# Kineret label: consider every-other-day dosing below this creatinine clearance.
RENAL_CRCL_ML_MIN = Decimal("30")
# Input bounds (api.md) and the confirmation band (clinical.md section 4).
WEIGHT_MIN_KG = Decimal("1")
WEIGHT_MAX_KG = Decimal("150")
WEIGHT_CONFIRM_FROM_KG = Decimal("100")
ADULT_AGE_ABOVE_YEARS = Decimal("30")
SEVERE_GRADE = 3

# Warning codes in display order; each appears at most once per recommendation.
CODE_ORDER = (
    "contraindicated_hypersensitivity",
    "tnf_blocker",
    "infection",
    "sc_bleeding_risk",
    "renal_impairment",
    "above_reported_maximum",
    "weight_confirm",
    "adult_patient",
    "frequency_not_specified",
    "product_experience",
    "iv_off_label",
    "prefer_iv",
    "general_monitoring",
)
SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}

HYPERSENSITIVITY = Warning(
    "contraindicated_hypersensitivity",
    Severity.CRITICAL,
    "Known hypersensitivity to E. coli-derived proteins or to any component of anakinra: anakinra is "
    "contraindicated. Do not give.",
)
TNF_BLOCKER = Warning(
    "tnf_blocker",
    Severity.WARNING,
    "Concurrent TNF blocker: combining it with anakinra is not recommended. In the label's trial, serious "
    "infections occurred in 7% with anakinra plus etanercept vs 0% with etanercept alone.",
)
INFECTION = Warning(
    "infection",
    Severity.WARNING,
    "Active infection: monitor closely for infection, as immunosuppression can mask fever. Review "
    "antimicrobial prophylaxis.",
)
SC_BLEEDING = Warning(
    "sc_bleeding_risk",
    Severity.WARNING,
    "Thrombocytopenia or coagulopathy: subcutaneous injection can cause significant bruising. Consider IV.",
)
RENAL = Warning(
    "renal_impairment",
    Severity.WARNING,
    "Creatinine clearance below 30 mL/min: the label advises considering dosing every other day.",
)
WEIGHT_CONFIRM = Warning("weight_confirm", Severity.WARNING, "Weight of 100 kg or more: confirm the weight is in kg.")
ADULT = Warning(
    "adult_patient",
    Severity.WARNING,
    "Age above 30 years: these protocols are for children and young adults.",
)
FREQUENCY = Warning(
    "frequency_not_specified",
    Severity.WARNING,
    "Frequency not specified by this protocol - confirm with pharmacy. Only per-day amounts are given; "
    "no per-dose amount has been calculated.",
)
IV_OFF_LABEL = Warning("iv_off_label", Severity.INFO, "IV use is off-label: the labelled route is subcutaneous.")
GENERAL = Warning(
    "general_monitoring",
    Severity.INFO,
    "Half-life 4-6 hours. Check the neutrophil count before starting. No live vaccines. Taper: anakinra "
    "is usually the last agent weaned. This is decision support: the prescriber and pharmacist verify "
    "every order.",
)


def _above_reported_maximum(steps: tuple[StepResult, ...], weight_kg: Decimal) -> Warning | None:
    # The exact per-day amounts (before doses are shown to 0.1 mg): 10 mg/kg/day is not "above" 10.
    highest, rounded = Decimal(0), False
    for result in steps:
        for amount_mg, from_rounding in (
            (result.high.exact_per_day_mg, result.high.rounding is not None and result.high.rounding.applied),
            (result.max_escalation_per_day_mg, False),
        ):
            if amount_mg is not None and amount_mg > highest:
                highest, rounded = amount_mg, from_rounding
    limits = []
    if highest > REPORTED_MAX_MG_PER_DAY:
        limits.append(notation.amount(REPORTED_MAX_MG_PER_DAY, "mg/day"))
    if highest > REPORTED_MAX_MG_PER_KG_PER_DAY * weight_kg:  # per kg, as a product: exact, no division
        limits.append(notation.amount(REPORTED_MAX_MG_PER_KG_PER_DAY, "mg/kg/day"))
    if not limits:
        return None
    per_kg = highest / weight_kg
    shown_per_kg = notation.amount_beside(per_kg, REPORTED_MAX_MG_PER_KG_PER_DAY, "mg/kg/day")
    after = " after rounding to the nearest vial" if rounded else ""
    return Warning(
        "above_reported_maximum",
        Severity.WARNING,
        f"Up to {notation.amount(highest, 'mg/day')} ({shown_per_kg}){after}: above {' and '.join(limits)}, "
        f"the highest daily amounts the six centers report ({notation.amount(REPORTED_MAX_MG_PER_DAY, 'mg/day')} "
        f"or {notation.amount(REPORTED_MAX_MG_PER_KG_PER_DAY, 'mg/kg/day')}).",
    )


def _prefer_iv(patient: PatientInputs) -> Warning | None:
    texts = []
    icans = patient.grade_of(Toxicity.ICANS)
    crs = patient.grade_of(Toxicity.CRS)
    if icans is not None and icans >= SEVERE_GRADE:
        texts.append(f"ICANS grade {icans}: IV is reported to give higher CSF levels than subcutaneous.")
    if crs is not None and crs >= SEVERE_GRADE:
        texts.append(f"CRS grade {crs}: with edema or poor skin perfusion, IV is preferred.")
    if not texts:
        return None
    return Warning("prefer_iv", Severity.INFO, " ".join(texts))


@dataclass(frozen=True, slots=True)
class PatientWarnings:
    """The warnings that depend on the patient alone, worked out once for every center."""

    infection_related: tuple[Warning, ...]  # tnf_blocker, infection
    renal: tuple[Warning, ...]
    weight_and_age: tuple[Warning, ...]  # weight_confirm, adult_patient
    prefer_iv: Warning | None  # raised only where a listed step offers SC
    bleeding_risk: bool


def patient_warnings(patient: PatientInputs) -> PatientWarnings:
    infection_related = tuple(
        w for w, on in ((TNF_BLOCKER, patient.concurrent_tnf_blocker), (INFECTION, patient.active_infection)) if on
    )
    crcl = patient.creatinine_clearance_ml_min
    weight_and_age = tuple(
        w
        for w, on in (
            (WEIGHT_CONFIRM, patient.weight_kg >= WEIGHT_CONFIRM_FROM_KG),
            (ADULT, patient.age_years > ADULT_AGE_ABOVE_YEARS),
        )
        if on
    )
    return PatientWarnings(
        infection_related=infection_related,
        renal=(RENAL,) if crcl is not None and crcl < RENAL_CRCL_ML_MIN else (),
        weight_and_age=weight_and_age,
        prefer_iv=_prefer_iv(patient),
        bleeding_risk=patient.thrombocytopenia_or_coagulopathy,
    )


def _product_words(patient: PatientInputs) -> str:
    return "another product, or not recorded" if patient.car_target == CarTarget.OTHER else patient.car_target


def warnings_for(
    *,
    patient: PatientInputs,
    steps: tuple[StepResult, ...],
    contraindicated: bool,
    reported_car_target: str | None,
    known: PatientWarnings | None = None,
) -> tuple[Warning, ...]:
    """Every warning that applies, each code once, in CODE_ORDER (which is ordered by severity)."""
    known = known or patient_warnings(patient)
    found: list[Warning] = [HYPERSENSITIVITY] if contraindicated else []
    found.extend(known.infection_related)
    offers_sc = offers_iv = no_interval = False
    for result in steps:
        routes = result.step.routes
        offers_sc = offers_sc or Route.SC in routes
        offers_iv = offers_iv or Route.IV in routes
        no_interval = no_interval or result.step.interval_hours is None
    if known.bleeding_risk and offers_sc:
        found.append(SC_BLEEDING)
    found.extend(known.renal)
    if steps and (maximum := _above_reported_maximum(steps, patient.weight_kg)):
        found.append(maximum)
    found.extend(known.weight_and_age)
    if no_interval:
        found.append(FREQUENCY)
    if reported_car_target and patient.car_target != reported_car_target:
        found.append(
            Warning(
                "product_experience",
                Severity.INFO,
                f"This center reports its experience with {reported_car_target} CAR T cells; the patient's "
                f"product is {_product_words(patient)}. The protocol is shown as reported.",
            )
        )
    if offers_iv:
        found.append(IV_OFF_LABEL)
    if offers_sc and known.prefer_iv is not None:
        found.append(known.prefer_iv)
    found.append(GENERAL)
    return tuple(found)
