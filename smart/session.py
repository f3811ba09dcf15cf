"""What a SMART launch keeps, all of it in the session (server-side) and nowhere else.

- `SMART_KEY` marks a session begun by a launch from a registered EHR: {"registration": <issuer key>}.
  No patient in it. It decides the cookie attributes and the frame ancestors (`smart.middleware`) and
  lasts until logout.
- `PENDING_KEY`: authorization requests waiting for their callback, by `state` (the PKCE verifier, the
  nonce, the endpoints). At most PENDING_MAX, each for PENDING_MAX_SECONDS.
- `PATIENT_KEY`: the launch's patient context: the patient id, the access token and what was read.
  Dropped when the wizard's result is stored, when the wizard starts a new patient, at logout, and at
  `expires_at` (at most CONTEXT_MAX_SECONDS after the launch, sooner if the token expires sooner); the
  session itself is set to expire then too, so an abandoned session's row holds nothing past it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from smart.prefill import Reading, Status

SMART_KEY = "smart"
PENDING_KEY = "smart_pending"
PATIENT_KEY = "smart_patient"
CONTEXT_MAX_SECONDS = 60 * 60
PENDING_MAX_SECONDS = 10 * 60
PENDING_MAX = 5


@dataclass(frozen=True, slots=True)
class PendingAuthorization:
    registration: str
    fhir_server: str
    ehr_launch: bool
    code_verifier: str
    nonce: str
    scope: str
    token_endpoint: str
    issuer: str | None
    jwks_uri: str | None
    created_at: float

    @classmethod
    def from_session(cls, data: dict[str, Any]) -> PendingAuthorization | None:
        try:
            return cls(**data)
        except TypeError:
            return None


@dataclass(frozen=True, slots=True)
class PatientContext:
    registration: str
    fhir_server: str
    patient: str
    access_token: str
    scope: str
    expires_at: float
    readings: tuple[Reading, ...] = ()
    banner_name: str = ""
    banner_birth_date: str = ""
    show_banner: bool = True
    draft_order: str = ""
    notes: tuple[str, ...] = field(default=())
    tenant: str = ""  # the token's `tenant` (which institution's protocol), for reading again
    observation_category: str = ""  # the Observation category the launch's scope allows ("" when unrestricted)

    def as_session(self) -> dict[str, Any]:
        data = asdict(self)
        data["readings"] = [asdict(reading) for reading in self.readings]
        data["notes"] = list(self.notes)
        return data

    @classmethod
    def from_session(cls, data: dict[str, Any]) -> PatientContext | None:
        """The context as stored; None for anything else (a session from another version of the app)."""
        try:
            readings = tuple(Reading(**{**r, "status": Status(r["status"])}) for r in data.get("readings", []))
            return cls(**{**data, "readings": readings, "notes": tuple(data.get("notes", ()))})
        except (TypeError, ValueError, KeyError):
            return None
