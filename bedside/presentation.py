"""Stored assessments shaped for the result and print pages: plain words for statuses and warnings,
safe notation for numbers. Reads only what the assessment stored, never the current protocols."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.utils.dateparse import parse_datetime

from engine import notation
from engine.grading import CARHLH_SEVERITY_WORDS
from engine.revisions import rules_note
from engine.vocabulary import Route
from protocols.models import OPEN_STATUSES, ProtocolVersion, VersionStatus

STATUS_WORDS = {
    "indicated": ("Indicated by this protocol", "status-indicated"),
    "consider": ("May be considered under this protocol", "status-consider"),
    "not_indicated": ("Not indicated by this protocol", "status-not-indicated"),
    "contraindicated": ("Contraindicated: do not give", "status-contraindicated"),
}
# The status in a page title or a list, and a symbol that keeps it readable without colour (printed in
# black and white, or by someone who cannot tell the colours apart); the words always say it too.
STATUS_SHORT = {
    "indicated": "Indicated",
    "consider": "May be considered",
    "not_indicated": "Not indicated",
    "contraindicated": "Contraindicated",
}
STATUS_SYMBOLS = {"indicated": "✓", "consider": "?", "not_indicated": "○", "contraindicated": "✕"}
# Beside an order line whose center does not recommend it as it stands: a not_indicated center's amounts are
# shown for comparison only and must never read as an order; a consider center's are an option, not an order.
ORDER_QUALIFIERS = {
    "not_indicated": "Only if the criteria were met - not indicated now",
    "consider": "May be considered",
}
SEVERITY_HEADINGS = (("critical", "Critical"), ("warning", "Warnings"), ("info", "For information"))
# Short names for the comparison table; the full text is on each center's card.
WARNING_LABELS = {
    "contraindicated_hypersensitivity": "contraindicated: hypersensitivity",
    "tnf_blocker": "TNF blocker",
    "infection": "active infection",
    "sc_bleeding_risk": "subcut bleeding risk",
    "renal_impairment": "renal impairment",
    "above_reported_maximum": "above reported maximum",
    "above_usual_daily_cap": "above the usual per-day cap",
    "weight_confirm": "confirm weight",
    "adult_patient": "adult patient",
    "frequency_not_specified": "frequency not specified",
    "product_experience": "other CAR product",
    "iv_off_label": "IV off-label",
    "prefer_iv": "prefer IV",
    "general_monitoring": "monitoring",
}
STEP_KIND_WORDS = {"initial": "Initial", "taper": "Taper", "alternative": "Alternative"}


def as_decimal(value: Any) -> Decimal:
    """Stored amounts come back as int or Decimal; a float here would be a bug, so refuse it."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise TypeError(f"expected an int or Decimal amount, got {type(value).__name__}")
    return Decimal(value)


def yes_no(value: bool | None) -> str:
    return {True: "Yes", False: "No"}.get(value, "Not recorded")  # type: ignore[arg-type]


def approval_text(rec: dict[str, Any]) -> str:
    """Where a version comes from and whether a local pharmacist approved it, plainly and calmly.

    A version a pharmacist here approved names them. A version loaded from the reviewed data file names
    the published letter it transcribes (its protocol's first citation, the letter's Table 1) and says
    that no local pharmacist has approved it yet: a fact to know, not an alarm."""
    protocol = rec["protocol"]
    approver = protocol.get("approved_by") or ""
    if protocol.get("approved_locally") and approver:
        return f"Approved for local use by {approver}."
    citations = rec.get("citations") or []
    source = f"From the published letter: {_sentence(citations[0]['label'])} " if citations else ""
    return f"{source}Not yet approved by a local pharmacist."


def present_recommendation(rec: dict[str, Any]) -> dict[str, Any]:
    """One stored recommendation plus the words the templates show."""
    status_text, status_class = STATUS_WORDS[rec["status"]]
    groups = []
    for severity, heading in SEVERITY_HEADINGS:
        items = [w for w in rec["warnings"] if w["severity"] == severity]
        if items:
            groups.append({"severity": severity, "heading": heading, "items": items})
    key_warnings = [WARNING_LABELS.get(w["code"], w["code"]) for w in rec["warnings"] if w["severity"] != "info"]
    published_at = parse_datetime(rec["protocol"]["published_at"]) if rec["protocol"].get("published_at") else None
    return {
        **rec,
        "status_text": status_text,
        "status_short": STATUS_SHORT[rec["status"]],
        "status_symbol": STATUS_SYMBOLS[rec["status"]],
        "status_class": status_class,
        "order_qualifier": ORDER_QUALIFIERS.get(rec["status"], ""),
        # Amounts read as an option only where the center recommends the step; a not_indicated center's
        # are shown on request, labelled; a contraindicated center has none.
        "amounts_on_request": rec["status"] == "not_indicated" and bool(rec["steps"]),
        "locally_approved": bool(rec["protocol"].get("approved_locally")),
        "approval_text": approval_text(rec),
        "warning_groups": groups,
        # Warnings and critical messages sit with the order lines; information follows the details.
        "urgent_groups": [g for g in groups if g["severity"] != "info"],
        "info_groups": [g for g in groups if g["severity"] == "info"],
        "key_warnings": key_warnings,
        "published_at": published_at,
        "steps": [present_step(step) for step in rec["steps"]],
    }


def present_preview_recommendation(rec: dict[str, Any], *, version: ProtocolVersion) -> dict[str, Any]:
    """An answer from a version a pharmacist is reviewing, for the bedside preview. A version that is not the
    published one is labelled as what it is ("draft - not in use"), never as the published letter's: a local
    draft is not the letter, and nobody is given its doses until a second pharmacist approves it."""
    shown = present_recommendation(rec)
    if version.status == VersionStatus.PUBLISHED:
        return shown
    shown["version_state"] = f"{version.get_status_display().lower()} - not in use"
    if version.status in OPEN_STATUSES:
        shown["approval_text"] = (
            "Not approved yet: clinicians see the published version until a second pharmacist approves this one."
        )
    return shown


def present_step(step: dict[str, Any]) -> dict[str, Any]:
    """One stored step plus the words the templates show: a route choice for the printout ("IV / subcut",
    circled by hand) and whether the day's amount is a most (a most-often interval: "no more often than
    every N hours")."""
    routes = tuple(Route(r) for r in step["routes"])
    route_choice = " / ".join(notation.ROUTE_WORDS[r] for r in routes) if len(routes) > 1 else ""
    order_text = step["order_text"]
    routes_words = notation.routes_text(routes)
    print_order_text = order_text
    if route_choice and f" {routes_words} " in order_text:
        print_order_text = order_text.replace(f" {routes_words} ", f" {route_choice} (circle one) ", 1)
    return {
        **step,
        "kind_text": STEP_KIND_WORDS.get(step["kind"], step["kind"]),
        "route_choice": route_choice,
        "print_order_text": print_order_text,
        "per_day_is_maximum": bool(step.get("interval_is_maximum") and step.get("interval_hours")),
    }


@dataclass(frozen=True, slots=True)
class ResultView:
    chosen: dict[str, Any] | None
    others: list[dict[str, Any]]
    chosen_slug: str | None
    inputs: list[tuple[str, str]]
    toxicities: list[dict[str, str]]
    patient_summary: str  # "CRS grade 3 · 20 kg · 8 years": what the answer is for, at a glance
    rules_note: str = ""  # what the rules it was computed under did differently (engine.revisions)
    rules_revision: int | None = None  # the rules revision it was computed under (named on the printout)


def chosen_slug_for(assessment_inputs: dict[str, Any], requested: str | None, slugs: list[str]) -> str | None:
    """The center shown first: one asked for in the page address, else the wizard's choice, else the only one."""
    for candidate in (requested, assessment_inputs.get("institution")):
        if candidate and candidate in slugs:
            return candidate
    return slugs[0] if len(slugs) == 1 else None


def toxicity_rows(inputs: dict[str, Any], grading: list[dict[str, Any]] | None) -> list[dict[str, str]]:
    """Each toxicity with its grade and how the grade was reached."""
    by_type = {item["type"]: item for item in grading or []}
    rows = []
    for item in inputs["toxicities"]:
        kind, grade = item["type"], item["grade"]
        if kind == "carHLH":
            label = f"carHLH clinician-entered severity {grade} ({CARHLH_SEVERITY_WORDS[grade]})"
            short = f"carHLH severity {grade}"
            basis = "Clinician-entered: carHLH has no consensus definition and no ASTCT grade."
        else:
            label = f"{kind} grade {grade} (ASTCT)"
            short = f"{kind} grade {grade}"
            record = by_type.get(kind)
            if record is None:
                basis = "Grade as sent."
            elif record["method"] == "computed":
                basis = "Calculated from findings; set by: " + "; ".join(record["set_by"]) + "."
                # The notes say which tool was used and what, if anything, waived fever.
                basis = " ".join([basis, *record.get("notes", [])])
            else:
                basis = "Picked by the clinician."
        rows.append({"type": kind, "label": label, "short": short, "basis": basis})
    return rows


def input_rows(inputs: dict[str, Any]) -> list[tuple[str, str]]:
    """The inputs used, in plain words and safe notation."""
    weight = notation.amount(as_decimal(inputs["weight_kg"]), "kg", Decimal("0.001"))
    age = notation.amount(as_decimal(inputs["age_years"]), "years", Decimal("0.01"))
    crcl = inputs.get("creatinine_clearance_ml_min")
    days = inputs.get("days_since_infusion")
    return [
        ("Weight used", weight),
        ("Age", age),
        ("Tocilizumab doses given", str(inputs["prior_tocilizumab_doses"])),
        ("Steroids given or starting", yes_no(inputs["prior_steroids"])),
        (
            "CAR T-cell target",
            "Other, or not known" if inputs.get("car_target") == "other" else str(inputs.get("car_target")),
        ),
        ("Days since infusion", "Not recorded" if days is None else str(days)),
        ("Fever now", yes_no(inputs.get("fever"))),
        ("Hypotension now", yes_no(inputs.get("hypotension"))),
        ("Late, isolated onset (carHLH)", yes_no(inputs.get("late_onset_isolated"))),
        ("Thrombocytopenia or coagulopathy", yes_no(inputs.get("thrombocytopenia_or_coagulopathy"))),
        ("TNF blocker", yes_no(inputs.get("concurrent_tnf_blocker"))),
        ("E. coli-protein hypersensitivity", yes_no(inputs.get("ecoli_protein_hypersensitivity"))),
        ("Active infection", yes_no(inputs.get("active_infection"))),
        (
            "Creatinine clearance",
            "Not recorded" if crcl is None else notation.amount(as_decimal(crcl), "mL/min"),
        ),
    ]


def present_literature(regimen: dict[str, Any]) -> dict[str, Any]:
    """A stored literature regimen in words: what the study used, and its arithmetic for this weight."""
    interval = regimen["interval_hours"]
    return {
        **regimen,
        "amount_text": notation.amount_range(
            as_decimal(regimen["amount"]["low"]),
            as_decimal(regimen["amount"]["high"]),
            regimen["dose_basis"],
            Decimal("0.001"),
        ),
        "interval_text": f"{notation.interval_text(interval)} ({notation.doses_a_day_text(24 // interval)})",
        "routes_text": notation.routes_text(tuple(Route(r) for r in regimen["routes"])),
        "weight_text": notation.amount(as_decimal(regimen["weight_kg"]), "kg", Decimal("0.001")),
    }


def literature_shown(rec: dict[str, Any], regimens: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A center's own published regimen, once on its card, where its protocol states no frequency for a step
    it recommends (so the prescriber has something concrete to discuss with pharmacy)."""
    if rec["status"] not in ("indicated", "consider"):
        return []
    if not any(step.get("interval_hours") is None for step in rec["steps"]):
        return []
    slug = rec["institution"]["slug"]
    return [present_literature(r) for r in regimens if r["institution"] == slug]


def result_view(assessment: Any, *, requested_slug: str | None = None) -> ResultView:
    literature = getattr(assessment, "bedside_literature", None)
    regimens = literature.regimens if literature is not None else []
    recommendations = [
        {**present_recommendation(rec), "literature": literature_shown(rec, regimens)}
        for rec in assessment.recommendations
    ]
    slugs = [rec["institution"]["slug"] for rec in recommendations]
    chosen_slug = chosen_slug_for(assessment.inputs, requested_slug, slugs)
    grading = getattr(assessment, "bedside_grading", None)
    toxicities = toxicity_rows(assessment.inputs, grading.toxicities if grading else None)
    summary = [
        *(row["short"] for row in toxicities),
        notation.amount(as_decimal(assessment.inputs["weight_kg"]), "kg", Decimal("0.001")),
        notation.amount(as_decimal(assessment.inputs["age_years"]), "years", Decimal("0.01")),
    ]
    return ResultView(
        chosen=next((r for r in recommendations if r["institution"]["slug"] == chosen_slug), None),
        others=[r for r in recommendations if r["institution"]["slug"] != chosen_slug],
        chosen_slug=chosen_slug,
        inputs=input_rows(assessment.inputs),
        toxicities=toxicities,
        patient_summary=" · ".join(summary),
        rules_note=rules_note(assessment.rules_revision),
        rules_revision=assessment.rules_revision or 1,
    )


def _sentence(text: str) -> str:
    """A bibliographic element closed by one full stop: never "et al..", never a period after "?"."""
    text = " ".join(text.split())
    return text if not text or text[-1] in ".?!" else f"{text}."


def reference_text(ref: Any) -> str:
    """Vancouver-style "Authors. Title. Journal. Year;Volume(Issue):Pages." from a Reference, leaving out
    empty fields with their separators (identifiers are links, shown beside it)."""
    source = ""
    if ref.year:
        source = str(ref.year)
    if ref.volume:
        source += f";{ref.volume}" if source else ref.volume
    if ref.issue:
        source += f"({ref.issue})"
    if ref.pages:
        source += f":{ref.pages}" if source else ref.pages
    parts = [_sentence(ref.authors), _sentence(ref.title), _sentence(ref.journal), _sentence(source)]
    return " ".join(part for part in parts if part)


def review_flag(version: ProtocolVersion | None, *, today: date) -> str:
    """A visible warning when a published protocol's review is overdue or was never scheduled."""
    if version is None:
        return ""
    if version.next_review is None:
        return "No review date set"
    if version.next_review < today:
        return f"Review overdue since {version.next_review:%d %b %Y}"
    return ""
