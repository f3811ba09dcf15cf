"""The services this CDS Hooks server offers, as listed by discovery (`GET /cds-services`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LOINC_WEIGHT_QUERY = "http://loinc.org|29463-7"
WEIGHT_SEARCH_COUNT = "5"

# Prefetch templates (CDS Hooks prefetch query restrictions: reads, token equality, _sort, _count).
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "weight": (
        "Observation?patient={{context.patientId}}"
        f"&code={LOINC_WEIGHT_QUERY}&_sort=-date&_count={WEIGHT_SEARCH_COUNT}"
    ),
    "allergies": "AllergyIntolerance?patient={{context.patientId}}",
}

USAGE_REQUIREMENTS = (
    "Anakinra MedicationRequests (named anakinra or Kineret, or carrying a medication code listed in the EHR's "
    "registration) in FHIR R4. Needs the patient's body weight (LOINC 29463-7) in kg, g or [lb_av], "
    "prefetched or readable with fhirAuthorization (otherwise HTTP 412). The EHR is registered by its JWT "
    "issuer, with the institution protocol its orders are checked against (per tenant, when it sends one)."
)


@dataclass(frozen=True, slots=True)
class CdsService:
    id: str
    hook: str
    title: str
    description: str

    def discovery_entry(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "title": self.title,
            "description": self.description,
            "id": self.id,
            "prefetch": dict(PREFETCH),
            "usageRequirements": USAGE_REQUIREMENTS,
        }


ORDER_SELECT = CdsService(
    id="anakinra-order-select",
    hook="order-select",
    title="Anakinra dose check",
    description=(
        "Checks a selected anakinra order against the institution's published protocol for the patient's "
        "weight: per-dose and per-day maximums, the protocol dose with its arithmetic, caps and citations, "
        "and a corrected order when the draft differs. Does not assess the indication: the toxicity and "
        "grade are entered in the bedside wizard it links to."
    ),
)
ORDER_SIGN = CdsService(
    id="anakinra-order-sign",
    hook="order-sign",
    title="Anakinra dose check before signing",
    description=("The same check as anakinra-order-select, on every anakinra order about to be signed."),
)
SERVICES = {service.id: service for service in (ORDER_SELECT, ORDER_SIGN)}


def discovery_document() -> dict[str, Any]:
    return {"services": [service.discovery_entry() for service in SERVICES.values()]}
