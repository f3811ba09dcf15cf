"""The engine's results in the public JSON shape (api.md). Decimals stay Decimals; the JSON
encoder writes them as numbers."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from engine import notation, text
from engine.data import Citation, DoseRange, ProtocolData, Recommendation, Step, StepResult
from engine.notation import MG_QUANTUM

_plain = notation.plain_decimal


def _number(value: Decimal) -> Decimal:
    """0.1 mg precision, as a plain number."""
    return _plain(value.quantize(MG_QUANTUM, rounding=ROUND_HALF_UP))


def _ml(value: Decimal) -> Decimal:
    return _plain(value)


def _range(value: DoseRange | None, *, ml: bool = False) -> dict[str, Decimal] | None:
    if value is None:
        return None
    convert = _ml if ml else _number
    return {"low": convert(value.low), "high": convert(value.high)}


def citation_dict(citation: Citation) -> dict[str, Any]:
    return {
        "label": citation.label,
        "doi": citation.doi or None,
        "pmid": citation.pmid or None,
        "url": citation.link or None,
    }


def step_dict(result: StepResult, words: text.StepWords | None = None) -> dict[str, Any]:
    """A step's result in the public JSON shape; its words are `words` when the caller has them built."""
    step = result.step
    words = words if words is not None else text.step_words(result)
    return {
        "kind": step.kind.value,
        "name": step.name,
        "applies_to": [t.value for t in sorted(step.toxicities, key=_toxicity_order)],
        "grades": {"low": step.min_grade, "high": step.max_grade},
        "routes": [r.value for r in step.routes],
        "interval_hours": step.interval_hours,
        "interval_is_maximum": step.interval_is_maximum,
        "dose_basis": step.dose_basis.value,
        "amount": {"low": _plain(step.amount_low), "high": _plain(step.amount_high)},
        "calculated_per_dose_mg": _range(result.calculated_per_dose_mg),
        "per_dose_mg": _range(result.per_dose_mg),
        "calculated_per_day_mg": _range(result.calculated_per_day_mg),
        "per_day_mg": _range(result.per_day_mg),
        "max_single_dose_mg": _number(step.max_single_dose_mg) if step.max_single_dose_mg is not None else None,
        "max_daily_dose_mg": _number(step.max_daily_dose_mg) if step.max_daily_dose_mg is not None else None,
        "max_escalation_per_day_mg": (
            _number(result.max_escalation_per_day_mg) if result.max_escalation_per_day_mg is not None else None
        ),
        "capped_by": [c.value for c in result.capped_by],
        "max_escalation_capped_by": [c.value for c in result.max_escalation_capped_by],
        "escalation_text": words.escalation_text,
        "cap_notes": list(words.cap_notes),
        "rounding": (
            None
            if words.rounding is None
            else {
                "increment_mg": _number(words.rounding.increment_mg),
                "applied": words.rounding.applied,
                "note": words.rounding.note,
            }
        ),
        "volume_ml": _range(result.volume_ml, ml=True),
        "concentration_mg_per_ml": _plain(result.concentration_mg_per_ml),
        "volume_note": words.volume_note,
        "arithmetic": list(words.arithmetic),
        "order_text": words.order_text,
        "duration": step.duration,
        "taper": step.taper,
        "notes": step.notes,
        "citations": [citation_dict(c) for c in step.citations],
    }


def _toxicity_order(value: Any) -> int:
    return ("CRS", "ICANS", "carHLH").index(str(value))


def recommendation_dict(rec: Recommendation) -> dict[str, Any]:
    protocol = rec.protocol
    return {
        "institution": {"slug": protocol.institution_slug, "name": protocol.institution_name},
        "protocol": protocol_ref_dict(protocol),
        "status": rec.status.value,
        "reasons": list(rec.reasons),
        "notes": list(rec.notes),
        "steps": [step_dict(s) for s in rec.steps],
        "warnings": [{"code": w.code, "severity": w.severity.value, "text": w.text} for w in rec.warnings],
        "citations": [citation_dict(c) for c in rec.citations],
    }


def protocol_ref_dict(protocol: ProtocolData) -> dict[str, Any]:
    return {
        "id": protocol.version_id,
        "version": protocol.version_number,
        "published_at": protocol.published_at,
        "approved_by": protocol.approved_by,
        "approved_locally": protocol.approved_locally,
    }


def _optional(value: Decimal | None) -> Decimal | None:
    return None if value is None else _plain(value)


def protocol_step_dict(step: Step) -> dict[str, Any]:
    """A step as the protocol states it, with no dose computed."""
    return {
        "kind": step.kind.value,
        "name": step.name,
        "applies_to": [t.value for t in sorted(step.toxicities, key=_toxicity_order)],
        "grades": {"low": step.min_grade, "high": step.max_grade},
        "routes": [r.value for r in step.routes],
        "interval_hours": step.interval_hours,
        "interval_is_maximum": step.interval_is_maximum,
        "dose_basis": step.dose_basis.value,
        "amount": {"low": _plain(step.amount_low), "high": _plain(step.amount_high)},
        "max_single_dose_mg": _optional(step.max_single_dose_mg),
        "max_daily_dose_mg": _optional(step.max_daily_dose_mg),
        "escalation_ceiling": (
            {"amount": _plain(step.escalation_ceiling_amount), "basis": step.escalation_ceiling_basis.value}
            if step.escalation_ceiling_amount is not None and step.escalation_ceiling_basis is not None
            else None
        ),
        "rounding": (
            {
                "increment_mg": _plain(step.rounding_increment_mg),
                "tolerance_percent": _optional(step.rounding_tolerance_percent),
            }
            if step.rounding_increment_mg is not None
            else None
        ),
        "duration": step.duration,
        "taper": step.taper,
        "notes": step.notes,
        "citations": [citation_dict(c) for c in step.citations],
    }


def protocol_summary_dict(protocol: ProtocolData) -> dict[str, Any]:
    """An institution's current protocol: rules and steps as data (GET /api/v1/institutions)."""
    return {
        "slug": protocol.institution_slug,
        "name": protocol.institution_name,
        "protocol": protocol_ref_dict(protocol),
        "reported_car_target": protocol.reported_car_target.value if protocol.reported_car_target else None,
        "notes": protocol.notes,
        "rules": [
            {
                "applies_to": [t.value for t in sorted(rule.toxicities, key=_toxicity_order)],
                "min_grade": rule.min_grade,
                "max_grade": rule.max_grade,
                "min_prior_tocilizumab_doses": rule.min_prior_tocilizumab_doses,
                "requires_steroids": rule.requires_steroids,
                "result_status": rule.result_status.value,
                "summary": rule.summary,
                "first_line_if_isolated_late_onset": rule.first_line_if_isolated_late_onset,
                "first_line_summary": rule.first_line_summary,
                "repeat_tocilizumab_from_doses": rule.repeat_tocilizumab_from_doses,
                "repeat_tocilizumab_note": rule.repeat_tocilizumab_note,
            }
            for rule in protocol.rules
        ],
        "comparison_thresholds": thresholds_dict(protocol),
        "steps": [protocol_step_dict(s) for s in protocol.steps],
        "citations": [citation_dict(c) for c in protocol.citations],
    }


def thresholds_dict(protocol: ProtocolData) -> dict[str, Any] | None:
    """The cross-center comparison amounts a version states, with their source (null when it states none)."""
    thresholds = protocol.thresholds
    if thresholds is None:
        return None
    return {
        "reported_max_mg_per_kg_per_day": _plain(thresholds.reported_max_mg_per_kg_per_day),
        "reported_max_basis": thresholds.reported_max_basis,
        "usual_daily_cap_mg": _plain(thresholds.usual_daily_cap_mg),
        "usual_daily_cap_basis": thresholds.usual_daily_cap_basis,
        "citation": citation_dict(thresholds.citation) if thresholds.citation else None,
    }
