"""What a recommendation is asked for: the validated inputs shared by the API, the bedside wizard,
the pharmacists' test patients and the seed data (docs/api.md, request body).

Each limit is declared once, in `engine.limits`, and applied below as an annotation on the request model:
the model checks it and its JSON Schema (so the OpenAPI document) states it. Pure (pydantic, no Django), so
every layer can import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    Strict,
    ValidationError,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from engine import limits
from engine.data import PatientInputs, ToxicityGrade
from engine.limits import Limit
from engine.notation import plain_decimal
from engine.vocabulary import CarTarget, Toxicity
from engine.weights import weight_to_gram

# Far beyond any weight: left as it is (the range check refuses it) rather than quantized at huge precision.
_QUANTIZABLE_BELOW = Decimal(10) ** 9


def weight_kg_quantize(value: Decimal) -> Decimal:
    """A weight in kg to the gram, ROUND_HALF_UP (engine.weights), as a plain number: 19.958064 -> 19.958,
    20.0000 -> 20. Every place a weight is typed or sent in kg (API, bedside form, test patients) uses this
    before its range check (engine.limits.WEIGHT_KG, api.md), so a weight converted from pounds is accepted
    and the same everywhere."""
    # copy_abs, not abs(): abs() rounds in the context and overflows on 1E+999999999 (a 500 before).
    if not value.is_finite() or value.copy_abs() >= _QUANTIZABLE_BELOW:
        return value
    return plain_decimal(weight_to_gram(value))


def _json_number(value: Any) -> Decimal:
    # JSON is parsed with floats as Decimal; a bool is an int in Python, so refuse it explicitly.
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ValueError("must be a number")
    return Decimal(value)


def _json_whole_number(value: Any) -> Any:
    # JSON does not tell 3 from 3.0 (JSON Schema's "integer" matches both), so neither does the API. A bool
    # or a fraction stays what it is and is refused as not a whole number; beyond 18 digits nothing is
    # converted (and the range check refuses it).
    if isinstance(value, Decimal) and value.is_finite() and value.adjusted() < 18 and value == value.to_integral():
        return int(value)
    return value


Number = Annotated[Decimal, BeforeValidator(_json_number), WithJsonSchema({"type": "number"})]
WholeNumber = Annotated[int, Strict(), BeforeValidator(_json_whole_number)]
Flag = Annotated[bool, Strict()]


def _in_range(value: Decimal | int, low: int | Decimal, high: int, unit: str = "") -> None:
    if not low <= value <= high:
        suffix = f" {unit}" if unit else ""
        raise ValueError(f"must be from {low} to {high}{suffix}")


@dataclass(frozen=True, slots=True)
class Bounds:
    """An `engine.limits.Limit` on a request field: from `low` to `high` (and, for a decimal, at most
    `decimals` places), checked on input and stated in the JSON Schema as minimum, maximum and multipleOf."""

    limit: Limit
    decimals_note: str = ""

    def check(self, value: Decimal | int) -> Decimal | int:
        limit = self.limit
        _in_range(value, limit.low, limit.high, limit.unit)
        if limit.decimals is None or not isinstance(value, Decimal):
            return value
        # Precision of the value, not of its spelling: 8.50 has 1 decimal, and 1E-16384 (which PostgreSQL
        # cannot store) has 16384. The plain value is what is stored and echoed.
        value = plain_decimal(value)
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > limit.decimals:
            raise ValueError(f"must have at most {_places(limit)}{self.decimals_note}")
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.update(minimum=self.limit.low, maximum=self.limit.high)
        if self.limit.decimals is not None:
            json_schema["multipleOf"] = Decimal(1).scaleb(-self.limit.decimals)
        return json_schema


@dataclass(frozen=True, slots=True)
class ItemCount:
    """An `engine.limits.Count` on a list: `low` to `high` items, counted before any item is validated: a
    long list costs one error, not one per item (a 20,000-item list would otherwise tie up a worker)."""

    count: limits.Count

    def check(self, value: Any) -> Any:
        count = self.count
        if isinstance(value, list) and not count.low <= len(value) <= count.high:
            raise ValueError(f"must list {count.low} to {count.high} {count.noun}")
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.update(minItems=self.count.low, maxItems=self.count.high)
        return json_schema


@dataclass(frozen=True, slots=True)
class OncePerValue:
    """A list in which each item's `key` takes any of `values` at most once. JSON Schema states it with
    `contains` and `maxContains` (2020-12) for each value."""

    key: str
    values: tuple[str, ...]
    message: str

    def check(self, items: list[Any]) -> list[Any]:
        keys = [getattr(item, self.key) for item in items]
        if len(set(keys)) != len(keys):
            raise ValueError(self.message)
        return items

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["allOf"] = [
            {
                "contains": {"properties": {self.key: {"const": value}}, "required": [self.key]},
                "minContains": 0,
                "maxContains": 1,
            }
            for value in self.values
        ]
        return json_schema


# The request's limits (docs/api.md), declared in engine.limits.
# Any number of decimals: a weight is quantized to the gram before this check (weight_kg_quantize).
WEIGHT_KG = Bounds(limits.WEIGHT_KG)
AGE_YEARS = Bounds(limits.AGE_YEARS)
TOXICITY_GRADE = Bounds(limits.TOXICITY_GRADE)
TOXICITY_COUNT = ItemCount(limits.TOXICITIES)
TOXICITY_TYPE_ONCE = OncePerValue("type", tuple(Toxicity), "each toxicity type may appear only once")
PRIOR_TOCILIZUMAB_DOSES = Bounds(limits.PRIOR_TOCILIZUMAB_DOSES)
DAYS_SINCE_INFUSION = Bounds(limits.DAYS_SINCE_INFUSION)
CREATININE_CLEARANCE_ML_MIN = Bounds(limits.CREATININE_CLEARANCE_ML_MIN)


def _span(limit: Limit) -> str:
    """ "1 to 150 kg", "0 to 10": the range as the field descriptions state it."""
    return f"{limit.low} to {limit.high}" + (f" {limit.unit}" if limit.unit else "")


def _places(limit: Limit) -> str:
    return "1 decimal place" if limit.decimals == 1 else f"{limit.decimals} decimal places"


class ToxicityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Toxicity = Field(description="CRS, ICANS or carHLH")
    grade: Annotated[WholeNumber, TOXICITY_GRADE] = Field(
        description="ASTCT grade (CRS, ICANS) or clinician-entered severity (carHLH), "
        f"{limits.TOXICITY_GRADE.low}-{limits.TOXICITY_GRADE.high}"
    )


class RecommendationRequest(BaseModel):
    """POST /api/v1/recommendations. Weight is in kg only; there is no pounds input."""

    model_config = ConfigDict(extra="forbid", title="RecommendationRequest")

    # To the gram first (api.md), then the range: 0.9996 kg is 1 kg, 150.0004 kg is 150 kg; 2E+1 echoes as 20.
    weight_kg: Annotated[Number, AfterValidator(weight_kg_quantize), WEIGHT_KG] = Field(
        description=f"{_span(limits.WEIGHT_KG)} (kg only). Any number of decimals; quantized to the gram "
        "(0.001 kg, ROUND_HALF_UP) before the range check, and echoed quantized"
    )
    age_years: Annotated[Number, AGE_YEARS] = Field(
        description=f"{limits.AGE_YEARS.low} to {limits.AGE_YEARS.high}, at most {_places(limits.AGE_YEARS)}"
    )
    toxicities: Annotated[list[ToxicityIn], TOXICITY_COUNT, TOXICITY_TYPE_ONCE] = Field(
        description=f"{limits.TOXICITIES.low} to {limits.TOXICITIES.high} items, each type at most once"
    )
    prior_tocilizumab_doses: Annotated[WholeNumber, PRIOR_TOCILIZUMAB_DOSES] = Field(
        description=_span(limits.PRIOR_TOCILIZUMAB_DOSES)
    )
    prior_steroids: Flag = Field(description="true when steroids were given or are being started now")
    car_target: CarTarget = CarTarget.OTHER
    days_since_infusion: Annotated[WholeNumber, DAYS_SINCE_INFUSION] | None = Field(
        default=None, description=_span(limits.DAYS_SINCE_INFUSION)
    )
    fever: Flag | None = None
    hypotension: Flag | None = None
    late_onset_isolated: Flag | None = Field(default=None, description="carHLH arising late, without active CRS")
    thrombocytopenia_or_coagulopathy: Flag = False
    concurrent_tnf_blocker: Flag = False
    ecoli_protein_hypersensitivity: Flag = False
    active_infection: Flag = False
    creatinine_clearance_ml_min: Annotated[Number, CREATININE_CLEARANCE_ML_MIN] | None = Field(
        default=None,
        description=f"{_span(CREATININE_CLEARANCE_ML_MIN.limit)}, at most {_places(CREATININE_CLEARANCE_ML_MIN.limit)}",
    )
    institution: str | None = Field(default=None, description="institution slug; absent = every institution")

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
    # Messages collected in dicts (ordered sets), so collecting stays linear in the number of errors.
    errors: dict[str, dict[str, None]] = {}
    for item in error.errors():
        location = [str(p) for p in item["loc"]]
        field = location[0] if location else "body"
        detail = _messages(item)
        if len(location) > 1:
            nested = location[1:]
            if nested[0].isdigit():
                nested[0] = f"item {int(nested[0]) + 1}"
            detail = f"{' '.join(nested)}: {detail}"
        errors.setdefault(field, {})[detail] = None
    return {field: list(details) for field, details in errors.items()}
