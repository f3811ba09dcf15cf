"""FHIR R4 MedicationRequest and Dosage built from engine steps (the `engine.present.step_dict` shape).

Used for both the FHIR export of a stored assessment (`GET /api/v1/assessments/{id}/fhir`) and the
corrected order a CDS Hooks card suggests, so both say the same thing.

What is expressed, and how (R4; codes and systems as the FHIR specification names them):
- one Dosage per step and route: a step offering IV or subcut gives one MedicationRequest per route,
  so every order names exactly one route (SNOMED CT 47625008 intravenous, 34206005 subcutaneous);
- `timing.repeat` = once every `interval_hours` h, only when the protocol states an interval (with
  `asNeededBoolean` when the interval is a most-often, "no more often than every 6 hours"). Where it states none,
  there is no timing and no per-dose amount: the text says "frequency not specified by this protocol
  - confirm with pharmacy", and only the per-day maximum is expressed;
- `doseAndRate`: `calculated` = the mg dose after rounding and caps, listed first, then `ordered` =
  the protocol's amount per dose in its basis (mg/kg when per kg; a per-day basis with an interval is
  divided by the doses a day: `engine.order_check.ordered_per_dose`, the same numbers a draft's mg/kg
  dose is compared with) (http://terminology.hl7.org/CodeSystem/dose-rate-type);
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
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from cds_hooks.fhir_read import DOSE_RATE_TYPE, ROUTE_CODES, ROUTE_DISPLAYS, SNOMED, UCUM
from engine import notation, order_check
from engine.dosing import doses_per_day
from engine.vocabulary import DoseBasis, Route, StepKind

DOSE_RATE_DISPLAYS = {"ordered": "Ordered", "calculated": "Calculated"}
MEDICATION_TEXT = "anakinra"
RECOMMENDED_STATUSES = ("indicated", "consider")
# Identifies one proposal: "<assessment id>/<institution slug>/step-<n>/<route>".
PROPOSAL_IDENTIFIER_SYSTEM = "urn:anakinra-cds:assessment-proposal"
SUBJECT_DISPLAY = "Patient not identified: Anakinra CDS stores no patient identifiers"
DECISION_SUPPORT_NOTE = "Decision support only: the prescriber and a pharmacist verify every order."


def _quantity(value: Decimal | int, code: str) -> dict[str, Any]:
    return {"value": notation.plain_decimal(Decimal(value)), "unit": code, "system": UCUM, "code": code}


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


def ordered_per_dose(step: dict[str, Any]) -> tuple[Decimal, Decimal, str] | None:
    """The protocol's amount for one dose, in its own unit (mg/kg or mg); None without an interval."""
    basis = DoseBasis(step["dose_basis"])
    amounts = order_check.ordered_per_dose(
        dose_basis=basis,
        amount_low=Decimal(step["amount"]["low"]),
        amount_high=Decimal(step["amount"]["high"]),
        doses_per_day=doses_per_day(step["interval_hours"]),
    )
    if amounts is None:
        return None
    return *amounts, "mg/kg" if basis.per_kg else "mg"


def _max_per_day(step: dict[str, Any], per_dose_high: Decimal | None) -> Decimal:
    count = doses_per_day(step["interval_hours"])
    per_day = per_dose_high * count if per_dose_high is not None and count else Decimal(step["per_day_mg"]["high"])
    ceiling = step["max_escalation_per_day_mg"]
    return max(per_day, Decimal(ceiling)) if ceiling is not None else per_day


def taper_follows(steps: list[dict[str, Any]]) -> list[str | None]:
    """For each step, the name of the step a taper follows (the nearest earlier step that is not a
    taper, in the protocol's order); None for steps that are not tapers, or a taper with none before it."""
    found: list[str | None] = []
    current = None
    for step in steps:
        if step["kind"] == StepKind.TAPER:
            found.append(current)
        else:
            current = step["name"]
            found.append(None)
    return found


def _taper_text(follows: str | None) -> str:
    after = f'"{follows}"' if follows is not None else "the dosing it tapers"
    return f"taper: give after {after}, not together with it"


def dosage(
    step: dict[str, Any],
    *,
    route: Route,
    per_dose_mg: Decimal | None = None,
    follows: str | None = None,
    choices: tuple[str, ...] = (),
) -> dict[str, Any]:
    """One Dosage for one step by one route; `per_dose_mg` narrows a per-dose range to one amount.
    For a taper, `follows` names the step it comes after; `choices` are added to the text as they are."""
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
    # The steps are separate requests, so Dosage.sequence (an order within one request) cannot say this.
    if step["kind"] == StepKind.TAPER:
        text += f"; {_taper_text(follows)}"
    text += "".join(f"; {choice}" for choice in choices)
    result: dict[str, Any] = {"text": text}
    if step["interval_hours"] is not None:
        result["timing"] = {"repeat": {"frequency": 1, "period": step["interval_hours"], "periodUnit": "h"}}
        if step["interval_is_maximum"]:
            # "Up to every 6 hours" is a most-often, not a schedule. R4 Dosage.asNeededBoolean: "the
            # medication is only taken when needed within a specific dosing schedule", so once per 6 h
            # plus asNeeded is exactly "no more often than every 6 hours". Not frequencyMax: that is a
            # range of counts per period ("1 to 4 a day") and would not keep doses 6 h apart; not
            # periodMax: the protocol states no longest interval. The text keeps the protocol's words.
            result["asNeededBoolean"] = True
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


# What the corrected dose and schedule replace in the drafted Dosage: the dose, its caps, the schedule
# and its words. Everything else (site, method, sequence, instructions, extensions) is kept.
REPLACED_DOSAGE_FIELDS = {
    "text",
    "patientInstruction",
    "doseAndRate",
    "doseQuantity",
    "maxDosePerAdministration",
    "maxDosePerPeriod",
    "maxDosePerLifetime",
    "route",
    "asNeededBoolean",
    "asNeededCodeableConcept",
    "timing",
}
# Timing.repeat fields that state the schedule (replaced); the others (bounds[x], count, countMax,
# duration...) do not conflict with a new dose or interval and are kept.
SCHEDULE_REPEAT_FIELDS = {
    "frequency",
    "frequencyMax",
    "period",
    "periodMax",
    "periodUnit",
    "dayOfWeek",
    "timeOfDay",
    "when",
    "offset",
}
# Timing fields beside `repeat` that state the schedule too: exact times and a schedule code.
SCHEDULE_TIMING_FIELDS = {"event", "code", "repeat"}
DISPENSE_NOT_RECALCULATED = "the dispense quantity was removed, not recalculated"


def _merged_dosage(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    merged = {k: copy.deepcopy(v) for k, v in old.items() if k not in REPLACED_DOSAGE_FIELDS}
    merged.update(new)
    old_timing = old.get("timing") if isinstance(old.get("timing"), dict) else {}
    old_repeat = old_timing.get("repeat") if isinstance(old_timing.get("repeat"), dict) else {}
    kept_timing = {k: copy.deepcopy(v) for k, v in old_timing.items() if k not in SCHEDULE_TIMING_FIELDS}
    kept_repeat = {k: copy.deepcopy(v) for k, v in old_repeat.items() if k not in SCHEDULE_REPEAT_FIELDS}
    if "timing" in new:
        merged["timing"] = {**kept_timing, **new["timing"]}
        merged["timing"]["repeat"] = {**kept_repeat, **new["timing"]["repeat"]}
    return merged


def corrected_request(
    draft: dict[str, Any], step: dict[str, Any], *, route: Route, per_dose_mg: Decimal, follows: str | None = None
) -> dict[str, Any]:
    """The drafted MedicationRequest with its dose and schedule replaced by the protocol's; everything
    that does not conflict is kept (same id, so the EHR updates its own draft; the first Dosage's other
    fields, and its timing bounds and counts). The narrative described the old dose, so it goes; a
    dispense quantity was counted for the old dose, so it goes too (see DISPENSE_NOT_RECALCULATED)."""
    corrected = copy.deepcopy(draft)
    corrected.pop("text", None)
    new_dosage = dosage(step, route=route, per_dose_mg=per_dose_mg, follows=follows)
    old = next((d for d in draft.get("dosageInstruction") or [] if isinstance(d, dict)), {})
    corrected["dosageInstruction"] = [_merged_dosage(old, new_dosage)]
    dispense = corrected.get("dispenseRequest")
    if isinstance(dispense, dict):
        dispense.pop("quantity", None)
        if not dispense:
            corrected.pop("dispenseRequest")
    return corrected


def dispense_quantity_dropped(draft: dict[str, Any]) -> bool:
    dispense = draft.get("dispenseRequest")
    return isinstance(dispense, dict) and "quantity" in dispense


# --- A stored assessment as a Bundle of proposals ---------------------------------------------------
#
# The proposals of one assessment are alternatives, never an order set: no `groupIdentifier` (in FHIR,
# requests sharing one were authorised together, so an EHR could give IV and subcut, or every regimen,
# at once). Each request has its own id and an `identifier` naming the assessment, protocol, step and
# route; its first note and its Dosage.text say which choice it is part of.


@dataclass(frozen=True, slots=True)
class _Proposal:
    recommendation: dict[str, Any]
    step: dict[str, Any]
    index: int  # the step's position in its recommendation
    route: Route
    regimen: int  # 1-based: a step that is not a taper starts a regimen; a taper belongs to the one before
    follows: str | None


def _proposals(recommendations: list[dict[str, Any]]) -> tuple[list[_Proposal], int]:
    """Every proposal (recommended step x route) in order, and how many regimens there are."""
    proposals: list[_Proposal] = []
    regimen = 0
    for recommendation in recommendations:
        if recommendation["status"] not in RECOMMENDED_STATUSES:
            continue
        follows = taper_follows(recommendation["steps"])
        for index, step in enumerate(recommendation["steps"]):
            if step["kind"] != StepKind.TAPER or follows[index] is None:
                regimen += 1
            for route_value in step["routes"]:
                proposals.append(_Proposal(recommendation, step, index, Route(route_value), regimen, follows[index]))
    return proposals, regimen


def _choice_texts(proposal: _Proposal, *, regimens: int) -> tuple[str, ...]:
    """What the clinician chooses between, for Dosage.text."""
    choices = []
    if len(proposal.step["routes"]) > 1:
        choices.append(f"choose one route ({notation.routes_text(tuple(Route(r) for r in proposal.step['routes']))})")
    if regimens > 1:
        choices.append(f"regimen {proposal.regimen} of {regimens} alternatives: choose one regimen")
    return tuple(choices)


def _alternatives_note(proposal: _Proposal, *, position: int, total: int, regimens: int) -> str:
    texts = [
        f"Proposal {position} of {total} from this assessment. The proposals are alternatives, not an order set: "
        "order one regimen by one route, never two proposals together (a taper only after its regimen's dosing)."
    ]
    if regimens > 1:
        texts.append(f"This is regimen {proposal.regimen} of {regimens} alternative regimens: choose one regimen.")
    routes = tuple(Route(r) for r in proposal.step["routes"])
    if len(routes) > 1:
        texts.append(
            f"This step is proposed once per route ({notation.routes_text(routes)}); this proposal is "
            f"{notation.ROUTE_WORDS[proposal.route]}: choose one route."
        )
    if proposal.step["kind"] == StepKind.TAPER:
        taper = _taper_text(proposal.follows)
        texts.append(f"{taper[0].upper()}{taper[1:]}.")
    return " ".join(texts)


DOSE_INFO_CODES = frozenset({"above_usual_daily_cap"})


def _notes(recommendation: dict[str, Any], step: dict[str, Any]) -> list[str]:
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
    # Warnings about the amount or the patient travel with the proposal (informational ones stay on the page,
    # except the usual per-day cap note, which is about this amount).
    warnings = [
        w["text"] for w in recommendation["warnings"] if w["severity"] != "info" or w["code"] in DOSE_INFO_CODES
    ]
    if warnings:
        texts.append("Warnings: " + " ".join(warnings))
    for label, value in (("Duration", step["duration"]), ("Taper", step["taper"]), ("Note", step["notes"])):
        if value:
            texts.append(f"{label}: {value}")
    citations = recommendation["citations"] + [c for c in step["citations"] if c not in recommendation["citations"]]
    if citations:
        texts.append("Citations: " + "; ".join(c["label"] + (f" {c['url']}" if c["url"] else "") for c in citations))
    texts.append(DECISION_SUPPORT_NOTE)
    return [text for text in texts if text]


def medication_request(
    *,
    resource_id: str,
    assessment_id: uuid.UUID,
    proposal: _Proposal,
    position: int,
    total: int,
    regimens: int,
    authored_on: datetime,
    protocol_url: str,
    rules_note: str = "",
) -> dict[str, Any]:
    recommendation, step = proposal.recommendation, proposal.step
    slug = recommendation["institution"]["slug"]
    notes = [_alternatives_note(proposal, position=position, total=total, regimens=regimens)] if total > 1 else []
    notes.extend(_notes(recommendation, step))
    if rules_note:
        notes.append(rules_note)
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": resource_id,
        "identifier": [
            {
                "system": PROPOSAL_IDENTIFIER_SYSTEM,
                "value": f"{assessment_id}/{slug}/step-{proposal.index + 1}/{proposal.route.value}",
            }
        ],
        "status": "draft",
        "intent": "proposal",
        "medicationCodeableConcept": {"text": MEDICATION_TEXT},
        "subject": {"display": SUBJECT_DISPLAY},
        "authoredOn": authored_on.isoformat(),
        "note": [{"text": text} for text in notes],
        "dosageInstruction": [
            dosage(
                step,
                route=proposal.route,
                follows=proposal.follows,
                choices=_choice_texts(proposal, regimens=regimens),
            )
        ],
    }
    if protocol_url:
        resource["instantiatesUri"] = [protocol_url]
    return resource


def assessment_bundle(
    *,
    assessment_id: uuid.UUID,
    created_at: datetime,
    recommendations: list[dict[str, Any]],
    protocol_urls: dict,
    rules_note: str = "",
) -> dict[str, Any]:
    """A `collection` Bundle: one draft proposal per recommended step (indicated or consider) and route.

    Steps of not-indicated or contraindicated recommendations are not proposed. `protocol_urls` maps an
    institution slug to the absolute URL of its protocol page; `rules_note` (engine.revisions) is added to
    every proposal of an answer computed under earlier clinical rules."""
    proposals, regimens = _proposals(recommendations)
    entries = []
    for position, proposal in enumerate(proposals, start=1):
        slug = proposal.recommendation["institution"]["slug"]
        resource_id = str(uuid.uuid5(assessment_id, f"{slug}/{proposal.index}/{proposal.route.value}"))
        entries.append(
            {
                "fullUrl": f"urn:uuid:{resource_id}",
                "resource": medication_request(
                    resource_id=resource_id,
                    assessment_id=assessment_id,
                    proposal=proposal,
                    position=position,
                    total=len(proposals),
                    regimens=regimens,
                    authored_on=created_at,
                    protocol_url=protocol_urls.get(slug, ""),
                    rules_note=rules_note,
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
