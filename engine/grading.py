"""ASTCT consensus grading helpers for CRS and ICANS (Lee DW et al. 2019; clinical.md section 3).

Pure functions: findings in, a grade and the finding(s) that set it out. The most severe finding
sets the grade. carHLH has no consensus grading; the clinician enters a severity (section 3.3).
Nothing here knows about Django or the protocols.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from engine import limits, notation

# CRS: nasal cannula flow up to and including this is low flow (grade 2); above it is high flow (grade 3).
LOW_FLOW_MAX_L_MIN = Decimal("6")
# ICANS: the ICE score is for age 12 and over, the CAPD total for under 12 (or developmental delay).
ICE_FROM_AGE_YEARS = Decimal("12")
# Their ranges are declared in engine.limits (ICE_SCORE, CAPD_TOTAL).
# Lee 2019: grade 1-2 is a CAPD of 1 to 8, grade 3 is 9 or more; 0 shows no delirium features (like ICE 10).
CAPD_GRADE_1_FROM = 1
CAPD_GRADE_3_FROM = 9


class GradingInputError(ValueError):
    """Findings that cannot be graded as given; `field` names the input to correct."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class Hypotension(StrEnum):
    NONE = "none"
    NO_VASOPRESSOR = "no_vasopressor"
    ONE_VASOPRESSOR = "one_vasopressor"
    MULTIPLE_VASOPRESSORS = "multiple_vasopressors"


class OxygenSupport(StrEnum):
    NONE = "none"
    NASAL_CANNULA = "nasal_cannula"  # low or high flow, by the flow rate
    BLOW_BY = "blow_by"
    MASK = "mask"  # facemask, non-rebreather or Venturi mask
    POSITIVE_PRESSURE = "positive_pressure"  # CPAP, BiPAP, intubation and mechanical ventilation


class ScreeningTool(StrEnum):
    ICE = "ICE"
    CAPD = "CAPD"


class Consciousness(StrEnum):
    NOT_DEPRESSED = "not_depressed"
    AWAKENS_SPONTANEOUSLY = "awakens_spontaneously"
    AWAKENS_TO_VOICE = "awakens_to_voice"
    AWAKENS_TO_TOUCH = "awakens_to_touch"
    UNAROUSABLE = "unarousable"


class Seizure(StrEnum):
    NONE = "none"
    RESOLVING = "resolving"
    LIFE_THREATENING = "life_threatening"


class Motor(StrEnum):
    NONE = "none"
    DEEP_FOCAL_WEAKNESS = "deep_focal_weakness"


class RaisedIcp(StrEnum):
    NONE = "none"
    FOCAL_EDEMA = "focal_edema"
    DIFFUSE = "diffuse"


HYPOTENSION_GRADES = {
    Hypotension.NONE: None,
    Hypotension.NO_VASOPRESSOR: 2,
    Hypotension.ONE_VASOPRESSOR: 3,
    Hypotension.MULTIPLE_VASOPRESSORS: 4,
}
HYPOTENSION_WORDS = {
    Hypotension.NONE: "no hypotension",
    Hypotension.NO_VASOPRESSOR: "hypotension not requiring vasopressors",
    Hypotension.ONE_VASOPRESSOR: "hypotension requiring one vasopressor (with or without vasopressin)",
    Hypotension.MULTIPLE_VASOPRESSORS: "hypotension requiring multiple vasopressors (excluding vasopressin)",
}
CONSCIOUSNESS_GRADES = {
    Consciousness.NOT_DEPRESSED: None,
    Consciousness.AWAKENS_SPONTANEOUSLY: 1,
    Consciousness.AWAKENS_TO_VOICE: 2,
    Consciousness.AWAKENS_TO_TOUCH: 3,
    Consciousness.UNAROUSABLE: 4,
}
CONSCIOUSNESS_WORDS = {
    Consciousness.NOT_DEPRESSED: "consciousness not depressed",
    Consciousness.AWAKENS_SPONTANEOUSLY: "depressed consciousness, awakens spontaneously",
    Consciousness.AWAKENS_TO_VOICE: "depressed consciousness, awakens to voice",
    Consciousness.AWAKENS_TO_TOUCH: "depressed consciousness, awakens only to tactile stimulus",
    Consciousness.UNAROUSABLE: "unarousable or needs vigorous or repetitive tactile stimuli (stupor or coma)",
}
SEIZURE_GRADES = {Seizure.NONE: None, Seizure.RESOLVING: 3, Seizure.LIFE_THREATENING: 4}
SEIZURE_WORDS = {
    Seizure.NONE: "no seizure",
    Seizure.RESOLVING: "clinical seizure resolving rapidly, or non-convulsive seizure on EEG resolving "
    "with intervention",
    Seizure.LIFE_THREATENING: "life-threatening prolonged seizure (over 5 minutes), or repetitive seizures "
    "without return to baseline",
}
MOTOR_GRADES = {Motor.NONE: None, Motor.DEEP_FOCAL_WEAKNESS: 4}
MOTOR_WORDS = {
    Motor.NONE: "no motor finding",
    Motor.DEEP_FOCAL_WEAKNESS: "deep focal motor weakness (hemiparesis or paraparesis)",
}
RAISED_ICP_GRADES = {RaisedIcp.NONE: None, RaisedIcp.FOCAL_EDEMA: 3, RaisedIcp.DIFFUSE: 4}
RAISED_ICP_WORDS = {
    RaisedIcp.NONE: "no raised intracranial pressure or edema",
    RaisedIcp.FOCAL_EDEMA: "focal or local edema on neuroimaging",
    RaisedIcp.DIFFUSE: "diffuse cerebral edema on neuroimaging, decerebrate or decorticate posturing, "
    "cranial nerve VI palsy, papilledema, or Cushing's triad",
}
# carHLH has no consensus grade: a clinician-entered severity (clinical.md 3.3).
CARHLH_SEVERITY_WORDS = {1: "mild", 2: "needs directed therapy", 3: "severe", 4: "life-threatening"}


@dataclass(frozen=True, slots=True)
class Finding:
    text: str
    grade: int


@dataclass(frozen=True, slots=True)
class GradeResult:
    """`grade` is None when the findings do not amount to a grade; `explanation` then says why."""

    grade: int | None
    set_by: tuple[Finding, ...]
    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = ()
    explanation: str = ""

    @property
    def set_by_text(self) -> str:
        return "; ".join(f.text for f in self.set_by)


def _result(findings: list[Finding], notes: list[str], none_explanation: str) -> GradeResult:
    if not findings:
        return GradeResult(grade=None, set_by=(), findings=(), notes=tuple(notes), explanation=none_explanation)
    grade = max(f.grade for f in findings)
    return GradeResult(
        grade=grade,
        set_by=tuple(f for f in findings if f.grade == grade),
        findings=tuple(findings),
        notes=tuple(notes),
    )


def _oxygen_finding(oxygen: OxygenSupport, flow_l_min: Decimal | None) -> Finding | None:
    if oxygen == OxygenSupport.NONE:
        return None
    if oxygen == OxygenSupport.NASAL_CANNULA:
        if flow_l_min is None:
            raise GradingInputError("oxygen_flow_l_min", "Enter the nasal cannula flow in L/min.")
        if flow_l_min <= 0:
            raise GradingInputError("oxygen_flow_l_min", "The flow must be above 0 L/min.")
        flow = notation.amount(flow_l_min, "L/min")
        if flow_l_min <= LOW_FLOW_MAX_L_MIN:
            return Finding(f"low-flow nasal cannula, {flow} (6 L/min or less)", 2)
        return Finding(f"high-flow nasal cannula, {flow} (above 6 L/min)", 3)
    if oxygen == OxygenSupport.BLOW_BY:
        return Finding("blow-by oxygen", 2)
    if oxygen == OxygenSupport.MASK:
        return Finding("facemask, non-rebreather or Venturi mask", 3)
    return Finding("positive pressure (CPAP, BiPAP, or intubation and mechanical ventilation)", 4)


def fever_waivers(*, tocilizumab_given: bool, antipyretics_or_steroids_given: bool) -> tuple[str, ...]:
    """What, if anything, has already been given that makes fever no longer required (clinical.md 3.1)."""
    waivers = []
    if tocilizumab_given:
        waivers.append("tocilizumab has been given")
    if antipyretics_or_steroids_given:
        waivers.append("antipyretics or steroids have already been given")
    return tuple(waivers)


def crs_grade(
    *,
    fever: bool | None,
    tocilizumab_given: bool,
    antipyretics_or_steroids_given: bool,
    hypotension: Hypotension,
    oxygen: OxygenSupport,
    oxygen_flow_l_min: Decimal | None = None,
) -> GradeResult:
    """ASTCT CRS grade: fever (38.0 C or more, not attributable to another cause) plus the worse of
    hypotension and hypoxia. After tocilizumab, antipyretics or steroids (already given, not just planned),
    fever is no longer required; the note says which waived it."""
    notes: list[str] = []
    waivers = fever_waivers(
        tocilizumab_given=tocilizumab_given, antipyretics_or_steroids_given=antipyretics_or_steroids_given
    )
    if fever is not True and not waivers:
        state = "not recorded" if fever is None else "absent"
        return GradeResult(
            grade=None,
            set_by=(),
            findings=(),
            explanation=(
                f"Fever is {state}: ASTCT CRS needs a fever of 38.0 °C or more unless tocilizumab, antipyretics "
                "or steroids have already been given."
            ),
        )
    if fever is not True:
        notes.append(f"Fever is not required: {' and '.join(waivers)}.")
    findings: list[Finding] = []
    if fever is True:
        findings.append(Finding("fever of 38.0 °C or more", 1))
    if (hypotension_grade := HYPOTENSION_GRADES[hypotension]) is not None:
        findings.append(Finding(HYPOTENSION_WORDS[hypotension], hypotension_grade))
    if (oxygen_finding := _oxygen_finding(oxygen, oxygen_flow_l_min)) is not None:
        findings.append(oxygen_finding)
    return _result(findings, notes, "No fever, hypotension or hypoxia: nothing grades CRS.")


def icans_screening_tool(*, age_years: Decimal, developmental_delay: bool = False) -> ScreeningTool:
    """ICE for age 12 and over; CAPD for under 12, or at any age with developmental delay."""
    if age_years < ICE_FROM_AGE_YEARS or developmental_delay:
        return ScreeningTool.CAPD
    return ScreeningTool.ICE


def _span(limit: limits.Limit) -> str:
    return f"{limit.low} to {limit.high}"


def _ice_finding(ice_score: int | None, unable_to_perform: bool) -> Finding | None:
    if unable_to_perform:
        return Finding("ICE score 0, unarousable (cannot perform ICE)", 4)
    if ice_score is None:
        raise GradingInputError(
            "ice_score", f"Enter the ICE score ({_span(limits.ICE_SCORE)}), or tick that the patient is unarousable."
        )
    if not limits.ICE_SCORE.contains(ice_score):
        raise GradingInputError("ice_score", f"The ICE score is from {_span(limits.ICE_SCORE)}.")
    if ice_score >= 10:
        return None
    if ice_score >= 7:
        return Finding(f"ICE score {ice_score} (7 to 9)", 1)
    if ice_score >= 3:
        return Finding(f"ICE score {ice_score} (3 to 6)", 2)
    return Finding(f"ICE score {ice_score} (0 to 2)", 3)


def _capd_finding(capd_total: int | None, unable_to_perform: bool) -> Finding | None:
    if unable_to_perform:
        return Finding("unable to perform CAPD", 4)
    if capd_total is None:
        raise GradingInputError(
            "capd_total",
            f"Enter the CAPD total ({_span(limits.CAPD_TOTAL)}), or tick that the patient cannot be assessed.",
        )
    if not limits.CAPD_TOTAL.contains(capd_total):
        raise GradingInputError("capd_total", f"The CAPD total is from {_span(limits.CAPD_TOTAL)}.")
    if capd_total >= CAPD_GRADE_3_FROM:
        return Finding(f"CAPD total {capd_total} (9 or more)", 3)
    if capd_total >= CAPD_GRADE_1_FROM:
        return Finding(f"CAPD total {capd_total} (1 to 8: grade 1 or 2; the other findings decide)", 1)
    return None


def icans_grade(
    *,
    age_years: Decimal,
    developmental_delay: bool = False,
    ice_score: int | None = None,
    capd_total: int | None = None,
    unable_to_perform: bool = False,
    consciousness: Consciousness = Consciousness.NOT_DEPRESSED,
    seizure: Seizure = Seizure.NONE,
    motor: Motor = Motor.NONE,
    raised_icp: RaisedIcp = RaisedIcp.NONE,
) -> GradeResult:
    """ASTCT ICANS grade: the most severe finding across the screening score (ICE or CAPD, by age),
    level of consciousness, seizure, motor findings and raised intracranial pressure or edema."""
    tool = icans_screening_tool(age_years=age_years, developmental_delay=developmental_delay)
    notes: list[str] = []
    if tool == ScreeningTool.ICE:
        if capd_total is not None:
            raise GradingInputError(
                "capd_total", "The CAPD total is for age under 12 or developmental delay; enter the ICE score."
            )
        score = _ice_finding(ice_score, unable_to_perform)
        notes.append("ICE score used: age 12 years or over.")
    else:
        if ice_score is not None:
            raise GradingInputError(
                "ice_score", "The ICE score is for age 12 and over without developmental delay; enter the CAPD total."
            )
        score = _capd_finding(capd_total, unable_to_perform)
        notes.append(
            "CAPD used: developmental delay." if age_years >= ICE_FROM_AGE_YEARS else "CAPD used: age under 12 years."
        )
    findings = [f for f in (score,) if f is not None]
    for value, grades, words in (
        (consciousness, CONSCIOUSNESS_GRADES, CONSCIOUSNESS_WORDS),
        (seizure, SEIZURE_GRADES, SEIZURE_WORDS),
        (motor, MOTOR_GRADES, MOTOR_WORDS),
        (raised_icp, RAISED_ICP_GRADES, RAISED_ICP_WORDS),
    ):
        if (grade := grades[value]) is not None:  # type: ignore[index]
            findings.append(Finding(words[value], grade))  # type: ignore[index]
    none_explanation = (
        "No finding grades ICANS (ICE 10 and no other finding)."
        if tool == ScreeningTool.ICE
        else "No finding grades ICANS (CAPD total 0 and no other finding)."
    )
    return _result(findings, notes, none_explanation)
