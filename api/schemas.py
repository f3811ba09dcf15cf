"""The v1 request and response schemas (docs/api.md). The OpenAPI document is generated
from these models, and requests are validated by them: one source for both."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    WithJsonSchema,
)

from engine.inputs import Flag, Number, RecommendationRequest, ToxicityIn, WholeNumber  # noqa: F401 (re-exported)
from engine.vocabulary import Cap, CarTarget, DoseBasis, Route, Severity, Status, StepKind, Toxicity, WarningCode

# --- Response models: each new answer is checked against them before it is sent (api.views.conforming) ---

Amount = Annotated[Decimal, WithJsonSchema({"type": "number"})]
# The engine's words as an inline list of values (a Literal of the enum's members), as the contract
# has always stated them, rather than a reference to a shared schema.
StepKindOut = Literal[*StepKind]
RouteOut = Literal[*Route]
DoseBasisOut = Literal[*DoseBasis]
CapOut = Literal[*Cap]


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
    kind: StepKindOut
    name: str
    applies_to: list[Toxicity]
    grades: GradeBand
    routes: list[RouteOut]
    interval_hours: int | None
    interval_is_maximum: bool
    dose_basis: DoseBasisOut
    amount: Range
    calculated_per_dose_mg: Range | None
    per_dose_mg: Range | None
    calculated_per_day_mg: Range
    per_day_mg: Range
    max_single_dose_mg: Amount | None
    max_daily_dose_mg: Amount | None
    max_escalation_per_day_mg: Amount | None
    capped_by: list[CapOut]
    # Absent from answers stored before clinical rules revision 2 (engine.revisions).
    max_escalation_capped_by: list[CapOut] = []
    escalation_text: str = ""
    cap_notes: list[str]
    rounding: RoundingOut | None
    volume_ml: Range | None
    concentration_mg_per_ml: Amount
    volume_note: str
    arithmetic: list[str]
    order_text: str
    duration: str
    taper: str
    notes: str
    citations: list[CitationOut]


class WarningOut(_Out):
    code: Literal[*WarningCode]
    severity: Literal[*Severity]
    text: str


class InstitutionOut(_Out):
    slug: str
    name: str


class ProtocolRef(_Out):
    id: int
    version: int
    published_at: datetime | None
    approved_by: str
    # True when a local pharmacist approved the version; false when it came approved in the reviewed data
    # file (approved_by then holds that file's statement). Absent from assessments stored before it existed.
    approved_locally: bool = False


class RecommendationOut(_Out):
    institution: InstitutionOut
    protocol: ProtocolRef
    status: Literal[*Status]
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
    # The engine's clinical rules the answer was computed under (1 for answers stored before the field
    # existed); `rules_note` says what those rules did differently, empty for the current ones.
    rules_revision: int
    rules_note: str
    inputs: InputsOut
    recommendations: list[RecommendationOut]


class ErrorResponse(_Out):
    errors: dict[str, list[str]]


class RuleOut(_Out):
    applies_to: list[Toxicity]
    min_grade: int
    max_grade: int
    min_prior_tocilizumab_doses: int
    requires_steroids: bool
    result_status: Literal[Status.INDICATED, Status.CONSIDER]
    summary: str
    first_line_if_isolated_late_onset: bool
    first_line_summary: str
    repeat_tocilizumab_from_doses: int | None
    repeat_tocilizumab_note: str


class ComparisonThresholdsOut(_Out):
    reported_max_mg_per_kg_per_day: Amount
    reported_max_basis: str
    usual_daily_cap_mg: Amount
    usual_daily_cap_basis: str
    citation: CitationOut | None


class ProtocolStepOut(_Out):
    kind: StepKindOut
    name: str
    applies_to: list[Toxicity]
    grades: GradeBand
    routes: list[RouteOut]
    interval_hours: int | None
    interval_is_maximum: bool
    dose_basis: DoseBasisOut
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
    comparison_thresholds: ComparisonThresholdsOut | None
    steps: list[ProtocolStepOut]
    citations: list[CitationOut]


class InstitutionList(_Out):
    institutions: list[InstitutionListItem]
