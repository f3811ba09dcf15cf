"""The fixed words of the public contract (docs/api.md). Never rename these."""

from enum import StrEnum


class Toxicity(StrEnum):
    CRS = "CRS"
    ICANS = "ICANS"
    CARHLH = "carHLH"


class Status(StrEnum):
    INDICATED = "indicated"
    CONSIDER = "consider"
    NOT_INDICATED = "not_indicated"
    CONTRAINDICATED = "contraindicated"


class StepKind(StrEnum):
    INITIAL = "initial"
    TAPER = "taper"
    ALTERNATIVE = "alternative"


class DoseBasis(StrEnum):
    MG_PER_KG_PER_DOSE = "mg/kg/dose"
    MG_PER_KG_PER_DAY = "mg/kg/day"
    MG_PER_DOSE = "mg/dose"
    MG_PER_DAY = "mg/day"

    @property
    def per_kg(self) -> bool:
        return self in (DoseBasis.MG_PER_KG_PER_DOSE, DoseBasis.MG_PER_KG_PER_DAY)

    @property
    def per_dose(self) -> bool:
        return self in (DoseBasis.MG_PER_KG_PER_DOSE, DoseBasis.MG_PER_DOSE)


class Route(StrEnum):
    IV = "IV"
    SC = "SC"


class CarTarget(StrEnum):
    CD19 = "CD19"
    CD22 = "CD22"
    CD19_CD22 = "CD19/CD22"
    OTHER = "other"


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class WarningCode(StrEnum):
    """Every warning's code, in the order the API contract lists them (display order: engine.safety)."""

    CONTRAINDICATED_HYPERSENSITIVITY = "contraindicated_hypersensitivity"
    TNF_BLOCKER = "tnf_blocker"
    INFECTION = "infection"
    SC_BLEEDING_RISK = "sc_bleeding_risk"
    RENAL_IMPAIRMENT = "renal_impairment"
    ABOVE_REPORTED_MAXIMUM = "above_reported_maximum"
    ABOVE_USUAL_DAILY_CAP = "above_usual_daily_cap"
    WEIGHT_CONFIRM = "weight_confirm"
    ADULT_PATIENT = "adult_patient"
    FREQUENCY_NOT_SPECIFIED = "frequency_not_specified"
    PRODUCT_EXPERIENCE = "product_experience"
    IV_OFF_LABEL = "iv_off_label"
    PREFER_IV = "prefer_iv"
    GENERAL_MONITORING = "general_monitoring"


class Cap(StrEnum):
    MAX_SINGLE_DOSE = "max_single_dose"
    MAX_DAILY_DOSE = "max_daily_dose"


# Intervals that divide a day exactly, so "doses per day" is a whole number.
INTERVAL_HOURS_CHOICES = (1, 2, 3, 4, 6, 8, 12, 24)

# Status strength for "the best status any rule gives".
STATUS_RANK = {Status.NOT_INDICATED: 0, Status.CONSIDER: 1, Status.INDICATED: 2}

GRADES = (1, 2, 3, 4)
