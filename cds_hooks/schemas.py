"""Request bodies the EHR sends (CDS Hooks 2.0), validated before anything else reads them.

Unknown fields are allowed (the specification reserves `extension`, and hooks gain optional context
fields over time); required ones and their types are checked. In feedback, null and empty values
(`null`, `""`, `[]`, `{}`) are refused, as CDS Hooks prohibits them ("Null and empty JSON elements"):
an empty `overrideReason` says nothing, and must not be recorded as if it said "no reason".
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class FhirAuthorization(_Open):
    access_token: str = Field(min_length=1)
    token_type: Literal["Bearer"]
    expires_in: int
    scope: str
    subject: str


class OrderContext(_Open):
    userId: str
    patientId: str
    encounterId: str | None = None
    selections: list[str] | None = None
    draftOrders: dict[str, Any]

    @field_validator("draftOrders")
    @classmethod
    def _bundle(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("resourceType") != "Bundle":
            raise ValueError("must be a FHIR Bundle")
        return value


class HookRequest(_Open):
    hook: str
    hookInstance: str = Field(min_length=1)
    fhirServer: str | None = None
    fhirAuthorization: FhirAuthorization | None = None
    context: OrderContext
    prefetch: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _server_with_authorization(self) -> HookRequest:
        if self.fhirAuthorization is not None and not self.fhirServer:
            raise ValueError("fhirAuthorization needs fhirServer")
        return self


class Coding(_Open):
    system: str
    code: str
    display: str | None = None


class OverrideReason(_Open):
    reason: Coding | None = None
    userComment: str | None = Field(default=None, max_length=2000)


class AcceptedSuggestion(_Open):
    id: str


class FeedbackItem(_Open):
    card: str = Field(min_length=1, max_length=64)
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: AwareDatetime

    @model_validator(mode="after")
    def _accepted_names_suggestions(self) -> FeedbackItem:
        if self.outcome == "accepted" and not self.acceptedSuggestions:
            raise ValueError("an accepted outcome needs acceptedSuggestions")
        return self


class FeedbackRequest(_Open):
    # Each entry is checked on its own (feedback_entries): a bad one does not lose the others.
    feedback: list[Any] = Field(min_length=1, max_length=100)


EMPTY_VALUE = "must not be null or empty (CDS Hooks: leave an absent value out)"


def _empty_paths(value: Any, path: str) -> list[str]:
    if value is None or value == "" or value == [] or value == {}:
        return [path]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _empty_paths(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in _empty_paths(item, f"{path}.{index}")]
    return []


def feedback_entries(request: FeedbackRequest) -> tuple[list[tuple[int, FeedbackItem]], dict[str, list[str]]]:
    """The valid feedback entries with their index in the request, and every problem of the others."""
    valid: list[tuple[int, FeedbackItem]] = []
    errors: dict[str, list[str]] = {}
    for index, raw in enumerate(request.feedback):
        where = f"feedback.{index}"
        problems: dict[str, list[str]] = {path: [EMPTY_VALUE] for path in _empty_paths(raw, where)}
        try:
            item = FeedbackItem.model_validate(raw)
        except ValidationError as error:
            for path, messages in errors_of(error, prefix=where).items():
                problems.setdefault(path, []).extend(messages)
        if problems:
            errors.update(problems)
        else:
            valid.append((index, item))
    return valid, errors


def errors_of(error: ValidationError, *, prefix: str = "") -> dict[str, list[str]]:
    """Every problem, keyed by its dotted location (under `prefix`, when given)."""
    found: dict[str, list[str]] = {}
    for item in error.errors():
        where = ".".join([*([prefix] if prefix else []), *(str(p) for p in item["loc"])]) or "body"
        message = str(item["ctx"]["error"]) if item["type"] == "value_error" else item["msg"]
        found.setdefault(where, []).append(message)
    return found
