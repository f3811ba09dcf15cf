"""FHIR R4 MedicationRequest and Dosage built from engine steps (the `engine.present.step_dict` shape).

Used for both the FHIR export of a stored assessment (`GET /api/v1/assessments/{id}/fhir`) and the
corrected order a CDS Hooks card suggests, so both say the same thing.

What is expressed, and how (R4; codes and systems as the FHIR specification names them):
- one Dosage per step and route: a step offering IV or subcut gives one MedicationRequest per route,
  so every order names exactly one route (SNOMED CT 47625008 intravenous, 34206005 subcutaneous);
- `timing.repeat` = once every `interval_hours` h, only when the protocol states an interval. Where
  it states none, there is no timing and no per-dose amount: the text says "frequency not specified
  by this protocol - confirm with pharmacy", and only the per-day maximum is expressed;
- `doseAndRate`: `ordered` = the protocol's amount per dose in its basis (mg/kg when per kg; a per-day
  basis with an interval is divided by the doses a day), `calculated` = the mg dose after rounding
  and caps (http://terminology.hl7.org/CodeSystem/dose-rate-type);
- `maxDosePerAdministration` = the most this order gives in one dose (the step's per-dose amount,
  already within the protocol's per-dose cap); `maxDosePerPeriod` = the most per day (the step's
  per-day amount, or its escalation ceiling, already within the per-day cap), per 1 d;
- units are UCUM (http://unitsofmeasure.org): mg, mg/kg, d;
- the medication is `medicationCodeableConcept.text` "anakinra" alone: no medication code has been
  verified for this service, so none is sent.
Amounts stay Decimal; the JSON encoder writes them as exact numbers.
"""

from __future__ import annotations

import copy
import uuid
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from cds_hooks.fhir_read import ROUTE_CODES, ROUTE_DISPLAYS, SNOMED, UCUM
from engine import notation
from engine.vocabulary import Route

DOSE_RATE_TYPE = "http://terminology.hl7.org/CodeSystem/dose-rate-type"
DOSE_RATE_DISPLAYS = {"ordered": "Ordered", "calculated": "Calculated"}
MEDICATION_TEXT = "anakinra"
RECOMMENDED_STATUSES = ("indicated", "consider")
HOURS_PER_DAY = 24
ORDERED_QUANTUM = Decimal("0.001")
SUBJECT_DISPLAY = "Patient not identified: Anakinra CDS stores no patient identifiers"
DECISION_SUPPORT_NOTE = "Decision support only: the prescriber and a pharmacist verify every order."


def _plain(value: Decimal) -> Decimal:
    """No trailing zeros and never an exponent (Decimal("1E+2") would be written as 1E+2)."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def _quantity(value: Decimal | int, code: str) -> dict[str, Any]:
    return {"value": _plain(Decimal(value)), "unit": code, "system": UCUM, "code": code}


def _dose(low: Decimal, high: Decimal, code: str) -> dict[str, Any]:
    if low == high:
        return {"doseQuantity": _quantity(low, code)}
    return {"doseRange": {"low": _quantity(low, code), "high": _quantity(high, code)}}


def _rate_type(code: str) -> dict[str, Any]:
    return {"coding": [{"system": DOSE_RATE_TYPE, "code": code, "display": DOSE_RATE_DISPLAYS[code]}]}


def route_concept(route: Route) -> dict[str, Any]:
    return {
        "coding": [{"system": SNOMED, "code": ROUTE_CODES[route], "display": ROUTE_DISPLAYS[route]}],
        "text": notation.ROUTE_WORDS[route],
    }


def _doses_per_day(step: dict[str, Any]) -> int | None:
    interval = step["interval_hours"]
    return None if interval is None else HOURS_PER_DAY // interval


def ordered_per_dose(step: dict[str, Any]) -> tuple[Decimal, Decimal, str] | None:
    """The protocol's amount for one dose, in its own unit (mg/kg or mg); None without an interval."""
    basis = step["dose_basis"]
    unit = "mg/kg" if basis.startswith("mg/kg") else "mg"
    low, high = Decimal(step["amount"]["low"]), Decimal(step["amount"]["high"])
    if basis.endswith("/dose"):
        return low, high, unit
    count = _doses_per_day(step)
    if count is None:
        return None
    return (
        (low / count).quantize(ORDERED_QUANTUM, rounding=ROUND_HALF_UP),
        (high / count).quantize(ORDERED_QUANTUM, rounding=ROUND_HALF_UP),
        unit,
    )


def _max_per_day(step: dict[str, Any], per_dose_high: Decimal | None) -> Decimal:
    count = _doses_per_day(step)
    per_day = per_dose_high * count if per_dose_high is not None and count else Decimal(step["per_day_mg"]["high"])
    ceiling = step["max_escalation_per_day_mg"]
    return max(per_day, Decimal(ceiling)) if ceiling is not None else per_day


def dosage(step: dict[str, Any], *, route: Route, per_dose_mg: Decimal | None = None) -> dict[str, Any]:
    """One Dosage for one step by one route; `per_dose_mg` narrows a per-dose range to one amount."""
    per_dose = step["per_dose_mg"]
    low = high = None
    if per_dose is not None:
        low, high = Decimal(per_dose["low"]), Decimal(per_dose["high"])
        if per_dose_mg is not None:
            low = high = per_dose_mg
    text = step["order_text"]
    if len(step["routes"]) > 1:
        text += f"; this order: {notation.ROUTE_WORDS[route]}"
    if per_dose_mg is not None and per_dose is not None and per_dose["low"] != per_dose["high"]:
        text += f"; this order: {notation.amount(per_dose_mg, 'mg')} per dose"
    result: dict[str, Any] = {"text": text}
    if step["interval_hours"] is not None:
        result["timing"] = {"repeat": {"frequency": 1, "period": step["interval_hours"], "periodUnit": "h"}}
    result["route"] = route_concept(route)
    ordered = ordered_per_dose(step)
    if low is not None and high is not None and ordered is not None:
        # The mg dose first: a reader that takes the first dose takes what is drawn up, not the mg/kg.
        result["doseAndRate"] = [
            {"type": _rate_type("calculated"), **_dose(low, high, "mg")},
            {"type": _rate_type("ordered"), **_dose(*ordered)},
        ]
        result["maxDosePerAdministration"] = _quantity(high, "mg")
    result["maxDosePerPeriod"] = {
        "numerator": _quantity(_max_per_day(step, high), "mg"),
        "denominator": _quantity(1, "d"),
    }
    return result


def corrected_request(
    draft: dict[str, Any], step: dict[str, Any], *, route: Route, per_dose_mg: Decimal
) -> dict[str, Any]:
    """The drafted MedicationRequest with its dosage replaced by the protocol's; everything else kept
    (same id, so the EHR updates its own draft). The narrative described the old dose, so it goes."""
    corrected = copy.deepcopy(draft)
    corrected.pop("text", None)
    new_dosage = dosage(step, route=route, per_dose_mg=per_dose_mg)
    old = next((d for d in draft.get("dosageInstruction") or [] if isinstance(d, dict)), {})
    old_repeat = (old.get("timing") or {}).get("repeat") if isinstance(old.get("timing"), dict) else None
    if isinstance(old_repeat, dict) and "boundsPeriod" in old_repeat and "timing" in new_dosage:
        new_dosage["timing"]["repeat"]["boundsPeriod"] = old_repeat["boundsPeriod"]
    corrected["dosageInstruction"] = [new_dosage]
    return corrected


# --- A stored assessment as a Bundle of proposals ---------------------------------------------------


def _notes(recommendation: dict[str, Any], step: dict[str, Any]) -> list[dict[str, str]]:
    institution = recommendation["institution"]["name"]
    protocol = recommendation["protocol"]
    texts = [
        f"{institution} protocol, version {protocol['version']}: {recommendation['status'].replace('_', ' ')}. "
        + " ".join(f"{reason}." for reason in recommendation["reasons"]),
        f"{step['name']}: " + "; ".join(step["arithmetic"]),
    ]
    texts.extend(step["cap_notes"])
    if step["rounding"] is not None and step["rounding"]["note"]:
        texts.append(step["rounding"]["note"])
    for label, value in (("Duration", step["duration"]), ("Taper", step["taper"]), ("Note", step["notes"])):
        if value:
            texts.append(f"{label}: {value}")
    citations = recommendation["citations"] + [c for c in step["citations"] if c not in recommendation["citations"]]
    if citations:
        texts.append("Citations: " + "; ".join(c["label"] + (f" {c['url']}" if c["url"] else "") for c in citations))
    texts.append(DECISION_SUPPORT_NOTE)
    return [{"text": text} for text in texts if text]


def medication_request(
    *,
    resource_id: str,
    recommendation: dict[str, Any],
    step: dict[str, Any],
    route: Route,
    authored_on: datetime,
    group_id: str,
    protocol_url: str,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": resource_id,
        "status": "draft",
        "intent": "proposal",
        "groupIdentifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{group_id}"},
        "medicationCodeableConcept": {"text": MEDICATION_TEXT},
        "subject": {"display": SUBJECT_DISPLAY},
        "authoredOn": authored_on.isoformat(),
        "note": _notes(recommendation, step),
        "dosageInstruction": [dosage(step, route=route)],
    }
    if protocol_url:
        resource["instantiatesUri"] = [protocol_url]
    return resource


def assessment_bundle(
    *, assessment_id: uuid.UUID, created_at: datetime, recommendations: list[dict[str, Any]], protocol_urls: dict
) -> dict[str, Any]:
    """A `collection` Bundle: one draft proposal per recommended step (indicated or consider) and route.

    Steps of not-indicated or contraindicated recommendations are not proposed. `protocol_urls` maps an
    institution slug to the absolute URL of its protocol page."""
    entries = []
    for recommendation in recommendations:
        if recommendation["status"] not in RECOMMENDED_STATUSES:
            continue
        slug = recommendation["institution"]["slug"]
        for index, step in enumerate(recommendation["steps"]):
            for route_value in step["routes"]:
                route = Route(route_value)
                resource_id = str(uuid.uuid5(assessment_id, f"{slug}/{index}/{route.value}"))
                entries.append(
                    {
                        "fullUrl": f"urn:uuid:{resource_id}",
                        "resource": medication_request(
                            resource_id=resource_id,
                            recommendation=recommendation,
                            step=step,
                            route=route,
                            authored_on=created_at,
                            group_id=str(assessment_id),
                            protocol_url=protocol_urls.get(slug, ""),
                        ),
                    }
                )
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(assessment_id),
        "type": "collection",
        "timestamp": created_at.isoformat(),
    }
    if entries:
        bundle["entry"] = entries
    return bundle
