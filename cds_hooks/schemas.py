"""Request bodies the EHR sends (CDS Hooks 2.0), validated before anything else reads them.

Unknown fields are allowed (the specification reserves `extension`, and hooks gain optional context
fields over time); required ones and their types are checked.
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
    feedback: list[FeedbackItem] = Field(min_length=1, max_length=100)


def errors_of(error: ValidationError) -> dict[str, list[str]]:
    """Every problem, keyed by its dotted location."""
    found: dict[str, list[str]] = {}
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "body"
        message = str(item["ctx"]["error"]) if item["type"] == "value_error" else item["msg"]
        found.setdefault(where, []).append(message)
    return found
