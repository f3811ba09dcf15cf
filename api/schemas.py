"""The v1 request and response schemas (../shared/spec/api.md). The OpenAPI document is generated
from these models, and requests are validated by them: one source for both."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    WithJsonSchema,
    field_validator,
)

from engine.data import PatientInputs, ToxicityGrade
from engine.vocabulary import CarTarget, Toxicity

MAX_WEIGHT_DECIMALS = 3


def _json_number(value: Any) -> Decimal:
    # JSON is parsed with floats as Decimal; a bool is an int in Python, so refuse it explicitly.
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ValueError("must be a number")
    return Decimal(value)


Number = Annotated[Decimal, BeforeValidator(_json_number), WithJsonSchema({"type": "number"})]
WholeNumber = Annotated[int, Strict()]
Flag = Annotated[bool, Strict()]


def _in_range(value: Decimal | int, low: int, high: int, unit: str = "") -> None:
    if not low <= value <= high:
        suffix = f" {unit}" if unit else ""
        raise ValueError(f"must be from {low} to {high}{suffix}")


class ToxicityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Toxicity = Field(description="CRS, ICANS or carHLH")
    grade: WholeNumber = Field(description="ASTCT grade (CRS, ICANS) or clinician-entered severity (carHLH), 1-4")

    @field_validator("grade")
    @classmethod
    def _grade(cls, value: int) -> int:
        _in_range(value, 1, 4)
        return value


class RecommendationRequest(BaseModel):
    """POST /api/v1/recommendations. Weight is in kg only; there is no pounds input."""

    model_config = ConfigDict(extra="forbid", title="RecommendationRequest")

    weight_kg: Number = Field(description="1 to 150 kg, at most 3 decimal places")
    age_years: Number = Field(description="0 to 40")
    toxicities: list[ToxicityIn] = Field(description="1 to 3 items, each type at most once")
    prior_tocilizumab_doses: WholeNumber = Field(description="0 to 10")
    prior_steroids: Flag = Field(description="true when steroids were given or are being started now")
    car_target: CarTarget = CarTarget.OTHER
    days_since_infusion: WholeNumber | None = Field(default=None, description="0 to 365")
    fever: Flag | None = None
    hypotension: Flag | None = None
    late_onset_isolated: Flag | None = Field(default=None, description="carHLH arising late, without active CRS")
    thrombocytopenia_or_coagulopathy: Flag = False
    concurrent_tnf_blocker: Flag = False
    ecoli_protein_hypersensitivity: Flag = False
    active_infection: Flag = False
    creatinine_clearance_ml_min: Number | None = Field(default=None, description="0 to 300 mL/min")
    institution: str | None = Field(default=None, description="institution slug; absent = every institution")

    @field_validator("weight_kg")
    @classmethod
    def _weight(cls, value: Decimal) -> Decimal:
        _in_range(value, 1, 150, "kg")
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > MAX_WEIGHT_DECIMALS:
            raise ValueError("must have at most 3 decimal places (grams)")
        return value

    @field_validator("age_years")
    @classmethod
    def _age(cls, value: Decimal) -> Decimal:
        _in_range(value, 0, 40, "years")
        return value

    @field_validator("toxicities")
    @classmethod
    def _toxicities(cls, value: list[ToxicityIn]) -> list[ToxicityIn]:
        if not 1 <= len(value) <= 3:
            raise ValueError("must list 1 to 3 toxicities")
        types = [t.type for t in value]
        if len(set(types)) != len(types):
            raise ValueError("each toxicity type may appear only once")
        return value

    @field_validator("prior_tocilizumab_doses")
    @classmethod
    def _tocilizumab(cls, value: int) -> int:
        _in_range(value, 0, 10)
        return value

    @field_validator("days_since_infusion")
    @classmethod
    def _days(cls, value: int | None) -> int | None:
        if value is not None:
            _in_range(value, 0, 365)
        return value

    @field_validator("creatinine_clearance_ml_min")
    @classmethod
    def _crcl(cls, value: Decimal | None) -> Decimal | None:
        if value is not None:
            _in_range(value, 0, 300, "mL/min")
        return value

    def to_patient(self) -> PatientInputs:
        return PatientInputs(
            weight_kg=self.weight_kg,
            age_years=self.age_years,
            toxicities=tuple(ToxicityGrade(t.type, t.grade) for t in self.toxicities),
            prior_tocilizumab_doses=self.prior_tocilizumab_doses,
            prior_steroids=self.prior_steroids,
            car_target=self.car_target,
            days_since_infusion=self.days_since_infusion,
            fever=self.fever,
            hypotension=self.hypotension,
            late_onset_isolated=self.late_onset_isolated,
            thrombocytopenia_or_coagulopathy=self.thrombocytopenia_or_coagulopathy,
            concurrent_tnf_blocker=self.concurrent_tnf_blocker,
            ecoli_protein_hypersensitivity=self.ecoli_protein_hypersensitivity,
            active_infection=self.active_infection,
            creatinine_clearance_ml_min=self.creatinine_clearance_ml_min,
        )

    def echo(self) -> dict[str, Any]:
        """The validated request as stored and echoed back (defaults filled in)."""
        return self.model_dump(mode="python")


# --- Response models: documentation and contract tests only (responses are built by engine.present) ---

Amount = Annotated[Decimal, WithJsonSchema({"type": "number"})]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Range(_Out):
    low: Amount
    high: Amount


class GradeBand(_Out):
    low: int
    high: int


class CitationOut(_Out):
    label: str
    doi: str | None
    pmid: str | None
    url: str | None


class RoundingOut(_Out):
    increment_mg: Amount
    applied: bool
    note: str


class StepOut(_Out):
    kind: Literal["initial", "taper", "alternative"]
    name: str
    applies_to: list[Toxicity]
    grades: GradeBand
    routes: list[Literal["IV", "SC"]]
    interval_hours: int | None
    interval_is_maximum: bool
    dose_basis: Literal["mg/kg/dose", "mg/kg/day", "mg/dose", "mg/day"]
    amount: Range
    calculated_per_dose_mg: Range | None
    per_dose_mg: Range | None
    calculated_per_day_mg: Range
    per_day_mg: Range
    max_single_dose_mg: Amount | None
    max_daily_dose_mg: Amount | None
    max_escalation_per_day_mg: Amount | None
    capped_by: list[Literal["max_single_dose", "max_daily_dose"]]
    cap_notes: list[str]
    rounding: RoundingOut | None
    volume_ml: Range | None
    arithmetic: list[str]
    order_text: str
    duration: str
    taper: str
    notes: str
    citations: list[CitationOut]


class WarningOut(_Out):
    code: Literal[
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
    ]
    severity: Literal["critical", "warning", "info"]
    text: str


class InstitutionOut(_Out):
    slug: str
    name: str


class ProtocolRef(_Out):
    id: int
    version: int
    published_at: datetime | None
    approved_by: str


class RecommendationOut(_Out):
    institution: InstitutionOut
    protocol: ProtocolRef
    status: Literal["indicated", "consider", "not_indicated", "contraindicated"]
    reasons: list[str]
    notes: list[str]
    steps: list[StepOut]
    warnings: list[WarningOut]
    citations: list[CitationOut]


class InputsOut(BaseModel):
    """The validated request, with defaults filled in."""

    model_config = ConfigDict(extra="forbid")

    weight_kg: Amount
    age_years: Amount
    toxicities: list[ToxicityIn]
    prior_tocilizumab_doses: int
    prior_steroids: bool
    car_target: CarTarget
    days_since_infusion: int | None
    fever: bool | None
    hypotension: bool | None
    late_onset_isolated: bool | None
    thrombocytopenia_or_coagulopathy: bool
    concurrent_tnf_blocker: bool
    ecoli_protein_hypersensitivity: bool
    active_infection: bool
    creatinine_clearance_ml_min: Amount | None
    institution: str | None


class RecommendationResponse(_Out):
    assessment_id: str
    created_at: datetime
    print_url: str
    inputs: InputsOut
    recommendations: list[RecommendationOut]


class ErrorResponse(_Out):
    errors: dict[str, list[str]]


class RuleOut(_Out):
    applies_to: list[Toxicity]
    min_grade: int
    min_prior_tocilizumab_doses: int
    requires_steroids: bool
    result_status: Literal["indicated", "consider"]
    summary: str
    first_line_if_isolated_late_onset: bool
    first_line_summary: str


class ProtocolStepOut(_Out):
    kind: Literal["initial", "taper", "alternative"]
    name: str
    applies_to: list[Toxicity]
    grades: GradeBand
    routes: list[Literal["IV", "SC"]]
    interval_hours: int | None
    interval_is_maximum: bool
    dose_basis: Literal["mg/kg/dose", "mg/kg/day", "mg/dose", "mg/day"]
    amount: Range
    max_single_dose_mg: Amount | None
    max_daily_dose_mg: Amount | None
    escalation_ceiling: dict[str, Any] | None
    rounding: dict[str, Any] | None
    duration: str
    taper: str
    notes: str
    citations: list[CitationOut]


class InstitutionListItem(_Out):
    slug: str
    name: str
    protocol: ProtocolRef
    reported_car_target: str | None
    notes: str
    rules: list[RuleOut]
    steps: list[ProtocolStepOut]
    citations: list[CitationOut]


class InstitutionList(_Out):
    institutions: list[InstitutionListItem]
