"""What an EHR launch puts into the wizard, and what it says about each value. Pure: no Django, no I/O.

The EHR's data is read by the CDS Hooks service's own readers (`cds_hooks.fhir_read`): the latest body
weight (kg, g or [lb_av], converted exactly, to the gram), the age in completed years from a full
birth date, and the current anakinra allergies. A value is filled in only when it can be trusted as it
stands; otherwise it is shown with why, and the question is left for the clinician:

- a weight older than CDS_HOOKS_WEIGHT_MAX_AGE_DAYS, undated or dated before birth is shown, not filled;
- the allergy question ("known hypersensitivity to E. coli-derived proteins or any component of
  anakinra") is answered Yes when a current anakinra allergy is recorded, and No only when the whole
  list was read, every current record names its substance, and none names anakinra or E. coli. A record
  naming E. coli (an E. coli asparaginase, say) is shown and the question left open: whether it is an
  E. coli-derived protein hypersensitivity is the clinician's judgement, not a rule of this app.

Grades are never filled in: the EHR does not send them in any form this app could verify.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from cds_hooks.fhir_read import AllergyFindings, Weight, fhir_moment, resources_in, weight_age_problem
from engine import notation

ECOLI_NAMES = re.compile(r"\b(e\.?\s?coli|escherichia\s+coli)\b", re.IGNORECASE)
ALLERGY_QUESTION = "Known hypersensitivity to E. coli-derived proteins or any component of anakinra"


class Status(StrEnum):
    FILLED = "filled"  # in the wizard, labelled with where it came from and its date
    ASK = "ask"  # shown with why it was not filled (old, doubtful, incomplete): the clinician answers
    UNREADABLE = "unreadable"  # the EHR's answer could not be read: the clinician answers
    NONE = "none"  # not recorded in the EHR: the clinician answers


@dataclass(frozen=True, slots=True)
class Reading:
    field: str  # the wizard's (and the API's) field name
    question: str
    answer: str  # the wizard's raw answer; "" when not filled in
    shown: str  # the EHR's value in words ("20 kg"); "" when there is none
    note: str  # where it came from and when, or why it was not filled in
    status: Status


def _ago(when: datetime, now: datetime) -> str:
    days = (now.date() - when.date()).days
    if days <= 0:
        return "today"
    return "1 day ago" if days == 1 else f"{days} days ago"


def _day(when: datetime) -> str:
    return when.date().isoformat()


def read_time(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} {moment.tzname() or ''}".rstrip()


def weight_reading(*, weight: Weight, born: date | None, now: datetime, max_age_days: int) -> Reading:
    question = "Weight (kg)"
    if weight.kg is None:
        status = Status.UNREADABLE if weight.unreadable else Status.NONE
        return Reading("weight_kg", question, "", "", f"From the EHR: {weight.problem} Enter the weight.", status)
    shown = notation.weight(weight.kg)
    when = fhir_moment(weight.effective)
    converted = f"; {weight.conversion}" if weight.conversion else ""
    problem = weight_age_problem(weight=weight, born=born, now=now, max_age_days=max_age_days)
    if problem is not None or when is None:
        if when is None:
            why = "has no date"
        elif born is not None and when.date() < born:
            why = f"is dated {_day(when)}, before the birth date"
        else:
            why = f"is dated {_day(when)} ({_ago(when, now)}), older than {max_age_days} days"
        note = f"From the EHR: the latest body weight, {shown}{converted}, {why}. Enter a current weight."
        return Reading("weight_kg", question, "", shown, note, Status.ASK)
    note = f"From the EHR, dated {_day(when)} ({_ago(when, now)}): the latest body weight{converted}."
    return Reading(
        "weight_kg", question, notation.plain_number(weight.kg, notation.KG_QUANTUM), shown, note, Status.FILLED
    )


def _birth_date_text(patient: Any) -> str | None:
    found = next((r for r in resources_in(patient) if r.get("resourceType") == "Patient"), None)
    text = found.get("birthDate") if found is not None else None
    return text if isinstance(text, str) else None


def age_reading(*, patient: Any, problem: str, age: int | None) -> Reading:
    """`age` in completed years from a full birth date (cds_hooks.fhir_read.age_years), or None."""
    question = "Age (years)"
    if problem:
        note = f"The EHR's patient record could not be read ({problem}). Enter the age."
        return Reading("age_years", question, "", "", note, Status.UNREADABLE)
    if age is None:
        recorded = _birth_date_text(patient)
        said = f"only a partial birth date ({recorded})" if recorded else "no birth date"
        return Reading(
            "age_years", question, "", "", f"The EHR's patient record has {said}. Enter the age.", Status.NONE
        )
    shown = "1 year" if age == 1 else f"{age} years"
    note = f"From the EHR, birth date {_birth_date_text(patient)}: {shown} old today."
    return Reading("age_years", question, str(age), shown, note, Status.FILLED)


def allergy_reading(*, findings: AllergyFindings | None, problem: str, read_at: datetime) -> Reading:
    """The allergy question from the whole current allergy list (see the module docstring)."""
    field = "ecoli_protein_hypersensitivity"
    when = read_time(read_at)
    if findings is None or problem:
        note = f"The EHR's allergy list could not be read in full ({problem or 'not read'}). Answer it yourself."
        return Reading(field, ALLERGY_QUESTION, "", "", note, Status.UNREADABLE)
    if findings.recorded:
        names = ", ".join(f"“{name}”" for name in findings.recorded)
        note = f"From the EHR's allergy list, read {when}: current anakinra allergy recorded ({names})."
        return Reading(field, ALLERGY_QUESTION, "true", "Yes", note, Status.FILLED)
    if findings.unidentified:
        count = findings.unidentified
        records = "record" if count == 1 else "records"
        note = (
            f"The EHR's allergy list (read {when}) has {count} current {records} naming no substance that can be "
            "read: any could be anakinra. Answer it yourself."
        )
        return Reading(field, ALLERGY_QUESTION, "", "", note, Status.ASK)
    ecoli = [name for name in findings.others if ECOLI_NAMES.search(name)]
    if ecoli:
        names = ", ".join(f"“{name}”" for name in ecoli)
        note = (
            f"The EHR's allergy list (read {when}) records {names}: whether that is a hypersensitivity to "
            "E. coli-derived proteins is yours to judge. Answer it yourself."
        )
        return Reading(field, ALLERGY_QUESTION, "", "", note, Status.ASK)
    others = ", ".join(f"“{name}”" for name in findings.others)
    listed = f"other current allergies: {others}" if others else "no current allergies at all"
    note = f"From the EHR's allergy list, read {when}: no anakinra or E. coli allergy recorded ({listed})."
    return Reading(field, ALLERGY_QUESTION, "false", "No", note, Status.FILLED)


def institution_reading(*, slug: str, name: str) -> Reading:
    note = "From this EHR's registration: the protocol its orders are checked against."
    return Reading("institution", "Institution", slug, name, note, Status.FILLED)


def patient_name(patient: Any) -> str:
    """A display name for the banner (official or usual name first); "" when none is recorded."""
    found = next((r for r in resources_in(patient) if r.get("resourceType") == "Patient"), None)
    names = [n for n in (found or {}).get("name") or [] if isinstance(n, dict)]
    names.sort(key=lambda n: n.get("use") not in ("official", "usual"))
    for name in names:
        if isinstance(name.get("text"), str) and name["text"].strip():
            return name["text"].strip()
        given = [g for g in name.get("given") or [] if isinstance(g, str)]
        family = name.get("family") if isinstance(name.get("family"), str) else ""
        words = " ".join([*given, family]).strip()
        if words:
            return words
    return ""
