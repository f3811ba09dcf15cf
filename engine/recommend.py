"""What each center's protocol would do for one patient (clinical.md sections 1.1 and 4)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from functools import lru_cache

from engine import limits, safety
from engine.data import Citation, PatientInputs, ProtocolData, Recommendation, Rule, Step, StepResult, Warning
from engine.dosing import step_dose
from engine.vocabulary import STATUS_RANK, Status, Toxicity


class InvalidPatient(ValueError):
    """Inputs the engine refuses; callers validate first, so this means a programming error."""


def _check_patient(patient: PatientInputs) -> None:
    weight = limits.WEIGHT_KG
    if not weight.contains(patient.weight_kg):
        raise InvalidPatient(f"weight {patient.weight_kg} kg is outside {weight.low}-{weight.high} kg")
    if not patient.toxicities:
        raise InvalidPatient("at least one toxicity is needed")
    types = [t.type for t in patient.toxicities]
    if len(set(types)) != len(types):
        raise InvalidPatient("each toxicity may appear once")
    grade = limits.TOXICITY_GRADE
    if any(not grade.contains(t.grade) for t in patient.toxicities):
        raise InvalidPatient(f"grades are {grade.low} to {grade.high}")
    if patient.prior_tocilizumab_doses < 0:
        raise InvalidPatient("tocilizumab doses cannot be negative")


def _step_applies(step: Step, patient: PatientInputs) -> bool:
    for item in patient.toxicities:
        if item.type in step.toxicities and step.min_grade <= item.grade <= step.max_grade:
            return True
    return False


def _grade_covered(rules: tuple[Rule, ...], toxicity: Toxicity, grade: int) -> bool:
    # A plain loop: this is on the hot path, and a generator costs more than the work it does.
    for rule in rules:  # noqa: SIM110
        if toxicity in rule.toxicities and rule.min_grade <= grade <= rule.max_grade:
            return True
    return False


def _grade_band(rule: Rule) -> str:
    if rule.max_grade >= 4:
        return f"grade {rule.min_grade} or higher"
    if rule.min_grade == rule.max_grade:
        return f"grade {rule.min_grade} only"
    return f"grades {rule.min_grade} to {rule.max_grade}"


def _prerequisites_text(rule: Rule) -> str:
    needs = []
    if rule.min_prior_tocilizumab_doses == 1:
        needs.append("prior tocilizumab")
    elif rule.min_prior_tocilizumab_doses > 1:
        needs.append(f"at least {rule.min_prior_tocilizumab_doses} prior tocilizumab doses")
    if rule.requires_steroids:
        needs.append("steroids given or starting")
    return " and ".join(needs)


def _met_context(rule: Rule, patient: PatientInputs) -> str:
    parts = []
    if rule.min_prior_tocilizumab_doses:
        doses = patient.prior_tocilizumab_doses
        parts.append(f"tocilizumab given ({doses} dose{'s' if doses != 1 else ''})")
    if rule.requires_steroids:
        parts.append("steroids given or starting")
    return f" with {' and '.join(parts)}" if parts else ""


PRIOR_TREATMENT_NOTE = (
    "Prior tocilizumab and steroids are recorded as given (steroids possibly only starting); whether the "
    "toxicity failed to respond to them is the prescriber's judgement."
)


def _is_isolated_late_onset(patient: PatientInputs) -> bool:
    return patient.late_onset_isolated is True and patient.fever is False and patient.hypotension is False


def _first_line_flags(patient: PatientInputs) -> tuple[list[str], list[str]]:
    """(fever/hypotension recorded present, the same not recorded)."""
    flags = (("fever", patient.fever), ("hypotension", patient.hypotension))
    return [name for name, value in flags if value], [name for name, value in flags if value is None]


def _first_line_unrecorded(patient: PatientInputs) -> str | None:
    """Said in the reason itself when late isolated onset is recorded but fever or hypotension is not (and
    neither is recorded present): the first-line reading then depends on what was not entered, and the
    reason must not read as if they were absent."""
    if patient.late_onset_isolated is not True:
        return None
    present, unknown = _first_line_flags(patient)
    if present or not unknown:
        return None
    verb = "was" if len(unknown) == 1 else "were"
    return (
        "first-line use (isolated late-onset carHLH) needs no fever and no hypotension, but "
        f"{' and '.join(unknown)} {verb} not recorded"
    )


def _first_line_note(patient: PatientInputs) -> str | None:
    """Why the first-line reading did not apply, when the clinician may have expected it to."""
    if patient.late_onset_isolated is not True:
        return None
    present, _ = _first_line_flags(patient)
    if present:
        return f"First-line use for isolated late-onset carHLH does not apply: {' and '.join(present)} present."
    return None


def _evaluate_rules(protocol: ProtocolData, patient: PatientInputs) -> tuple[Status, list[str], list[str]]:
    """The best status any rule gives, the reasons behind it, and notes for the clinician."""
    met: list[tuple[Status, str]] = []
    unmet: list[str] = []
    notes: list[str] = []
    covered: set[Toxicity] = set()
    for rule in protocol.rules:
        covered |= rule.toxicities
        for item in patient.toxicities:
            if item.type not in rule.toxicities:
                continue
            label = f"{item.type.value} grade {item.grade}"
            if not rule.min_grade <= item.grade <= rule.max_grade:
                # Named only when no rule for this toxicity covers the grade (another band may apply instead).
                if not _grade_covered(protocol.rules, item.type, item.grade):
                    unmet.append(f"{label}: {rule.summary}; applies to {_grade_band(rule)}")
                continue
            missing = []
            if patient.prior_tocilizumab_doses < rule.min_prior_tocilizumab_doses:
                missing.append(
                    "tocilizumab"
                    if rule.min_prior_tocilizumab_doses == 1
                    else f"tocilizumab ({patient.prior_tocilizumab_doses} of {rule.min_prior_tocilizumab_doses} doses)"
                )
            if rule.requires_steroids and not patient.prior_steroids:
                missing.append("steroids")
            if missing:
                unmet.append(
                    f"{label}: {rule.summary}; needs {_prerequisites_text(rule)}; {' and '.join(missing)} not yet given"
                )
                continue
            summary = rule.summary
            if rule.first_line_if_isolated_late_onset:
                if _is_isolated_late_onset(patient):
                    summary = rule.first_line_summary
                elif unrecorded := _first_line_unrecorded(patient):
                    summary = f"{summary}; {unrecorded}"
                elif note := _first_line_note(patient):
                    notes.append(note)
            repeat = rule.repeat_tocilizumab_from_doses
            if repeat is not None and rule.repeat_tocilizumab_note and patient.prior_tocilizumab_doses >= repeat:
                summary = f"{summary}; {rule.repeat_tocilizumab_note}"
            met.append((rule.result_status, f"{label}{_met_context(rule, patient)}: {summary}"))
            if (rule.min_prior_tocilizumab_doses or rule.requires_steroids) and PRIOR_TREATMENT_NOTE not in notes:
                notes.append(PRIOR_TREATMENT_NOTE)

    uncovered = [t.type for t in patient.toxicities if t.type not in covered]
    if met:
        best = max((status for status, _ in met), key=STATUS_RANK.__getitem__)
        return best, list(dict.fromkeys(reason for _, reason in met)), notes
    reasons = list(dict.fromkeys(unmet))
    if uncovered:
        covered_text = ", ".join(t.value for t in Toxicity if t in covered) or "no toxicity"
        reasons.append(
            f"This protocol does not cover {', '.join(t.value for t in uncovered)}; it covers {covered_text}"
        )
    return Status.NOT_INDICATED, reasons, notes


THRESHOLDS_MISSING_NOTE = (
    "This protocol version states no cross-center comparison amounts, so its doses were not compared with "
    "the highest amounts the centers report - confirm with pharmacy."
)


def _citations(
    protocol: ProtocolData, steps: tuple[StepResult, ...], warnings: tuple[Warning, ...]
) -> tuple[Citation, ...]:
    """The protocol's citations, its steps', the comparison amounts' source when a comparison warning is
    shown, and the product label (with the facts taken from it) whenever a label-derived rule or figure is."""
    ordered: dict[str, Citation] = {}
    for citation in protocol.citations:
        ordered.setdefault(citation.key, citation)
    volume_shown = False
    for result in steps:
        volume_shown = volume_shown or result.volume_ml is not None
        for citation in result.step.citations:
            ordered.setdefault(citation.key, citation)
    thresholds, label = protocol.thresholds, protocol.label_citation
    facts: list[str] = []
    comparison = False
    for warning in warnings:  # in CODE_ORDER, so the facts keep LABEL_FACTS' order
        if fact := safety.LABEL_FACTS.get(warning.code):
            facts.append(fact)
        elif warning.code in safety.COMPARISON_CODES:
            comparison = True
    if comparison and thresholds is not None and thresholds.citation is not None:
        ordered.setdefault(thresholds.citation.key, thresholds.citation)
    if volume_shown:
        facts.append(safety.VOLUME_FACT)
    if label is not None and facts and label.key not in ordered:
        ordered[label.key] = _label_citation(label, tuple(facts))
    return tuple(ordered.values())


@lru_cache(maxsize=256)  # few label/fact combinations recur across every request
def _label_citation(label: Citation, facts: tuple[str, ...]) -> Citation:
    return replace(label, label=f"{label.label}: {'; '.join(facts)}")


def recommend(*, protocol: ProtocolData, patient: PatientInputs) -> Recommendation:
    """One center's answer for one patient."""
    _check_patient(patient)
    return _recommend(protocol, patient, safety.patient_warnings(patient))


def _recommend(protocol: ProtocolData, patient: PatientInputs, known: safety.PatientWarnings) -> Recommendation:
    notes = [protocol.notes] if protocol.notes else []

    if patient.ecoli_protein_hypersensitivity:
        warnings = safety.warnings_for(
            patient=patient,
            steps=(),
            contraindicated=True,
            reported_car_target=protocol.reported_car_target,
            known=known,
        )
        return Recommendation(
            protocol=protocol,
            status=Status.CONTRAINDICATED,
            reasons=(
                "Known hypersensitivity to E. coli-derived proteins or an anakinra component: contraindicated "
                f"({safety.LABEL})",
            ),
            steps=(),
            warnings=warnings,
            citations=_citations(protocol, (), warnings),
            notes=tuple(notes),
        )

    status, reasons, rule_notes = _evaluate_rules(protocol, patient)
    notes.extend(rule_notes)
    steps = tuple(
        step_dose(step=step, weight_kg=patient.weight_kg, concentration_mg_per_ml=protocol.concentration_mg_per_ml)
        for step in protocol.steps
        if _step_applies(step, patient)
    )
    if status != Status.NOT_INDICATED and not steps:
        toxicities = ", ".join(f"{t.type} grade {t.grade}" for t in patient.toxicities)
        status = Status.NOT_INDICATED
        reasons.append(f"No dosing step of this protocol applies to {toxicities}")

    if steps and protocol.thresholds is None:
        notes.append(THRESHOLDS_MISSING_NOTE)
    warnings = safety.warnings_for(
        patient=patient,
        steps=steps,
        contraindicated=False,
        reported_car_target=protocol.reported_car_target,
        known=known,
        thresholds=protocol.thresholds,
    )
    return Recommendation(
        protocol=protocol,
        status=status,
        reasons=tuple(reasons),
        steps=steps,
        warnings=warnings,
        citations=_citations(protocol, steps, warnings),
        notes=tuple(notes),
    )


def recommend_all(*, protocols: Iterable[ProtocolData], patient: PatientInputs) -> tuple[Recommendation, ...]:
    """Every center's answer, ordered by institution name (api.md: a stable order)."""
    _check_patient(patient)
    known = safety.patient_warnings(patient)
    ordered = sorted(protocols, key=lambda p: (p.institution_name, p.institution_slug))
    return tuple(_recommend(p, patient, known) for p in ordered)
