"""The shape of `protocols/data/clinical_data.toml`, checked before anything is written."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from engine import limits
from engine.inputs import RecommendationRequest
from engine.vocabulary import INTERVAL_HOURS_CHOICES, DoseBasis, Route, StepKind, Toxicity

Key = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]+$", max_length=60)]
Text = Annotated[str, StringConstraints(strip_whitespace=True)]
Positive = Annotated[Decimal, Field(gt=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CitationEntry(_Strict):
    reference: Key
    locator: Text = ""


class RuleEntry(_Strict):
    toxicities: list[Toxicity] = Field(min_length=1)
    min_grade: int = Field(default=1, ge=limits.TOXICITY_GRADE.low, le=limits.TOXICITY_GRADE.high)
    min_prior_tocilizumab_doses: int = Field(
        default=0, ge=limits.RULE_TOCILIZUMAB_DOSES.low, le=limits.RULE_TOCILIZUMAB_DOSES.high
    )
    requires_steroids: bool = False
    result_status: Literal["indicated", "consider"] = "indicated"
    summary: Text = Field(min_length=1)
    first_line_if_isolated_late_onset: bool = False
    first_line_summary: Text = ""
    max_grade: int = Field(default=4, ge=limits.TOXICITY_GRADE.low, le=limits.TOXICITY_GRADE.high)
    repeat_tocilizumab_from_doses: int | None = Field(
        default=None,
        ge=limits.RULE_REPEAT_TOCILIZUMAB_FROM_DOSES.low,
        le=limits.RULE_REPEAT_TOCILIZUMAB_FROM_DOSES.high,
    )
    repeat_tocilizumab_note: Text = ""

    @model_validator(mode="after")
    def _consistent(self) -> RuleEntry:
        if self.min_grade > self.max_grade:
            raise ValueError("min_grade is above max_grade")
        if (self.repeat_tocilizumab_from_doses is None) != (not self.repeat_tocilizumab_note):
            raise ValueError("give both repeat_tocilizumab_from_doses and repeat_tocilizumab_note, or neither")
        return self


class ThresholdsEntry(_Strict):
    """The cross-center comparison amounts (clinical.md section 4) with their source."""

    reported_max_mg_per_kg_per_day: Positive
    reported_max_basis: Text = Field(min_length=1, max_length=200)
    usual_daily_cap_mg: Positive
    usual_daily_cap_basis: Text = Field(min_length=1, max_length=200)
    citation: CitationEntry


class StepEntry(_Strict):
    kind: StepKind
    name: Text = Field(min_length=1)
    toxicities: list[Toxicity] = Field(min_length=1)
    min_grade: int = Field(default=1, ge=limits.TOXICITY_GRADE.low, le=limits.TOXICITY_GRADE.high)
    max_grade: int = Field(default=4, ge=limits.TOXICITY_GRADE.low, le=limits.TOXICITY_GRADE.high)
    dose_basis: DoseBasis
    amount_low: Positive
    amount_high: Positive
    interval_hours: Literal[INTERVAL_HOURS_CHOICES] | None = None  # type: ignore[valid-type]
    interval_is_maximum: bool = False
    routes: list[Route] = Field(min_length=1)
    max_single_dose_mg: Positive | None = None
    max_daily_dose_mg: Positive | None = None
    escalation_ceiling_amount: Positive | None = None
    escalation_ceiling_basis: Literal["mg/kg/day", "mg/day"] | None = None
    rounding_increment_mg: Positive | None = None
    rounding_tolerance_percent: Annotated[Decimal, Field(gt=0, le=25)] | None = None
    duration: Text = ""
    taper: Text = ""
    notes: Text = ""
    citations: list[Key] = []

    @model_validator(mode="after")
    def _consistent(self) -> StepEntry:
        if self.amount_low > self.amount_high:
            raise ValueError("amount_low is above amount_high")
        if self.min_grade > self.max_grade:
            raise ValueError("min_grade is above max_grade")
        if DoseBasis(self.dose_basis).per_dose and self.interval_hours is None:
            raise ValueError(f"a {self.dose_basis} step needs interval_hours")
        if (self.escalation_ceiling_amount is None) != (self.escalation_ceiling_basis is None):
            raise ValueError("give both escalation_ceiling_amount and escalation_ceiling_basis, or neither")
        if (self.rounding_increment_mg is None) != (self.rounding_tolerance_percent is None):
            raise ValueError("give both rounding_increment_mg and rounding_tolerance_percent, or neither")
        return self


class ProtocolEntry(_Strict):
    slug: Key
    institution: Text = Field(min_length=1)
    short_name: Text = Field(min_length=1)
    location: Text = ""
    title: Text = Field(min_length=1)
    utilization: Text = Field(min_length=1)
    indications_summary: Text = Field(min_length=1)
    reported_car_target: Literal["", "CD19", "CD22", "CD19/CD22"] = ""
    concentration_mg_per_ml: Positive
    notes: Text = ""
    citations: list[CitationEntry] = Field(min_length=1)
    rules: list[RuleEntry] = Field(min_length=1)
    steps: list[StepEntry] = Field(min_length=1)
    # Absent here: the file's top-level values apply (and are part of the entry's fingerprint).
    comparison_thresholds: ThresholdsEntry | None = None
    label_reference: Key | None = None


class ReferenceEntry(_Strict):
    key: Key
    number: int | None = Field(default=None, ge=1)
    short_label: Text = Field(min_length=1)
    authors: Text = ""  # empty where the letter names none (reference 8, the FDA package insert)
    title: Text = ""
    journal: Text = ""
    year: int | None = Field(default=None, ge=1900, le=2100)
    volume: Text = ""
    issue: Text = ""
    pages: Text = ""
    doi: Annotated[str, StringConstraints(pattern=r"^(10\.\S+)?$")] = ""
    pmid: Annotated[str, StringConstraints(pattern=r"^([1-9][0-9]{0,9})?$")] = ""
    url: Text = ""
    note: Text = ""


class RegimenEntry(_Strict):
    """The regimen a study used, as data: shown with `protocol`'s answer as literature, never as an order."""

    protocol: Key
    dose_basis: DoseBasis
    amount_low: Positive
    amount_high: Positive
    interval_hours: Literal[INTERVAL_HOURS_CHOICES]  # type: ignore[valid-type]
    routes: list[Route] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> RegimenEntry:
        if self.amount_low > self.amount_high:
            raise ValueError("regimen: amount_low is above amount_high")
        return self


class StudyEntry(_Strict):
    key: Key
    label: Text = Field(min_length=1)
    label_as_printed: Text = ""
    study_type: Text = Field(min_length=1)
    population: Literal["pediatric", "adult"]
    population_summary: Text = Field(min_length=1)
    n_patients: int | None = Field(default=None, ge=1)
    product: Text = ""
    anakinra_use: Text = Field(min_length=1)
    dose_as_reported: Text = Field(min_length=1)
    response: Text = Field(min_length=1)
    toxicities: list[Toxicity] = Field(min_length=1)
    references: list[Key] = Field(min_length=1)
    regimen: RegimenEntry | None = None


class PatientCheckEntry(_Strict):
    """A test patient (protocols.ProtocolTestPatient): API inputs and the expected answer."""

    protocol: Key
    label: Text = Field(min_length=1, max_length=200)
    inputs: dict[str, Any]
    expected_status: Literal["indicated", "consider", "not_indicated", "contraindicated"]
    step: Text = ""
    per_dose_mg: tuple[Positive, Positive] | None = None
    per_day_mg: tuple[Positive, Positive] | None = None
    arithmetic: Text = ""

    @model_validator(mode="after")
    def _consistent(self) -> PatientCheckEntry:
        if "institution" in self.inputs:
            raise ValueError("inputs: leave out institution (the test patient belongs to its protocol)")
        try:
            RecommendationRequest.model_validate(self.inputs)
        except ValidationError as error:
            raise ValueError(f"inputs: {error.errors()[0]['loc']}: {error.errors()[0]['msg']}") from None
        if not self.step and (self.per_dose_mg or self.per_day_mg):
            raise ValueError("name the step the expected amounts belong to")
        if self.step and self.per_day_mg is None:
            raise ValueError("a named step needs per_day_mg")
        for bounds in (self.per_dose_mg, self.per_day_mg):
            if bounds and bounds[0] > bounds[1]:
                raise ValueError("an expected range has low above high")
        return self


class SeedFile(_Strict):
    schema_version: Literal[2]
    approval_source: Text = Field(min_length=1)
    # Shared by every protocol entry that does not give its own (each version stores them, under approval).
    comparison_thresholds: ThresholdsEntry | None = None
    label_reference: Key | None = None
    protocols: list[ProtocolEntry] = Field(min_length=1)
    references: list[ReferenceEntry] = Field(min_length=1)
    studies: list[StudyEntry] = Field(min_length=1)
    test_patients: list[PatientCheckEntry] = []

    @model_validator(mode="before")
    @classmethod
    def _shared_protocol_values(cls, data: Any) -> Any:
        """Each protocol entry carries the shared comparison amounts and label unless it gives its own."""
        if not isinstance(data, dict) or not isinstance(data.get("protocols"), list):
            return data
        shared = {key: data[key] for key in ("comparison_thresholds", "label_reference") if key in data}
        data = dict(data)
        data["protocols"] = [{**shared, **entry} if isinstance(entry, dict) else entry for entry in data["protocols"]]
        return data

    @model_validator(mode="after")
    def _cross_references(self) -> SeedFile:
        problems = []
        for name, keys in (
            ("protocol slug", [p.slug for p in self.protocols]),
            ("reference key", [r.key for r in self.references]),
            ("reference number", [r.number for r in self.references if r.number is not None]),
            ("study key", [s.key for s in self.studies]),
        ):
            duplicates = sorted({str(k) for k in keys if keys.count(k) > 1})
            if duplicates:
                problems.append(f"duplicate {name}: {', '.join(duplicates)}")
        known = {r.key for r in self.references}
        for protocol in self.protocols:
            cited = [c.reference for c in protocol.citations] + [k for s in protocol.steps for k in s.citations]
            if protocol.comparison_thresholds is not None:
                cited.append(protocol.comparison_thresholds.citation.reference)
            if protocol.label_reference is not None:
                cited.append(protocol.label_reference)
            problems += [f"{protocol.slug}: unknown reference {k}" for k in cited if k not in known]
        for study in self.studies:
            problems += [f"study {study.key}: unknown reference {k}" for k in study.references if k not in known]
        slugs = {p.slug for p in self.protocols}
        problems += [
            f"study {s.key}: regimen for unknown protocol {s.regimen.protocol}"
            for s in self.studies
            if s.regimen is not None and s.regimen.protocol not in slugs
        ]
        labels = [(t.protocol, t.label) for t in self.test_patients]
        problems += [
            f"test patient {t.label!r}: unknown protocol {t.protocol}"
            for t in self.test_patients
            if t.protocol not in slugs
        ]
        problems += [
            f"duplicate test patient {p}: {label}" for p, label in sorted({x for x in labels if labels.count(x) > 1})
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self
