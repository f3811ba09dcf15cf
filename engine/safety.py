"""Safety rules that apply to every center (clinical.md section 4: the letter and the Kineret US label).

These rules are not center-specific. Figures from the product label (the letter's reference 8) name the
label in their text, and the recommendation then cites it (`LABEL_FACTS`). The cross-center comparison
amounts (10 mg/kg/day, 400 mg/day) are not here: they are protocol-version data with their citation
(`engine.data.ComparisonThresholds`), approved like every other number a pharmacist can change.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from engine import notation
from engine.data import ComparisonThresholds, PatientInputs, StepResult, Warning
from engine.vocabulary import CarTarget, Route, Severity, Toxicity

# Kineret label: consider every-other-day dosing below this creatinine clearance.
RENAL_CRCL_ML_MIN = Decimal("30")
# The confirmation band (clinical.md section 4); the input bounds are engine.limits.WEIGHT_KG.
WEIGHT_CONFIRM_FROM_KG = Decimal("100")
ADULT_AGE_ABOVE_YEARS = Decimal("30")
SEVERE_GRADE = 3
LABEL = "Kineret US label"

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
    "above_usual_daily_cap",
    "product_experience",
    "iv_off_label",
    "prefer_iv",
    "general_monitoring",
)
CODE_RANK = {code: rank for rank, code in enumerate(CODE_ORDER)}
SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}

HYPERSENSITIVITY = Warning(
    "contraindicated_hypersensitivity",
    Severity.CRITICAL,
    "Known hypersensitivity to E. coli-derived proteins or to any component of anakinra: anakinra is "
    f"contraindicated ({LABEL}). Do not give.",
)
TNF_BLOCKER = Warning(
    "tnf_blocker",
    Severity.WARNING,
    f"Concurrent TNF blocker: combining it with anakinra is not recommended. In the {LABEL}'s trial, serious "
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
    f"Creatinine clearance below 30 mL/min: the {LABEL} advises considering dosing every other day.",
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
IV_OFF_LABEL = Warning(
    "iv_off_label", Severity.INFO, f"IV use is off-label: the labelled route is subcutaneous ({LABEL})."
)

# What each label-derived rule takes from the label, named in the label's citation on the recommendation.
LABEL_FACTS = {
    "contraindicated_hypersensitivity": "E. coli-derived proteins",
    "tnf_blocker": "serious infections 7% vs 0% with etanercept",
    "renal_impairment": "creatinine clearance < 30 mL/min",
    "iv_off_label": "labelled route subcutaneous",
}
VOLUME_FACT = "100 mg in 0.67 mL per prefilled syringe"
# The warnings that compare doses with the version's comparison amounts (their source is then cited).
COMPARISON_CODES = frozenset({"above_reported_maximum", "above_usual_daily_cap"})
GENERAL = Warning(
    "general_monitoring",
    Severity.INFO,
    "Half-life 4-6 hours. Check the neutrophil count before starting. No live vaccines. Taper: anakinra "
    "is usually the last agent weaned. This is decision support: the prescriber and pharmacist verify "
    "every order.",
)


def _quantized(value: Decimal) -> Decimal:
    return value.quantize(notation.MG_QUANTUM, rounding=ROUND_HALF_UP)


def _above_reported_maximum(
    steps: tuple[StepResult, ...], weight_kg: Decimal, thresholds: ComparisonThresholds
) -> Warning | None:
    """Above the highest per-kg daily amount any center reports, naming each listed step it fired on (by its
    place in the list and its name, as the pages list them). Like is compared with like, each rounded to
    0.1 mg the same way, so display rounding alone never raises it (clinical.md section 4): with an interval,
    the ordered per-dose amount against the per-kg maximum divided by the doses a day; without one, the
    per-day amount against the per-kg maximum; and the escalation ceiling against the per-kg maximum."""
    maximum_per_kg = thresholds.reported_max_mg_per_kg_per_day
    limit_per_day = maximum_per_kg * weight_kg
    found: list[str] = []
    for number, result in enumerate(steps, start=1):
        above: list[tuple[str, Decimal, bool]] = []  # (what, mg/day, after vial rounding)
        if result.per_dose_mg is not None and result.doses_per_day:
            if result.per_dose_mg.high > _quantized(limit_per_day / result.doses_per_day):
                applied = result.high.rounding is not None and result.high.rounding.applied
                above.append(("", result.per_day_mg.high, applied))
        elif result.per_day_mg.high > _quantized(limit_per_day):
            above.append(("", result.per_day_mg.high, False))
        ceiling = result.max_escalation_per_day_mg
        if ceiling is not None and _quantized(ceiling) > _quantized(limit_per_day):
            above.append((", escalation ceiling", ceiling, False))
        for what, amount_mg, rounded in above:
            up_to = "up to " if not what and not result.per_day_mg.is_single else ""
            per_kg = notation.amount_beside(amount_mg / weight_kg, maximum_per_kg, "mg/kg/day")
            after = " after rounding to the nearest vial" if rounded else ""
            found.append(
                f"step {number} ({result.step.name}){what}: {up_to}{notation.amount(amount_mg, 'mg/day')} "
                f"({per_kg}){after}"
            )
    if not found:
        return None
    text = "; ".join(found)
    return Warning(
        "above_reported_maximum",
        Severity.WARNING,
        f"{text[0].upper()}{text[1:]}: above {notation.amount(maximum_per_kg, 'mg/kg/day')}, "
        f"{thresholds.reported_max_basis}.",
    )


def _above_usual_daily_cap(steps: tuple[StepResult, ...], thresholds: ComparisonThresholds) -> Warning | None:
    """A per-day amount (or escalation ceiling) above the usual per-day cap, from a step that states no cap."""
    cap = thresholds.usual_daily_cap_mg
    amounts = [
        amount
        for result in steps
        if result.step.max_daily_dose_mg is None
        for amount in (result.per_day_mg.high, result.max_escalation_per_day_mg)
        if amount is not None and _quantized(amount) > cap
    ]
    if not amounts:
        return None
    return Warning(
        "above_usual_daily_cap",
        Severity.INFO,
        f"Up to {notation.amount(max(amounts), 'mg/day')}: above {notation.amount(cap, 'mg/day')}, "
        f"{thresholds.usual_daily_cap_basis}; this protocol states none - confirm with pharmacy.",
    )


def step_warnings(
    *, steps: tuple[StepResult, ...], weight_kg: Decimal, thresholds: ComparisonThresholds | None
) -> tuple[Warning, ...]:
    """The warnings `warnings_for` raises from the steps at a weight alone (no toxicity, grade, history or
    age): the comparisons with the version's amounts, no stated frequency, IV off-label. In CODE_ORDER.
    What an EHR's order check can say, where the patient's other answers are not known."""
    found: list[Warning] = []
    if steps and thresholds and (maximum := _above_reported_maximum(steps, weight_kg, thresholds)):
        found.append(maximum)
    if any(r.step.interval_hours is None for r in steps):
        found.append(FREQUENCY)
    if steps and thresholds and (usual := _above_usual_daily_cap(steps, thresholds)):
        found.append(usual)
    if any(Route.IV in r.step.routes for r in steps):
        found.append(IV_OFF_LABEL)
    return tuple(found)


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
    thresholds: ComparisonThresholds | None = None,
) -> tuple[Warning, ...]:
    """Every warning that applies, each code once, in CODE_ORDER (which is ordered by severity)."""
    known = known or patient_warnings(patient)
    found: list[Warning] = [HYPERSENSITIVITY] if contraindicated else []
    found.extend(known.infection_related)
    offers_sc = any(Route.SC in result.step.routes for result in steps)
    if known.bleeding_risk and offers_sc:
        found.append(SC_BLEEDING)
    found.extend(known.renal)
    found.extend(known.weight_and_age)
    # What the steps alone raise (also all an EHR's card can say) is worked out in one place.
    found.extend(step_warnings(steps=steps, weight_kg=patient.weight_kg, thresholds=thresholds))
    if reported_car_target and patient.car_target != reported_car_target:
        found.append(
            Warning(
                "product_experience",
                Severity.INFO,
                f"This center reports its experience with {reported_car_target} CAR T cells; the patient's "
                f"product is {_product_words(patient)}. The protocol is shown as reported.",
            )
        )
    if offers_sc and known.prefer_iv is not None:
        found.append(known.prefer_iv)
    found.append(GENERAL)
    return tuple(sorted(found, key=lambda warning: CODE_RANK[warning.code]))
