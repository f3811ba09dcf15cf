"""Plain data in and out of the engine. Amounts are Decimals; nothing here knows about Django."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from engine.vocabulary import Cap, CarTarget, DoseBasis, Route, Severity, Status, StepKind, Toxicity

# --- Inputs: the patient -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToxicityGrade:
    type: Toxicity
    grade: int


@dataclass(frozen=True, slots=True)
class PatientInputs:
    weight_kg: Decimal
    age_years: Decimal
    toxicities: tuple[ToxicityGrade, ...]
    prior_tocilizumab_doses: int
    prior_steroids: bool
    car_target: CarTarget = CarTarget.OTHER
    days_since_infusion: int | None = None
    fever: bool | None = None
    hypotension: bool | None = None
    late_onset_isolated: bool | None = None
    thrombocytopenia_or_coagulopathy: bool = False
    concurrent_tnf_blocker: bool = False
    ecoli_protein_hypersensitivity: bool = False
    active_infection: bool = False
    creatinine_clearance_ml_min: Decimal | None = None

    def grade_of(self, toxicity: Toxicity) -> int | None:
        for item in self.toxicities:
            if item.type == toxicity:
                return item.grade
        return None


# --- Inputs: a published protocol version ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Citation:
    key: str
    label: str
    doi: str = ""
    pmid: str = ""
    url: str = ""

    @property
    def link(self) -> str:
        if self.doi:
            return f"https://doi.org/{self.doi}"
        if self.pmid:
            return f"https://pubmed.ncbi.nlm.nih.gov/{self.pmid}/"
        return self.url


@dataclass(frozen=True, slots=True)
class Rule:
    toxicities: frozenset[Toxicity]
    summary: str
    result_status: Status = Status.INDICATED
    min_grade: int = 1
    max_grade: int = 4
    min_prior_tocilizumab_doses: int = 0
    requires_steroids: bool = False
    first_line_if_isolated_late_onset: bool = False
    first_line_summary: str = ""
    # From this many prior tocilizumab doses, the reasons add `repeat_tocilizumab_note` (the status is kept).
    repeat_tocilizumab_from_doses: int | None = None
    repeat_tocilizumab_note: str = ""


@dataclass(frozen=True, slots=True)
class Step:
    kind: StepKind
    name: str
    toxicities: frozenset[Toxicity]
    dose_basis: DoseBasis
    amount_low: Decimal
    amount_high: Decimal
    routes: tuple[Route, ...]
    min_grade: int = 1
    max_grade: int = 4
    interval_hours: int | None = None
    interval_is_maximum: bool = False
    max_single_dose_mg: Decimal | None = None
    max_daily_dose_mg: Decimal | None = None
    escalation_ceiling_amount: Decimal | None = None
    escalation_ceiling_basis: DoseBasis | None = None
    rounding_increment_mg: Decimal | None = None
    rounding_tolerance_percent: Decimal | None = None
    duration: str = ""
    taper: str = ""
    notes: str = ""
    citations: tuple[Citation, ...] = ()
    # Derived once here rather than on every dose calculation.
    per_kg: bool = field(init=False, repr=False, compare=False)
    per_dose_basis: bool = field(init=False, repr=False, compare=False)
    doses_per_day: int | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.interval_hours is not None and (self.interval_hours <= 0 or 24 % self.interval_hours):
            raise ValueError(f"interval of {self.interval_hours} h does not divide a day")
        object.__setattr__(self, "per_kg", self.dose_basis.per_kg)
        object.__setattr__(self, "per_dose_basis", self.dose_basis.per_dose)
        object.__setattr__(self, "doses_per_day", None if self.interval_hours is None else 24 // self.interval_hours)


@dataclass(frozen=True, slots=True)
class ComparisonThresholds:
    """The cross-center amounts every dose is compared with (clinical.md section 4), as data with their source:
    a version field set, approved with the protocol version (two-person rule), never a constant in code."""

    reported_max_mg_per_kg_per_day: Decimal
    reported_max_basis: str  # what the amount is, e.g. "the highest per-kg daily amount any center reports"
    usual_daily_cap_mg: Decimal
    usual_daily_cap_basis: str  # e.g. "the per-day cap that ... state"
    citation: Citation | None = None


@dataclass(frozen=True, slots=True)
class ProtocolData:
    institution_slug: str
    institution_name: str
    version_id: int
    version_number: int
    published_at: datetime | None
    approved_by: str
    rules: tuple[Rule, ...]
    steps: tuple[Step, ...]
    citations: tuple[Citation, ...] = ()
    reported_car_target: CarTarget | None = None
    concentration_mg_per_ml: Decimal = Decimal("150")
    notes: str = ""
    # True when a local pharmacist approved this version; False when it came approved in the data file.
    approved_locally: bool = False
    # None on versions made before the thresholds were data: the comparisons are then not made (and a note says so).
    thresholds: ComparisonThresholds | None = None
    # The product label (the letter's reference 8): cited wherever a label-derived rule or figure is used.
    label_citation: Citation | None = None


# --- Outputs --------------------------------------------------------------------------------------
# Not frozen: built once per request and never changed or hashed, and frozen construction is slow.


@dataclass(slots=True)
class DoseRange:
    low: Decimal
    high: Decimal

    @property
    def is_single(self) -> bool:
        return self.low == self.high


@dataclass(slots=True)
class CapEvent:
    """A cap that lowered an amount: `before` (mg) became `after` (mg)."""

    cap: Cap
    before: Decimal
    after: Decimal


@dataclass(slots=True)
class RoundingDecision:
    """'Nearest vial' for one dose: the nearest whole multiple and whether it was within tolerance."""

    dose_mg: Decimal
    nearest_mg: Decimal
    change_percent: Decimal | None  # None when the nearest multiple is no dose at all
    applied: bool


@dataclass(slots=True)
class BoundResult:
    """One bound (low or high) of a step for one weight. Amounts are exact; ordered ones are quantized."""

    calculated_per_dose_mg: Decimal | None
    calculated_per_day_mg: Decimal
    per_dose_mg: Decimal | None
    per_day_mg: Decimal
    cap_events: tuple[CapEvent, ...]
    rounding: RoundingDecision | None
    # The per-day amount before the ordered dose is shown to 0.1 mg (for limits, not for display).
    exact_per_day_mg: Decimal


@dataclass(slots=True)
class StepResult:
    """A step's numbers for one weight. Its words (order line, arithmetic, notes) are not here: the
    presentation layer builds them once, as an engine.text.StepWords, from these numbers."""

    step: Step
    weight_kg: Decimal
    doses_per_day: int | None
    low: BoundResult
    high: BoundResult
    calculated_per_dose_mg: DoseRange | None
    per_dose_mg: DoseRange | None
    calculated_per_day_mg: DoseRange
    per_day_mg: DoseRange
    escalation_uncapped_mg: Decimal | None
    max_escalation_per_day_mg: Decimal | None
    capped_by: tuple[Cap, ...]  # caps that changed the per-dose or per-day amount
    max_escalation_capped_by: tuple[Cap, ...]  # caps that lowered only the escalation ceiling
    volume_ml: DoseRange | None
    concentration_mg_per_ml: Decimal


@dataclass(frozen=True, slots=True)
class Warning:
    code: str
    severity: Severity
    text: str


@dataclass(slots=True)
class Recommendation:
    protocol: ProtocolData
    status: Status
    reasons: tuple[str, ...]
    steps: tuple[StepResult, ...]
    warnings: tuple[Warning, ...]
    citations: tuple[Citation, ...]
    notes: tuple[str, ...] = field(default=())
