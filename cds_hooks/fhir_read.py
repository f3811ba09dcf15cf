"""Read what an EHR sends (FHIR R4 JSON, as parsed with Decimals): drafts, weight, age, allergies.

Nothing here guesses. A value is used only when it is stated in a form that can be read without
interpretation: a weight only as LOINC 29463-7 in the UCUM units of FHIR's body-weight value set,
`kg`, `g` or `[lb_av]` (converted exactly, then to the gram: `engine.weights`), a dose only in UCUM
`g`, `mg` or `ug` (converted to mg exactly) or per kg of these, a route only as the SNOMED CT codes
for IV and subcutaneous, a frequency only from `timing.repeat` in hours or days. Anything else is
reported as not readable.

Nor is an absence ever assumed: a search result that is an OperationOutcome (or holds an error one),
or that says it holds more than was read (`total`, a `next` page not read), is reported as such
(`SearchPage.problem`), never as "none recorded". A prefetch of `null` is "no data" (CDS Hooks).

A drafted dose is the mg amount the order states (whatever its dose-rate `type`; a `calculated` one
first): that is what is drawn up. An mg/kg amount gives the dose (times the weight) only when no mg
amount is stated; beside an mg amount it is passed on so the order check can see whether the two
agree. Amounts of one unit that disagree by more than 0.1 mg are not chosen between.

Anakinra is recognised by name ("anakinra", or the brand "Kineret") in the medication's text or
coding display, or by a code the EHR's registration lists (`medication_codes`, system and code).
No medication code is built in: none has been verified for this service, so none is matched
unless a site lists it (and none is sent).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from engine import notation
from engine.order_check import SAME_DOSE_TOLERANCE_MG, DraftDose
from engine.vocabulary import Route
from engine.weights import KG_PER_UNIT, WeightUnit, weight_kg

LOINC = "http://loinc.org"
LOINC_BODY_WEIGHT = "29463-7"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
SNOMED_ROUTES = {"47625008": Route.IV, "34206005": Route.SC}
ROUTE_CODES = {route: code for code, route in SNOMED_ROUTES.items()}
ROUTE_DISPLAYS = {Route.IV: "Intravenous route", Route.SC: "Subcutaneous route"}
ANAKINRA_NAMES = re.compile(r"\b(anakinra|kineret)\b", re.IGNORECASE)
# Observation statuses that carry a usable result.
RESULT_STATUSES = {"final", "amended", "corrected"}
HOURS_PER_UNIT = {"h": Decimal(1), "d": Decimal(24)}
DOSE_RATE_TYPE = "http://terminology.hl7.org/CodeSystem/dose-rate-type"
# UCUM mass units read, as exact powers of ten of a milligram (Decimal.scaleb: no rounding).
MASS_EXPONENTS = {"g": 3, "mg": 0, "ug": -3}
PER_KG_EXPONENTS = {f"{unit}/kg": exponent for unit, exponent in MASS_EXPONENTS.items()}
READ_LIMIT = Decimal("1E+9")
# Intervals are shown to 0.01 h; a shorter one (under 36 seconds) is no schedule to read.
MIN_INTERVAL_HOURS = Decimal("0.01")
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
# FHIR's body-weight units (ValueSet ucum-bodyweight), read exactly.
BODY_WEIGHT_UNITS = {"kg": WeightUnit.KG, "g": WeightUnit.G, "[lb_av]": WeightUnit.LB}
# (system, code) pairs an EHR's registration lists for anakinra (cds_hooks.config).
MedicationCodes = frozenset[tuple[str, str]]
NO_CODES: MedicationCodes = frozenset()
OUTCOME_ERRORS = {"fatal", "error"}
# An OperationOutcome's coded fields are shown; its free text (diagnostics) is not.
OUTCOME_TOKEN = re.compile(r"^[a-z][a-z-]{0,39}$")


def is_fhir_id(value: Any) -> bool:
    return isinstance(value, str) and bool(FHIR_ID.match(value))


def resources_in(value: Any) -> list[dict[str, Any]]:
    """The resources of a prefetch value or search result: a Bundle's entries, or one resource."""
    if not isinstance(value, dict):
        return []
    if value.get("resourceType") == "Bundle":
        entries = value.get("entry") or []
        return [e["resource"] for e in entries if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    return [value] if "resourceType" in value else []


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One search result (a prefetch value, or a page read from the FHIR server), and whether it can be
    trusted to be the whole answer. `problem` says why it cannot ("" when it can, `next_url` aside)."""

    resources: list[dict[str, Any]]
    problem: str
    next_url: str | None = None
    total: int | None = None
    matches: int = 0


def _outcome_words(outcomes: list[dict[str, Any]]) -> str:
    issues = [i for o in outcomes for i in o.get("issue") or [] if isinstance(i, dict)]
    words = [
        " ".join(t for t in (i.get("severity"), i.get("code")) if isinstance(t, str) and OUTCOME_TOKEN.match(t))
        for i in issues
    ]
    listed = ", ".join(w for w in words if w) or "no issue stated"
    return f"the EHR sent an OperationOutcome ({listed}) instead of the data"


def _is_error(outcome: dict[str, Any]) -> bool:
    return any(isinstance(i, dict) and i.get("severity") in OUTCOME_ERRORS for i in outcome.get("issue") or [])


def _next_url(bundle: dict[str, Any]) -> str | None:
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"] or None
    return None


def search_page(value: Any) -> SearchPage:
    """What a prefetch value or a search response holds. An OperationOutcome, or a Bundle holding an
    error one, is a failed read; so is anything that is not a FHIR resource. `null` is "no data"."""
    if value is None:
        return SearchPage(resources=[], problem="")
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        return SearchPage(resources=[], problem="the EHR sent something that is not a FHIR resource")
    if value["resourceType"] == "OperationOutcome":
        return SearchPage(resources=[], problem=_outcome_words([value]))
    if value["resourceType"] != "Bundle":
        return SearchPage(resources=[value], problem="", matches=1)
    entries = [e for e in value.get("entry") or [] if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    outcomes = [e["resource"] for e in entries if e["resource"].get("resourceType") == "OperationOutcome"]
    errors = [o for o in outcomes if _is_error(o)]
    resources = [e["resource"] for e in entries if e["resource"].get("resourceType") != "OperationOutcome"]
    matches = sum(
        1
        for e in entries
        if e["resource"].get("resourceType") != "OperationOutcome"
        and (e.get("search") or {}).get("mode", "match") == "match"
    )
    total = value.get("total")
    return SearchPage(
        resources=resources,
        problem=_outcome_words(errors) if errors else "",
        next_url=_next_url(value),
        total=total if isinstance(total, int) and not isinstance(total, bool) and total >= 0 else None,
        matches=matches,
    )


def _codings(concept: Any) -> list[dict[str, Any]]:
    if not isinstance(concept, dict):
        return []
    return [c for c in concept.get("coding") or [] if isinstance(c, dict)]


def _has_code(concept: Any, system: str, code: str) -> bool:
    return any(c.get("system") == system and c.get("code") == code for c in _codings(concept))


def _has_listed_code(concept: Any, codes: MedicationCodes) -> bool:
    return any((c.get("system"), c.get("code")) in codes for c in _codings(concept))


def _listed_code_name(concept: Any, codes: MedicationCodes) -> str:
    for coding in _codings(concept):
        if (coding.get("system"), coding.get("code")) in codes:
            display = coding.get("display")
            return display if isinstance(display, str) and display else f"{coding['code']} ({coding['system']})"
    return ""


def _names(concept: Any) -> list[str]:
    if not isinstance(concept, dict):
        return []
    names = [concept.get("text")] + [c.get("display") for c in _codings(concept)]
    return [n for n in names if isinstance(n, str) and n]


def _decimal(value: Any) -> Decimal | None:
    """A finite number below a billion in size; anything larger is no dose, weight or timing, and
    could not be shown (Decimal arithmetic to 28 digits), so it is not read."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    # copy_abs, not abs(): abs() rounds in the context and overflows on 1E+999999999 (a 500 before).
    return number if number.is_finite() and number.copy_abs() < READ_LIMIT else None


def _when(text: Any) -> datetime:
    """A FHIR date/dateTime/instant for ordering; unreadable values sort first (oldest)."""
    if isinstance(text, str):
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            for pattern in ("%Y-%m", "%Y"):
                try:
                    moment = datetime.strptime(text, pattern)
                    break
                except ValueError:
                    continue
            else:
                return datetime.min.replace(tzinfo=UTC)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime.min.replace(tzinfo=UTC)


def fhir_moment(text: Any) -> datetime | None:
    """A FHIR date, dateTime or instant as an aware datetime (no zone: UTC); None when it cannot be read."""
    when = _when(text)
    return None if when == datetime.min.replace(tzinfo=UTC) else when


# --- Weight ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Weight:
    """The most recent body weight, or why there is none usable."""

    kg: Decimal | None
    effective: str
    problem: str
    # The value as recorded, when it was converted to kg ("44.092 [lb_av]").
    stated: str = ""
    # The weight could not be read at all (an error, an incomplete list): not the same as none recorded.
    unreadable: bool = False

    @property
    def source(self) -> str:
        when = f", {self.effective}" if self.effective else ""
        return f"Observation LOINC {LOINC_BODY_WEIGHT}{when}"

    @property
    def conversion(self) -> str:
        """How a weight recorded in another unit became kg ("" when it was recorded in kg)."""
        if not self.stated or self.kg is None:
            return ""
        unit = self.stated.rsplit(" ", 1)[-1]
        factor = notation.plain_decimal(KG_PER_UNIT[BODY_WEIGHT_UNITS[unit]])
        return f"recorded as {self.stated}, converted exactly (1 {unit} = {factor} kg) and taken to the gram"


def unreadable_weight(problem: str) -> Weight:
    return Weight(kg=None, effective="", problem=f"The body weight could not be read: {problem}.", unreadable=True)


def is_body_weight(resource: dict[str, Any]) -> bool:
    return (
        resource.get("resourceType") == "Observation"
        and resource.get("status") in RESULT_STATUSES
        and _has_code(resource.get("code"), LOINC, LOINC_BODY_WEIGHT)
    )


def _effective(observation: dict[str, Any]) -> str:
    for field in ("effectiveDateTime", "effectiveInstant"):
        if isinstance(observation.get(field), str):
            return observation[field]
    period = observation.get("effectivePeriod")
    if isinstance(period, dict):
        return period.get("end") or period.get("start") or ""
    return observation.get("issued") if isinstance(observation.get("issued"), str) else ""


def body_weight(resources: list[dict[str, Any]]) -> Weight:
    """The latest body-weight Observation with a result; its value only in a UCUM body-weight unit
    (kg, g, [lb_av]), converted exactly and taken to the gram."""
    candidates = [r for r in resources if is_body_weight(r)]
    if not candidates:
        return Weight(kg=None, effective="", problem="No body weight (LOINC 29463-7) is recorded.")
    latest = max(candidates, key=lambda r: _when(_effective(r)))
    effective = _effective(latest)
    quantity = latest.get("valueQuantity")
    if not isinstance(quantity, dict):
        return Weight(kg=None, effective=effective, problem="The latest body weight has no value.")
    value = _decimal(quantity.get("value"))
    code = quantity.get("code")
    unit = BODY_WEIGHT_UNITS.get(code) if quantity.get("system") == UCUM and isinstance(code, str) else None
    if unit is not None and value is None:
        return Weight(kg=None, effective=effective, problem="The latest body weight's value is not a usable number.")
    if unit is None or value is None:
        shown = code or quantity.get("unit") or "no unit"
        return Weight(
            kg=None,
            effective=effective,
            problem=f"The latest body weight is not in a UCUM body-weight unit (kg, g, [lb_av]; unit: {shown}).",
        )
    # To the gram, as the JSON API and the bedside wizard take it.
    stated = "" if unit == WeightUnit.KG else f"{format(notation.plain_decimal(value), 'f')} {code}"
    return Weight(kg=weight_kg(value, unit), effective=effective, problem="", stated=stated)


def weight_age_problem(*, weight: Weight, born: date | None, now: datetime, max_age_days: int) -> str | None:
    """Why a usable weight may not be current (a short phrase naming its date), or None."""
    if weight.kg is None:
        return None
    when = _when(weight.effective)
    if when == datetime.min.replace(tzinfo=UTC):
        return "weight undated"
    day = when.date().isoformat()
    if born is not None and when.date() < born:
        return f"weight dated {day}, before birth"
    if now - when > timedelta(days=max_age_days):
        return f"weight from {day}"
    return None


# --- Age ------------------------------------------------------------------------------------------


def birth_date(patient_data: Any) -> date | None:
    """A full Patient.birthDate (a Patient, or a Bundle holding one); None for a partial or missing date."""
    patient = next((r for r in resources_in(patient_data) if r.get("resourceType") == "Patient"), None)
    if patient is None:
        return None
    text = patient.get("birthDate")
    if not isinstance(text, str) or len(text) != len("2000-01-01"):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def age_years(patient_data: Any, *, today: date) -> int | None:
    """Completed years from a full Patient.birthDate; None for a partial or missing date."""
    born = birth_date(patient_data)
    if born is None or born > today:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


# --- Allergies ------------------------------------------------------------------------------------

INACTIVE_CLINICAL = {"inactive", "resolved"}
NOT_TRUE = {"refuted", "entered-in-error"}


def _status_code(concept: Any) -> str | None:
    for coding in _codings(concept):
        if isinstance(coding.get("code"), str):
            return coding["code"]
    return None


@dataclass(frozen=True, slots=True)
class AllergyFindings:
    recorded: list[str]  # the names of current anakinra allergies
    unidentified: int  # current allergy records naming no substance that can be read (none, or a bare code)
    others: tuple[str, ...] = ()  # the names of the other current allergy records, as recorded (shown, never read)


def anakinra_allergies(resources: list[dict[str, Any]], *, codes: MedicationCodes = NO_CODES) -> AllergyFindings:
    """Current AllergyIntolerance records for anakinra (by name or listed code, see module docstring), and
    how many current records name nothing readable (any of them could be anakinra), and the other names."""
    found, unidentified, others = [], 0, []
    for resource in resources:
        if resource.get("resourceType") != "AllergyIntolerance":
            continue
        if _status_code(resource.get("clinicalStatus")) in INACTIVE_CLINICAL:
            continue
        if _status_code(resource.get("verificationStatus")) in NOT_TRUE:
            continue
        concept = resource.get("code")
        names = [n for n in _names(concept) if ANAKINRA_NAMES.search(n)]
        if names:
            found.append(names[0])
        elif _has_listed_code(concept, codes):
            found.append(_listed_code_name(concept, codes))
        elif not _names(concept):
            unidentified += 1
        else:
            others.append(_names(concept)[0])
    return AllergyFindings(recorded=found, unidentified=unidentified, others=tuple(others))


# --- Drafted orders -------------------------------------------------------------------------------


def _medication_concepts(request: dict[str, Any]) -> list[Any]:
    """The medication's CodeableConcepts: the request's own, and a contained Medication's code."""
    concepts = [request.get("medicationCodeableConcept")]
    reference = request.get("medicationReference")
    target = reference.get("reference") if isinstance(reference, dict) else None
    if isinstance(target, str) and target.startswith("#"):
        for contained in request.get("contained") or []:
            if isinstance(contained, dict) and contained.get("id") == target[1:]:
                concepts.append(contained.get("code"))
    return concepts


def _medication_names(request: dict[str, Any]) -> list[str]:
    concepts = _medication_concepts(request)
    names = _names(concepts[0])
    reference = request.get("medicationReference")
    if isinstance(reference, dict) and isinstance(reference.get("display"), str):
        names.append(reference["display"])
    for concept in concepts[1:]:
        names.extend(_names(concept))
    return names


def is_anakinra_request(resource: Any, *, codes: MedicationCodes = NO_CODES) -> bool:
    return (
        isinstance(resource, dict)
        and resource.get("resourceType") == "MedicationRequest"
        and (
            any(ANAKINRA_NAMES.search(name) for name in _medication_names(resource))
            or any(_has_listed_code(concept, codes) for concept in _medication_concepts(resource))
        )
    )


def anakinra_drafts(
    draft_orders: Any, selections: list[str] | None, *, codes: MedicationCodes = NO_CODES
) -> list[dict[str, Any]]:
    """Anakinra MedicationRequests in the draft orders; with `selections`, only the selected ones."""
    return selected([r for r in resources_in(draft_orders) if is_anakinra_request(r, codes=codes)], selections)


def selected(drafts: list[dict[str, Any]], selections: list[str] | None) -> list[dict[str, Any]]:
    if selections is None:
        return drafts
    chosen = set(selections)
    return [r for r in drafts if f"MedicationRequest/{r.get('id')}" in chosen]


def unnamed_medication_requests(draft_orders: Any, *, codes: MedicationCodes = NO_CODES) -> list[dict[str, Any]]:
    """MedicationRequests whose medication has no name to read here, nor a listed code: a reference to a
    Medication that is not contained and has no display, or a code with no text or display."""
    return [
        r
        for r in resources_in(draft_orders)
        if r.get("resourceType") == "MedicationRequest"
        and not _medication_names(r)
        and not is_anakinra_request(r, codes=codes)
    ]


def medication_reference_id(request: dict[str, Any]) -> str | None:
    """The id of a relative `Medication/{id}` reference, the one form fetched from the EHR's server."""
    reference = request.get("medicationReference")
    target = reference.get("reference") if isinstance(reference, dict) else None
    if not isinstance(target, str) or not target.startswith("Medication/"):
        return None
    medication_id = target.removeprefix("Medication/")
    return medication_id if is_fhir_id(medication_id) else None


def medication_names(resource: Any) -> list[str]:
    """The names (code text and displays) of a fetched Medication resource; none for anything else."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "Medication":
        return []
    return _names(resource.get("code"))


def is_anakinra_medication(resource: Any, *, codes: MedicationCodes = NO_CODES) -> bool:
    return any(ANAKINRA_NAMES.search(name) for name in medication_names(resource)) or (
        isinstance(resource, dict)
        and resource.get("resourceType") == "Medication"
        and _has_listed_code(resource.get("code"), codes)
    )


@dataclass(frozen=True, slots=True)
class DraftReading:
    dose: DraftDose
    interval_hours: Decimal | None
    description: str
    # The draft states a mass amount of a billion (READ_LIMIT) or more in its unit: not read as a dose,
    # and far above any protocol's dose.
    beyond_reading: bool = False


@dataclass(frozen=True, slots=True)
class _StatedDose:
    value: Decimal
    code: str  # UCUM "mg" or "mg/kg"
    rate_type: str | None  # dose-rate-type "calculated", "ordered"..., or None when not stated


def _rate_type(item: dict[str, Any]) -> str | None:
    codes = [c.get("code") for c in _codings(item.get("type")) if c.get("system") == DOSE_RATE_TYPE]
    return codes[0] if len(codes) == 1 and isinstance(codes[0], str) else None


def _in_mg(quantity: Any) -> tuple[Decimal, str] | None:
    """A UCUM mass (or mass per kg) quantity as mg (or mg/kg), converted exactly; None otherwise."""
    if not isinstance(quantity, dict) or quantity.get("system") != UCUM:
        return None
    code = quantity.get("code")
    value = _decimal(quantity.get("value"))
    if value is None or value <= 0:
        return None
    if code in MASS_EXPONENTS:
        return value.scaleb(MASS_EXPONENTS[code]), "mg"
    if code in PER_KG_EXPONENTS:
        return value.scaleb(PER_KG_EXPONENTS[code]), "mg/kg"
    return None


def _beyond_reading(dosages: list[dict[str, Any]]) -> bool:
    """Some dose quantity (or the top of a dose range) in a mass unit is a positive number of READ_LIMIT or
    more: too large to read, and so far above any dose that the order is not what it should be."""
    for dosage in dosages:
        quantities = [dosage.get("doseQuantity")]
        for item in _dose_items(dosage):
            quantities.append(item.get("doseQuantity"))
            if isinstance(item.get("doseRange"), dict):
                quantities.append(item["doseRange"].get("high"))
        for quantity in quantities:
            if not isinstance(quantity, dict) or quantity.get("system") != UCUM:
                continue
            if quantity.get("code") not in MASS_EXPONENTS and quantity.get("code") not in PER_KG_EXPONENTS:
                continue
            value = quantity.get("value")
            if isinstance(value, bool) or not isinstance(value, int | Decimal):
                continue
            try:
                number = Decimal(value)
            except InvalidOperation:
                continue
            if number.is_finite() and number >= READ_LIMIT:
                return True
    return False


def _dose_items(dosage: dict[str, Any]) -> list[dict[str, Any]]:
    dose_and_rate = dosage.get("doseAndRate")
    # R4 has a list; some examples (and STU3) put an object here or doseQuantity on the Dosage itself.
    items = dose_and_rate if isinstance(dose_and_rate, list) else [dose_and_rate]
    return [i for i in items if isinstance(i, dict)]


def _stated_doses(dosage: dict[str, Any]) -> list[_StatedDose]:
    """Every dose the Dosage states in a UCUM mass unit (as mg) or per kg (as mg/kg), `calculated` first."""
    pairs = [(i.get("doseQuantity"), _rate_type(i)) for i in _dose_items(dosage)]
    pairs.append((dosage.get("doseQuantity"), None))
    found = []
    for quantity, rate_type in pairs:
        read = _in_mg(quantity)
        if read is not None:
            found.append(_StatedDose(value=read[0], code=read[1], rate_type=rate_type))
    return sorted(found, key=lambda d: d.rate_type != "calculated")


def _range_highs(dosage: dict[str, Any]) -> list[tuple[Decimal, str]]:
    highs = []
    for item in _dose_items(dosage):
        dose_range = item.get("doseRange")
        read = _in_mg(dose_range.get("high")) if isinstance(dose_range, dict) else None
        if read is not None:
            highs.append(read)
    return highs


def _highest_in(dosage: dict[str, Any], *, weight_kg: Decimal | None, with_per_kg: bool) -> Decimal | None:
    """The most one dose of this Dosage could be in mg: any stated amount or the top of a range."""
    amounts = [(d.value, d.code) for d in _stated_doses(dosage)] + _range_highs(dosage)
    in_mg = [value for value, code in amounts if code == "mg"]
    if with_per_kg and weight_kg is not None:
        in_mg.extend(value * weight_kg for value, code in amounts if code == "mg/kg")
    return max(in_mg, default=None)


def _highest(dosages: list[dict[str, Any]], *, weight_kg: Decimal | None) -> tuple[Decimal | None, Decimal | None]:
    """The most one dose and one day could be, over every dosage instruction. In the first one an mg/kg
    amount beside an mg amount is left to the order check's mg and mg/kg comparison."""
    per_dose: list[Decimal] = []
    per_day: list[Decimal] = []
    for index, dosage in enumerate(dosages):
        first_states_mg = index == 0 and any(d.code == "mg" for d in _stated_doses(dosage))
        highest = _highest_in(dosage, weight_kg=weight_kg, with_per_kg=not first_states_mg)
        if highest is None:
            continue
        per_dose.append(highest)
        interval = _interval_hours(dosage)
        if interval is not None:
            per_day.append(highest * Decimal(24) / interval)
    return max(per_dose, default=None), max(per_day, default=None)


def _apart(values: list[Decimal], scale: Decimal = Decimal(1)) -> bool:
    """Values that differ by more than 0.1 mg (`scale` turns mg/kg into mg at a weight)."""
    return bool(values) and (max(values) - min(values)) * scale > SAME_DOSE_TOLERANCE_MG


def _dose(stated: list[_StatedDose], weight_kg: Decimal | None) -> tuple[Decimal | None, Decimal | None, list[str]]:
    """The mg dose, the mg/kg dose stated beside it, and what could not be read.

    The mg amount is the dose (what is drawn up); an mg/kg amount gives the dose (times the weight)
    only when no mg amount is stated. Beside an mg amount it is kept so that the check can compare
    them. Amounts of one unit that disagree are not chosen between."""
    mg = [d.value for d in stated if d.code == "mg"]
    per_kg = [d.value for d in stated if d.code == "mg/kg"]
    if _apart(mg):
        listed = ", ".join(notation.amount(v, "mg") for v in mg)
        return None, None, [f"The draft states different mg doses ({listed}): which one is meant is not guessed."]
    per_kg_apart = len(set(per_kg)) > 1 if weight_kg is None else _apart(per_kg, weight_kg)
    if per_kg_apart:
        listed = ", ".join(notation.amount(v, "mg/kg", notation.KG_QUANTUM) for v in per_kg)
        if not mg:
            return (
                None,
                None,
                [f"The draft states different mg/kg doses ({listed}): which one is meant is not guessed."],
            )
        return mg[0], None, [f"The draft also states different mg/kg doses ({listed}): they were not compared."]
    if mg:
        return mg[0], per_kg[0] if per_kg else None, []
    if per_kg and weight_kg is not None:
        return per_kg[0] * weight_kg, None, []
    return None, None, []


def _interval_hours(dosage: dict[str, Any]) -> Decimal | None:
    timing = dosage.get("timing")
    repeat = timing.get("repeat") if isinstance(timing, dict) else None
    if not isinstance(repeat, dict):
        return None
    frequency = _decimal(repeat.get("frequency"))
    period = _decimal(repeat.get("period"))
    hours_per_unit = HOURS_PER_UNIT.get(repeat.get("periodUnit"))
    if frequency is None or period is None or hours_per_unit is None or frequency <= 0 or period <= 0:
        return None
    if repeat.get("frequencyMax") is not None or repeat.get("periodMax") is not None:
        return None  # a range of frequencies: not one schedule to compare
    interval = period * hours_per_unit / frequency
    return interval if MIN_INTERVAL_HOURS <= interval < READ_LIMIT else None


def _as_needed(dosage: dict[str, Any]) -> bool:
    """R4 `asNeededBoolean` true, or `asNeededCodeableConcept` (which implies it): given only when
    needed within the schedule, so the schedule is the most often a dose is given."""
    return dosage.get("asNeededBoolean") is True or isinstance(dosage.get("asNeededCodeableConcept"), dict)


def _timing_text(dosage: dict[str, Any]) -> str:
    """What an unread timing says in words (its code's text or display), to show, never to read."""
    timing = dosage.get("timing")
    names = _names(timing.get("code")) if isinstance(timing, dict) else []
    return names[0] if names else ""


def _route(dosage: dict[str, Any]) -> Route | None:
    routes = {
        SNOMED_ROUTES[c["code"]]
        for c in _codings(dosage.get("route"))
        if c.get("system") == SNOMED and c.get("code") in SNOMED_ROUTES
    }
    return routes.pop() if len(routes) == 1 else None


def _every(interval_hours: Decimal, *, is_maximum: bool) -> str:
    hours = notation.plain_number(interval_hours, Decimal("0.01"))
    words = "every 1 hour" if hours == "1" else f"every {hours} hours"
    return f"up to {words} (as needed)" if is_maximum else words


def _dose_words(per_dose: Decimal | None, mg_per_kg: Decimal | None, stated: list[_StatedDose]) -> str:
    if per_dose is None:
        return "dose not readable"
    text = notation.amount(per_dose, "mg")
    if mg_per_kg is not None:
        return f"{text} (and {notation.amount(mg_per_kg, 'mg/kg', notation.KG_QUANTUM)})"
    if stated and all(d.code == "mg/kg" for d in stated):
        return f"{text} ({notation.amount(stated[0].value, 'mg/kg', notation.KG_QUANTUM)})"
    return text


def draft_reading(request: dict[str, Any], *, weight_kg: Decimal | None) -> DraftReading:
    """The dose, frequency and route a drafted MedicationRequest states (first dosage instruction).
    A dose in mg/kg alone is read only with a weight; see `_dose` for mg and mg/kg together."""
    dosages = [d for d in request.get("dosageInstruction") or [] if isinstance(d, dict)]
    dosage = dosages[0] if dosages else {}
    stated = _stated_doses(dosage)
    per_dose, mg_per_kg, unread = _dose(stated, weight_kg)
    interval = _interval_hours(dosage)
    as_needed = _as_needed(dosage)
    route = _route(dosage)
    doses_per_day = Decimal(24) / interval if interval is not None else None
    if interval is not None:
        frequency = _every(interval, is_maximum=as_needed)
    else:
        timing_text = _timing_text(dosage)
        frequency = f"frequency not readable (timing: {timing_text})" if timing_text else "frequency not readable"
    parts = [
        _dose_words(per_dose, mg_per_kg, stated),
        notation.ROUTE_WORDS[route] if route is not None else "route not readable",
        frequency,
    ]
    readable = per_dose is not None and route is not None and interval is not None
    description = "anakinra " + (" " if readable else ", ").join(parts)
    if any(isinstance(i.get("doseRange"), dict) for i in _dose_items(dosage)):
        unread.append("The draft states a dose range: a range is not one dose, so it is not matched.")
    if len(dosages) > 1:
        description += f" (first of {len(dosages)} dosage instructions)"
        unread.append(
            f"The draft has {len(dosages)} dosage instructions: only the first was matched; the others were "
            "checked only against the protocol's maximum."
        )
    highest_dose, highest_day = _highest(dosages, weight_kg=weight_kg)
    return DraftReading(
        dose=DraftDose(
            per_dose_mg=per_dose,
            doses_per_day=doses_per_day,
            route=route,
            mg_per_kg=mg_per_kg,
            interval_is_maximum=as_needed and interval is not None,
            unread=tuple(unread),
            highest_per_dose_mg=highest_dose,
            highest_per_day_mg=highest_day,
        ),
        interval_hours=interval,
        description=description,
        beyond_reading=_beyond_reading(dosages),
    )
