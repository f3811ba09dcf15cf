"""What a recommendation is asked for: the validated inputs shared by the API, the bedside wizard,
the pharmacists' test patients and the seed data (../shared/spec/api.md, request body).

Pure (pydantic, no Django), so every layer can import it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    WithJsonSchema,
    field_validator,
)

from engine.data import PatientInputs, ToxicityGrade
from engine.notation import plain_decimal
from engine.vocabulary import CarTarget, Toxicity
from engine.weights import weight_to_gram

# Far beyond any weight: left as it is (the range check refuses it) rather than quantized at huge precision.
_QUANTIZABLE_BELOW = Decimal(10) ** 9


def weight_kg_quantize(value: Decimal) -> Decimal:
    """A weight in kg to the gram, ROUND_HALF_UP (engine.weights), as a plain number: 19.958064 -> 19.958,
    20.0000 -> 20. Every place a weight is typed or sent in kg (API, bedside form, test patients) uses this
    before its 1-150 kg check (api.md), so a weight converted from pounds is accepted and the same everywhere."""
    if not value.is_finite() or abs(value) >= _QUANTIZABLE_BELOW:
        return value
    return plain_decimal(weight_to_gram(value))


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

    weight_kg: Number = Field(
        description="1 to 150 kg (kg only). Any number of decimals; quantized to the gram (0.001 kg, ROUND_HALF_UP) "
        "before the range check, and echoed quantized"
    )
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
        # To the gram first (api.md), then the range: 0.9996 kg is 1 kg, 150.0004 kg is 150 kg; 2E+1 echoes as 20.
        value = weight_kg_quantize(value)
        _in_range(value, 1, 150, "kg")
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


def _messages(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "This field is required."
    if kind == "extra_forbidden":
        return "Unknown field."
    if kind == "value_error":
        return str(error["ctx"]["error"])
    if kind in ("bool_type", "bool_parsing"):
        return "must be true or false"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return "must be a whole number"
    if kind == "list_type":
        return "must be a list"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be an object"
    if kind == "enum":
        return f"must be one of {error['ctx']['expected']}"
    if kind == "string_type":
        return "must be a string"
    return str(error["msg"])


def validation_errors(error: ValidationError) -> dict[str, list[str]]:
    """Every problem at once, keyed by top-level field; nested positions go in the message."""
    errors: dict[str, list[str]] = {}
    for item in error.errors():
        location = [str(p) for p in item["loc"]]
        field = location[0] if location else "body"
        detail = _messages(item)
        if len(location) > 1:
            nested = location[1:]
            if nested[0].isdigit():
                nested[0] = f"item {int(nested[0]) + 1}"
            detail = f"{' '.join(nested)}: {detail}"
        errors.setdefault(field, [])
        if detail not in errors[field]:
            errors[field].append(detail)
    return errors
