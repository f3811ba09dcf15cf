"""Institution protocols as data: versions, indication rules and dosing steps.

Nothing center-specific lives in code. A published version is immutable: the only change it
accepts is retirement when a newer version is published (`protocols.services`).
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.lookups import GreaterThanOrEqual
from django.utils import timezone
from pydantic import ValidationError as PydanticValidationError
from simple_history.models import HistoricalRecords

from anakinra_cds.jsonutil import DecimalJSONDecoder, DecimalJSONEncoder
from engine import limits, notation
from engine.data import PatientInputs
from engine.inputs import RecommendationRequest, validation_errors
from engine.vocabulary import INTERVAL_HOURS_CHOICES, CarTarget, DoseBasis, Status, StepKind, Toxicity


def protocol_history() -> HistoricalRecords:
    """Field-level history whose change reason is kept whole (simple_history's default keeps 100 characters,
    and a longer reason was refused by the database)."""
    return HistoricalRecords(history_change_reason_field=models.TextField(null=True))


def user_display(user) -> str:
    """A person as every governance page names them: full name, else username; "" for nobody."""
    return "" if user is None else (user.get_full_name() or user.get_username())


class PublishedVersionIsImmutable(Exception):
    """Raised on any attempt to change or delete a published (or retired) version or its rows."""


class Institution(models.Model):
    slug = models.SlugField(max_length=40, unique=True, help_text="Public API identifier, never changed.")
    name = models.CharField(max_length=200)
    short_name = models.CharField(max_length=60)
    location = models.CharField(max_length=120, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = protocol_history()

    class Meta:
        ordering = ["name"]
        constraints = [models.CheckConstraint(condition=~Q(slug=""), name="institution_slug_not_empty")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if not self.slug:
            raise ValidationError({"slug": "Give the institution a slug (its public API identifier)."})


class Protocol(models.Model):
    institution = models.OneToOneField(Institution, on_delete=models.PROTECT, related_name="protocol")
    title = models.CharField(max_length=200)

    history = protocol_history()

    class Meta:
        ordering = ["institution__name"]

    def __str__(self) -> str:
        return self.title


class VersionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted for approval"
    PUBLISHED = "published", "Published"
    RETIRED = "retired", "Retired"


FROZEN_STATUSES = (VersionStatus.PUBLISHED, VersionStatus.RETIRED)
# A protocol has at most one version being worked on or reviewed at a time.
OPEN_STATUSES = (VersionStatus.DRAFT, VersionStatus.SUBMITTED)


class ProtocolVersionQuerySet(models.QuerySet):
    """Bulk updates and deletes may not touch frozen versions (except publish/retire bookkeeping)."""

    RETIREMENT_FIELDS = frozenset({"status", "retired_at"})

    def update(self, **kwargs):
        frozen = self.filter(status__in=FROZEN_STATUSES)
        is_retirement = set(kwargs) <= self.RETIREMENT_FIELDS and kwargs.get("status") == VersionStatus.RETIRED
        if not is_retirement and frozen.exists():
            raise PublishedVersionIsImmutable("Published and retired protocol versions cannot be changed.")
        return super().update(**kwargs)

    def delete(self):
        if self.filter(status__in=FROZEN_STATUSES).exists():
            raise PublishedVersionIsImmutable("Published and retired protocol versions cannot be deleted.")
        return super().delete()

    def published(self):
        return self.filter(status=VersionStatus.PUBLISHED)


class ProtocolVersion(models.Model):
    protocol = models.ForeignKey(Protocol, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=VersionStatus.choices, default=VersionStatus.DRAFT)

    utilization = models.TextField(help_text="Where the center uses anakinra (context shown to clinicians).")
    indications_summary = models.TextField(help_text="The center's line of therapy and prerequisites, in brief.")
    notes = models.TextField(blank=True, help_text="Protocol notes shown with every recommendation.")
    reported_car_target = models.CharField(
        "reported CAR target experience",
        max_length=12,
        blank=True,
        choices=[(t.value, t.value) for t in CarTarget if t != CarTarget.OTHER],
        help_text="The CAR T product the center reports experience with; blank when the letter does not say.",
    )
    concentration_mg_per_ml = models.DecimalField(
        "concentration (mg/mL)",
        max_digits=6,
        decimal_places=2,
        default=Decimal("150"),
        help_text="Product concentration used for volumes (100 mg in 0.67 mL = 150 mg/mL).",
    )

    # Governance.
    change_reason = models.TextField(blank=True)
    coverage_note = models.TextField(
        blank=True,
        help_text="The author's reason why no test patient's answer changes with some changed amount.",
    )
    authored_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approval_source = models.CharField(
        max_length=200,
        blank=True,
        help_text="Who or what approved a version with no approving user (the reviewed seed data file).",
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    next_review = models.DateField(null=True, blank=True)

    # Cross-center comparison amounts (clinical.md section 4), approved with the version like every other number.
    # All or none: a version without them makes no comparison and says so. Read them with
    # protocols.selectors.catalog.protocol_version_thresholds (or ProtocolData.thresholds).
    reported_max_mg_per_kg_per_day = models.DecimalField(
        "highest reported amount (mg/kg/day)",
        max_digits=8,
        decimal_places=3,
        null=True,
        blank=True,
        help_text="above_reported_maximum: the highest per-kg daily amount any center reports (10 in the letter).",
    )
    reported_max_basis = models.CharField(
        "highest reported amount: what it is",
        max_length=200,
        blank=True,
        help_text='Ends the warning sentence, e.g. "the highest per-kg daily amount any of the six centers reports".',
    )
    usual_daily_cap_mg = models.DecimalField(
        "usual per-day cap (mg/day)",
        max_digits=8,
        decimal_places=1,
        null=True,
        blank=True,
        help_text="above_usual_daily_cap: shown above this per-day amount where a step states no per-day cap.",
    )
    usual_daily_cap_basis = models.CharField(
        "usual per-day cap: what it is",
        max_length=200,
        blank=True,
        help_text='Ends the note, e.g. "the per-day cap that three of the six centers state".',
    )
    thresholds_reference = models.ForeignKey(
        "evidence.Reference",
        verbose_name="comparison amounts: source",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    thresholds_locator = models.CharField(
        "comparison amounts: where in the source", max_length=60, blank=True, help_text='e.g. "Table 1".'
    )
    label_reference = models.ForeignKey(
        "evidence.Reference",
        verbose_name="product label",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Cited wherever a label-derived rule or figure is used (the letter's reference 8).",
    )
    source_fingerprint = models.CharField(
        max_length=64, blank=True, help_text="Hash of the data-file entry this version was loaded from."
    )
    based_on = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The version this draft was copied from.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    edit_revision = models.PositiveIntegerField(default=0, help_text="Bumped on every save; refuses lost updates.")

    objects = ProtocolVersionQuerySet.as_manager()
    history = protocol_history()

    class Meta:
        ordering = ["protocol__institution__name", "-number"]
        permissions = [("approve_protocolversion", "Can approve and publish another pharmacist's draft")]
        constraints = [
            models.UniqueConstraint(fields=["protocol", "number"], name="version_number_unique"),
            models.UniqueConstraint(
                fields=["protocol"], condition=Q(status="published"), name="one_published_version_per_protocol"
            ),
            models.CheckConstraint(condition=Q(number__gte=1), name="version_number_positive"),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in VersionStatus]), name="version_status_known"
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["published", "retired"]) | Q(published_at__isnull=False),
                name="published_version_has_published_at",
            ),
            models.CheckConstraint(condition=Q(concentration_mg_per_ml__gt=0), name="version_concentration_positive"),
            models.CheckConstraint(
                condition=Q(
                    reported_max_mg_per_kg_per_day__isnull=True,
                    usual_daily_cap_mg__isnull=True,
                    reported_max_basis="",
                    usual_daily_cap_basis="",
                )
                | Q(
                    reported_max_mg_per_kg_per_day__gt=0,
                    usual_daily_cap_mg__gt=0,
                    reported_max_mg_per_kg_per_day__isnull=False,
                    usual_daily_cap_mg__isnull=False,
                )
                & ~Q(reported_max_basis="")
                & ~Q(usual_daily_cap_basis=""),
                name="version_thresholds_complete",
            ),
            models.UniqueConstraint(
                fields=["protocol"],
                condition=Q(status__in=["draft", "submitted"]),
                name="one_open_version_per_protocol",
                violation_error_message=(
                    "This protocol already has a draft or a version awaiting approval: continue that one."
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.protocol} v{self.number} ({self.get_status_display().lower()})"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            stored_status = type(self).objects.filter(pk=self.pk).values_list("status", flat=True).first()
            if stored_status in FROZEN_STATUSES:
                raise PublishedVersionIsImmutable(f"{self} is {stored_status} and cannot be changed.")
        self.edit_revision += 1
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self.is_frozen:
            raise PublishedVersionIsImmutable(f"{self} is {self.status} and cannot be deleted.")
        return super().delete(*args, **kwargs)

    def clean(self) -> None:
        # Field messages for the CheckConstraints above (forms show these instead of a constraint name).
        errors: dict[str, str] = {}
        if self.number is not None and self.number < 1:
            errors["number"] = "Version numbers start at 1."
        if self.status and self.status not in VersionStatus.values:
            errors["status"] = f"Unknown status {self.status!r}."
        if self.status in FROZEN_STATUSES and self.published_at is None:
            errors["published_at"] = "A published or retired version needs its publication time."
        if self.concentration_mg_per_ml is not None and self.concentration_mg_per_ml <= 0:
            errors["concentration_mg_per_ml"] = "The concentration must be above 0 mg/mL."
        self._clean_thresholds(errors)
        if errors:
            raise ValidationError(errors)

    THRESHOLD_FIELDS = (
        "reported_max_mg_per_kg_per_day",
        "reported_max_basis",
        "usual_daily_cap_mg",
        "usual_daily_cap_basis",
    )
    # A version's content, the one list of it, in the order a diff shows it: what a pharmacist writes and a
    # second approves, what a new draft copies, what the admin form edits, what counts as an edit in history.
    # First the protocol's own words and product, then the comparison amounts with their source and the label.
    TEXT_FIELDS = ("utilization", "indications_summary", "notes", "reported_car_target", "concentration_mg_per_ml")
    COMPARISON_FIELDS = (*THRESHOLD_FIELDS, "thresholds_reference", "thresholds_locator", "label_reference")
    CONTENT_FIELDS = (*TEXT_FIELDS, *COMPARISON_FIELDS)

    @classmethod
    def content_attnames(cls) -> tuple[str, ...]:
        """CONTENT_FIELDS by column (`label_reference_id`): read without loading a referenced row."""
        return tuple(cls._meta.get_field(name).attname for name in cls.CONTENT_FIELDS)

    def _clean_thresholds(self, errors: dict[str, str]) -> None:
        values = {name: getattr(self, name) for name in self.THRESHOLD_FIELDS}
        given = {name for name, value in values.items() if value not in (None, "")}
        if not given:
            return
        for name in self.THRESHOLD_FIELDS:
            if name not in given:
                errors[name] = "Give all four comparison fields (both amounts and what each is), or none."
        for name in ("reported_max_mg_per_kg_per_day", "usual_daily_cap_mg"):
            if values[name] is not None and values[name] <= 0:
                errors[name] = "The amount must be above 0."

    @property
    def is_frozen(self) -> bool:
        return self.status in FROZEN_STATUSES

    @property
    def approver_display(self) -> str:
        return user_display(self.approved_by) if self.approved_by_id else self.approval_source


class VersionChildQuerySet(models.QuerySet):
    """Rows of a frozen version cannot be bulk-created, bulk-changed or bulk-deleted either.
    Bulk changes to an open version's rows move its revision, like a save does."""

    def _touches_frozen(self) -> bool:
        lookup = f"{self.model.VERSION_PATH}__status__in"
        return self.filter(**{lookup: FROZEN_STATUSES}).exists()

    def _version_ids(self) -> set[int]:
        return set(self.values_list(self.model.VERSION_PATH, flat=True))

    def update(self, **kwargs):
        if self._touches_frozen():
            raise PublishedVersionIsImmutable("Rows of a published protocol version cannot be changed.")
        version_ids = self._version_ids()
        result = super().update(**kwargs)
        version_revisions_bump(version_ids)
        return result

    def delete(self):
        if self._touches_frozen():
            raise PublishedVersionIsImmutable("Rows of a published protocol version cannot be deleted.")
        version_ids = self._version_ids()
        result = super().delete()
        version_revisions_bump(version_ids)
        return result

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        version_ids = {obj.owning_version_id() for obj in objs}
        if ProtocolVersion.objects.filter(pk__in=version_ids, status__in=FROZEN_STATUSES).exists():
            raise PublishedVersionIsImmutable("Rows cannot be added to a published protocol version.")
        result = super().bulk_create(objs, *args, **kwargs)
        version_revisions_bump(version_ids)
        return result


def version_revisions_bump(version_ids) -> None:
    """A changed rule, step or citation is a change of its (open) version: a stale edit page must not win."""
    ProtocolVersion.objects.filter(pk__in=[v for v in version_ids if v is not None], status__in=OPEN_STATUSES).update(
        edit_revision=F("edit_revision") + 1, updated_at=timezone.now()
    )


class VersionChild(models.Model):
    """Base for rows that belong to a version and freeze with it.

    Raw saves (fixture loading and test-database restores) go through `save_base` and are not
    checked here: they rebuild rows that already exist rather than edit them.
    """

    VERSION_PATH = "version"

    objects = VersionChildQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self._stored_version_frozen():
            raise PublishedVersionIsImmutable("Rows of a published protocol version cannot be changed.")
        super().save(*args, **kwargs)
        version_revisions_bump({self.owning_version_id()})

    def delete(self, *args, **kwargs):
        if self._stored_version_frozen():
            raise PublishedVersionIsImmutable("Rows of a published protocol version cannot be deleted.")
        version_id = self.owning_version_id()
        result = super().delete(*args, **kwargs)
        version_revisions_bump({version_id})
        return result

    def owning_version_id(self) -> int | None:
        return self.version_id

    def _stored_version_frozen(self) -> bool:
        version_ids = {self.owning_version_id()}
        if self.pk is not None:
            stored = type(self).objects.filter(pk=self.pk).values_list(self.VERSION_PATH, flat=True).first()
            if stored is not None:
                version_ids.add(stored)
        return ProtocolVersion.objects.filter(pk__in=version_ids, status__in=FROZEN_STATUSES).exists()


class ToxicityFlags(models.Model):
    applies_to_crs = models.BooleanField("CRS", default=False)
    applies_to_icans = models.BooleanField("ICANS", default=False)
    applies_to_carhlh = models.BooleanField("carHLH", default=False)

    class Meta:
        abstract = True

    @property
    def toxicities(self) -> tuple[str, ...]:
        flags = (
            (Toxicity.CRS, self.applies_to_crs),
            (Toxicity.ICANS, self.applies_to_icans),
            (Toxicity.CARHLH, self.applies_to_carhlh),
        )
        return tuple(t.value for t, on in flags if on)


AT_LEAST_ONE_TOXICITY = Q(applies_to_crs=True) | Q(applies_to_icans=True) | Q(applies_to_carhlh=True)
# The grade band of rules and steps, declared once in engine.limits (the inputs' grades).
GRADES = limits.TOXICITY_GRADE
GRADE_VALIDATORS = [MinValueValidator(GRADES.low), MaxValueValidator(GRADES.high)]
TOCILIZUMAB_DOSES = limits.RULE_TOCILIZUMAB_DOSES
REPEAT_TOCILIZUMAB_FROM = limits.RULE_REPEAT_TOCILIZUMAB_FROM_DOSES
# The smallest amount the app can show (doses are shown to 0.1 mg).
MEASURABLE_MG = Decimal("0.1")


class ProtocolCitation(VersionChild):
    """A reference cited on every recommendation from this version (the center-to-evidence links)."""

    version = models.ForeignKey(ProtocolVersion, on_delete=models.CASCADE, related_name="citations")
    reference = models.ForeignKey("evidence.Reference", on_delete=models.PROTECT, related_name="+")
    locator = models.CharField(max_length=60, blank=True, help_text='Where in the source, e.g. "Table 1".')
    position = models.PositiveSmallIntegerField(default=0)

    history = protocol_history()

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["version", "reference"], name="citation_once_per_version"),
        ]

    def __str__(self) -> str:
        return f"{self.reference.short_label} ({self.locator})" if self.locator else self.reference.short_label


class RuleStatus(models.TextChoices):
    INDICATED = "indicated", "Indicated"
    CONSIDER = "consider", "Consider"


class IndicationRule(VersionChild, ToxicityFlags):
    """When the protocol uses anakinra: toxicities, grade floor and prerequisites give a status."""

    version = models.ForeignKey(ProtocolVersion, on_delete=models.CASCADE, related_name="rules")
    position = models.PositiveSmallIntegerField(default=0)
    min_grade = models.PositiveSmallIntegerField("lowest grade", default=1, validators=GRADE_VALIDATORS)
    min_prior_tocilizumab_doses = models.PositiveSmallIntegerField(
        "prior tocilizumab doses needed", default=0, validators=[MaxValueValidator(TOCILIZUMAB_DOSES.high)]
    )
    requires_steroids = models.BooleanField("needs steroids given or starting", default=False)
    result_status = models.CharField(max_length=16, choices=RuleStatus.choices, default=RuleStatus.INDICATED)
    summary = models.CharField(max_length=300, help_text='The protocol\'s words for this use, e.g. "third line".')
    first_line_if_isolated_late_onset = models.BooleanField(
        "first line for isolated late onset",
        default=False,
        help_text="Reasons say first line when onset is late and isolated, with no fever and no hypotension.",
    )
    first_line_summary = models.CharField(max_length=300, blank=True)
    max_grade = models.PositiveSmallIntegerField("highest grade", default=4, validators=GRADE_VALIDATORS)
    repeat_tocilizumab_from_doses = models.PositiveSmallIntegerField(
        "note from this many tocilizumab doses",
        null=True,
        blank=True,
        validators=[MinValueValidator(REPEAT_TOCILIZUMAB_FROM.low), MaxValueValidator(REPEAT_TOCILIZUMAB_FROM.high)],
        help_text="With this many prior tocilizumab doses or more, the reasons add the note below (status kept).",
    )
    repeat_tocilizumab_note = models.CharField(
        "note on repeat tocilizumab",
        max_length=300,
        blank=True,
        help_text='e.g. "the protocol places anakinra before a repeat tocilizumab dose".',
    )

    history = protocol_history()

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(condition=AT_LEAST_ONE_TOXICITY, name="rule_applies_to_a_toxicity"),
            models.CheckConstraint(
                condition=Q(min_grade__gte=GRADES.low, min_grade__lte=GRADES.high), name="rule_grade_1_to_4"
            ),
            models.CheckConstraint(
                condition=Q(max_grade__lte=GRADES.high, min_grade__lte=F("max_grade")), name="rule_grade_band_valid"
            ),
            models.CheckConstraint(
                condition=(Q(repeat_tocilizumab_from_doses__isnull=True) & Q(repeat_tocilizumab_note=""))
                | (
                    Q(repeat_tocilizumab_from_doses__isnull=False)
                    & Q(
                        repeat_tocilizumab_from_doses__gte=REPEAT_TOCILIZUMAB_FROM.low,
                        repeat_tocilizumab_from_doses__lte=REPEAT_TOCILIZUMAB_FROM.high,
                    )
                    & ~Q(repeat_tocilizumab_note="")
                ),
                name="rule_repeat_tocilizumab_note_complete",
            ),
            models.CheckConstraint(
                condition=Q(min_prior_tocilizumab_doses__lte=TOCILIZUMAB_DOSES.high),
                name="rule_tocilizumab_doses_0_to_10",
            ),
            models.CheckConstraint(condition=Q(result_status__in=["indicated", "consider"]), name="rule_status_known"),
            models.CheckConstraint(
                condition=Q(first_line_if_isolated_late_onset=False) | ~Q(first_line_summary=""),
                name="rule_first_line_has_summary",
            ),
        ]

    def __str__(self) -> str:
        grades = f"grade >= {self.min_grade}" if self.max_grade >= 4 else f"grade {self.min_grade}-{self.max_grade}"
        return f"{', '.join(self.toxicities)} {grades}: {self.result_status}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if not self.toxicities:
            errors["applies_to_crs"] = "Choose at least one toxicity the rule applies to (CRS, ICANS or carHLH)."
        if self.min_grade is not None and not GRADES.contains(self.min_grade):
            errors["min_grade"] = f"The lowest grade must be from {GRADES.low} to {GRADES.high}."
        if self.min_prior_tocilizumab_doses is not None and self.min_prior_tocilizumab_doses > TOCILIZUMAB_DOSES.high:
            errors["min_prior_tocilizumab_doses"] = (
                f"Prior tocilizumab doses needed must be from {TOCILIZUMAB_DOSES.low} to {TOCILIZUMAB_DOSES.high}."
            )
        if self.result_status and self.result_status not in RuleStatus.values:
            errors["result_status"] = "The status must be indicated or consider."
        if self.max_grade is not None and not GRADES.contains(self.max_grade):
            errors["max_grade"] = f"The highest grade must be from {GRADES.low} to {GRADES.high}."
        elif self.min_grade is not None and self.max_grade is not None and self.min_grade > self.max_grade:
            errors.setdefault(
                "min_grade", f"The lowest grade ({self.min_grade}) is above the highest grade ({self.max_grade})."
            )
        doses, note = self.repeat_tocilizumab_from_doses, self.repeat_tocilizumab_note.strip()
        if doses is not None and not REPEAT_TOCILIZUMAB_FROM.contains(doses):
            errors["repeat_tocilizumab_from_doses"] = (
                "The number of tocilizumab doses must be from "
                f"{REPEAT_TOCILIZUMAB_FROM.low} to {REPEAT_TOCILIZUMAB_FROM.high}."
            )
        elif (doses is None) != (not note):
            errors["repeat_tocilizumab_note"] = "Give both the number of tocilizumab doses and the note, or neither."
        if self.first_line_if_isolated_late_onset and not self.first_line_summary.strip():
            errors["first_line_summary"] = (
                "Give the first-line wording shown when onset is late and isolated (or untick that option)."
            )
        if errors:
            raise ValidationError(errors)


class DosingStep(VersionChild, ToxicityFlags):
    """One regimen of a protocol, with its units in the field names."""

    version = models.ForeignKey(ProtocolVersion, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField(default=0)
    kind = models.CharField(max_length=12, choices=[(k.value, k.value.capitalize()) for k in StepKind])
    name = models.CharField(max_length=120)
    min_grade = models.PositiveSmallIntegerField("lowest grade", default=1, validators=GRADE_VALIDATORS)
    max_grade = models.PositiveSmallIntegerField("highest grade", default=4, validators=GRADE_VALIDATORS)

    dose_basis = models.CharField(max_length=12, choices=[(b.value, b.value) for b in DoseBasis])
    amount_low = models.DecimalField(
        "amount, low (in the dose basis unit)", max_digits=8, decimal_places=3, validators=[MinValueValidator(0)]
    )
    amount_high = models.DecimalField(
        "amount, high (in the dose basis unit)", max_digits=8, decimal_places=3, validators=[MinValueValidator(0)]
    )
    interval_hours = models.PositiveSmallIntegerField(
        "interval (hours)",
        null=True,
        blank=True,
        choices=[(h, f"every {h} h") for h in INTERVAL_HOURS_CHOICES],
        help_text="Blank when the protocol states no frequency; per-day amounts are then given.",
    )
    interval_is_maximum = models.BooleanField(
        "interval is the most frequent allowed", default=False, help_text='"Up to every 6 hours".'
    )
    route_iv = models.BooleanField("IV", default=False)
    route_sc = models.BooleanField("subcut", default=False)
    max_single_dose_mg = models.DecimalField(
        "maximum per dose (mg)", max_digits=8, decimal_places=1, null=True, blank=True
    )
    max_daily_dose_mg = models.DecimalField(
        "maximum per day (mg)", max_digits=8, decimal_places=1, null=True, blank=True
    )
    escalation_ceiling_amount = models.DecimalField(
        "escalation ceiling (in its basis unit)", max_digits=8, decimal_places=3, null=True, blank=True
    )
    escalation_ceiling_basis = models.CharField(
        max_length=12,
        blank=True,
        choices=[(b.value, b.value) for b in (DoseBasis.MG_PER_KG_PER_DAY, DoseBasis.MG_PER_DAY)],
    )
    rounding_increment_mg = models.DecimalField(
        "round to multiples of (mg)",
        max_digits=8,
        decimal_places=1,
        null=True,
        blank=True,
        help_text="Vial or syringe size, e.g. 100 mg.",
    )
    rounding_tolerance_percent = models.DecimalField(
        "rounding tolerance (%)",
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Round only when that moves the dose by at most this percentage (above 0, at most 25).",
    )
    duration_text = models.TextField("duration", blank=True)
    taper_text = models.TextField("taper", blank=True)
    notes = models.TextField(blank=True)

    history = protocol_history()

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(condition=AT_LEAST_ONE_TOXICITY, name="step_applies_to_a_toxicity"),
            models.CheckConstraint(condition=Q(kind__in=[k.value for k in StepKind]), name="step_kind_known"),
            models.CheckConstraint(
                condition=Q(dose_basis__in=[b.value for b in DoseBasis]), name="step_dose_basis_known"
            ),
            models.CheckConstraint(condition=Q(route_iv=True) | Q(route_sc=True), name="step_has_a_route"),
            models.CheckConstraint(
                condition=Q(min_grade__gte=GRADES.low, max_grade__lte=GRADES.high, min_grade__lte=F("max_grade")),
                name="step_grade_band_valid",
            ),
            # Every dose a step can produce must be measurable (at least 0.1 mg, at 1 kg): amounts of
            # at least 0.1, and a per-day amount or cap split over n doses of at least 0.1 mg each.
            models.CheckConstraint(condition=Q(amount_low__gte=MEASURABLE_MG), name="step_amount_measurable"),
            models.CheckConstraint(
                condition=Q(dose_basis__in=[DoseBasis.MG_PER_KG_PER_DOSE.value, DoseBasis.MG_PER_DOSE.value])
                | Q(interval_hours__isnull=True)
                | Q(GreaterThanOrEqual(F("amount_low") * F("interval_hours"), Value(MEASURABLE_MG * 24))),
                name="step_divided_dose_measurable",
            ),
            models.CheckConstraint(
                condition=Q(max_daily_dose_mg__isnull=True)
                | Q(interval_hours__isnull=True)
                | Q(GreaterThanOrEqual(F("max_daily_dose_mg") * F("interval_hours"), Value(MEASURABLE_MG * 24))),
                name="step_daily_cap_divides_measurably",
            ),
            models.CheckConstraint(condition=Q(amount_low__lte=F("amount_high")), name="step_amount_low_le_high"),
            models.CheckConstraint(
                condition=Q(interval_hours__isnull=True) | Q(interval_hours__in=INTERVAL_HOURS_CHOICES),
                name="step_interval_divides_day",
            ),
            models.CheckConstraint(
                condition=~Q(dose_basis__in=[DoseBasis.MG_PER_KG_PER_DOSE.value, DoseBasis.MG_PER_DOSE.value])
                | Q(interval_hours__isnull=False),
                name="step_per_dose_basis_needs_interval",
            ),
            models.CheckConstraint(
                condition=Q(interval_is_maximum=False) | Q(interval_hours__isnull=False),
                name="step_interval_maximum_needs_interval",
            ),
            models.CheckConstraint(
                condition=Q(max_single_dose_mg__isnull=True)
                | Q(max_single_dose_mg__gt=0, interval_hours__isnull=False),
                name="step_single_dose_cap_positive_with_interval",
            ),
            models.CheckConstraint(
                condition=Q(max_daily_dose_mg__isnull=True) | Q(max_daily_dose_mg__gt=0),
                name="step_daily_cap_positive",
            ),
            models.CheckConstraint(
                condition=Q(max_single_dose_mg__isnull=True)
                | Q(max_daily_dose_mg__isnull=True)
                | Q(max_single_dose_mg__lte=F("max_daily_dose_mg")),
                name="step_single_cap_le_daily_cap",
            ),
            models.CheckConstraint(
                condition=(Q(escalation_ceiling_amount__isnull=True) & Q(escalation_ceiling_basis=""))
                | (
                    # SQL CHECK passes on NULL, so "not null" is spelled out.
                    Q(escalation_ceiling_amount__isnull=False, escalation_ceiling_amount__gt=0)
                    & Q(escalation_ceiling_basis__in=[DoseBasis.MG_PER_KG_PER_DAY.value, DoseBasis.MG_PER_DAY.value])
                ),
                name="step_escalation_complete",
            ),
            models.CheckConstraint(
                condition=(Q(rounding_increment_mg__isnull=True) & Q(rounding_tolerance_percent__isnull=True))
                | Q(
                    rounding_increment_mg__isnull=False,
                    rounding_tolerance_percent__isnull=False,
                    rounding_increment_mg__gt=0,
                    rounding_tolerance_percent__gt=0,
                    rounding_tolerance_percent__lte=25,
                ),
                name="step_rounding_complete_and_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    def clean(self) -> None:
        """Every CheckConstraint of a step, as a message on the field to fix (units in the words)."""
        errors: dict[str, str] = {}
        if not self.toxicities:
            errors["applies_to_crs"] = "Choose at least one toxicity the step applies to (CRS, ICANS or carHLH)."
        if not (self.route_iv or self.route_sc):
            errors["route_iv"] = "Choose at least one route (IV or subcut)."
        self._clean_grades(errors)
        self._clean_amounts(errors)
        self._clean_interval_and_caps(errors)
        self._clean_escalation(errors)
        self._clean_rounding(errors)
        if errors:
            raise ValidationError(errors)

    def _clean_grades(self, errors: dict[str, str]) -> None:
        if self.min_grade is not None and not GRADES.contains(self.min_grade):
            errors["min_grade"] = f"The lowest grade must be from {GRADES.low} to {GRADES.high}."
        if self.max_grade is not None and not GRADES.contains(self.max_grade):
            errors["max_grade"] = f"The highest grade must be from {GRADES.low} to {GRADES.high}."
        if self.min_grade is not None and self.max_grade is not None and self.min_grade > self.max_grade:
            errors.setdefault(
                "min_grade", f"The lowest grade ({self.min_grade}) is above the highest grade ({self.max_grade})."
            )

    def _clean_amounts(self, errors: dict[str, str]) -> None:
        unit = self.dose_basis or "the dose basis unit"
        low, high = self.amount_low, self.amount_high
        smallest = f"{notation.plain_number(MEASURABLE_MG)} {unit}"
        if low is not None and low < MEASURABLE_MG:
            errors["amount_low"] = f"The low amount must be at least {smallest} (doses are shown to 0.1 mg)."
        if high is not None and high < MEASURABLE_MG:
            errors["amount_high"] = f"The high amount must be at least {smallest} (doses are shown to 0.1 mg)."
        divided = self.dose_basis in (DoseBasis.MG_PER_KG_PER_DAY, DoseBasis.MG_PER_DAY) and self.interval_hours
        if divided and low is not None and low >= MEASURABLE_MG and low * self.interval_hours < MEASURABLE_MG * 24:
            errors.setdefault(
                "amount_low",
                f"Divided every {self.interval_hours} hours, {notation.plain_number(low, Decimal('0.001'))} {unit} "
                "gives less than 0.1 mg a dose at 1 kg: raise the amount or lengthen the interval.",
            )
        if low is not None and high is not None and low > high:
            errors.setdefault(
                "amount_low",
                f"The low amount ({notation.plain_number(low, Decimal('0.001'))} {unit}) is above the high amount "
                f"({notation.plain_number(high, Decimal('0.001'))} {unit}). For a single value, give it in both.",
            )

    def _clean_interval_and_caps(self, errors: dict[str, str]) -> None:
        if self.interval_hours is not None and self.interval_hours not in INTERVAL_HOURS_CHOICES:
            errors["interval_hours"] = "The interval must divide a day: every 1, 2, 3, 4, 6, 8, 12 or 24 hours."
        if self.dose_basis in (DoseBasis.MG_PER_KG_PER_DOSE, DoseBasis.MG_PER_DOSE) and self.interval_hours is None:
            errors.setdefault(
                "interval_hours", f"A {self.dose_basis} amount needs an interval (how many hours between doses)."
            )
        if self.interval_is_maximum and self.interval_hours is None:
            errors["interval_is_maximum"] = '"Most frequent allowed" needs an interval (hours).'
        single, daily = self.max_single_dose_mg, self.max_daily_dose_mg
        if single is not None and single <= 0:
            errors["max_single_dose_mg"] = "The maximum per dose must be above 0 mg (or left blank)."
        elif single is not None and self.interval_hours is None:
            errors["max_single_dose_mg"] = (
                "A maximum per dose (mg) needs an interval: without one, only per-day amounts are given."
            )
        if daily is not None and daily <= 0:
            errors["max_daily_dose_mg"] = "The maximum per day must be above 0 mg (or left blank)."
        elif daily is not None and self.interval_hours and daily * self.interval_hours < MEASURABLE_MG * 24:
            errors["max_daily_dose_mg"] = (
                f"Divided every {self.interval_hours} hours, a maximum of {notation.amount(daily, 'mg/day')} "
                "gives less than 0.1 mg a dose."
            )
        if single is not None and daily is not None and 0 < daily < single:
            errors.setdefault(
                "max_single_dose_mg",
                f"The maximum per dose ({notation.amount(single, 'mg')}) is above the maximum per day "
                f"({notation.amount(daily, 'mg')}).",
            )

    def _clean_escalation(self, errors: dict[str, str]) -> None:
        amount, basis = self.escalation_ceiling_amount, self.escalation_ceiling_basis
        if amount is None and not basis:
            return
        if amount is None:
            errors["escalation_ceiling_amount"] = "Give the escalation ceiling amount with its basis, or neither."
        elif amount <= 0:
            errors["escalation_ceiling_amount"] = "The escalation ceiling must be above 0."
        if not basis:
            errors["escalation_ceiling_basis"] = (
                "Give the escalation ceiling basis (mg/kg/day or mg/day) with its amount."
            )
        elif basis not in (DoseBasis.MG_PER_KG_PER_DAY, DoseBasis.MG_PER_DAY):
            errors["escalation_ceiling_basis"] = "The escalation ceiling basis must be mg/kg/day or mg/day."

    def _clean_rounding(self, errors: dict[str, str]) -> None:
        increment, tolerance = self.rounding_increment_mg, self.rounding_tolerance_percent
        if increment is None and tolerance is None:
            return
        if increment is None:
            errors["rounding_increment_mg"] = "Give the vial or syringe size (mg) to round to, or no rounding at all."
        elif increment <= 0:
            errors["rounding_increment_mg"] = "The rounding increment must be above 0 mg."
        if tolerance is None:
            errors["rounding_tolerance_percent"] = "Give the rounding tolerance (%) with the increment, or neither."
        elif not 0 < tolerance <= 25:
            errors["rounding_tolerance_percent"] = (
                f"The rounding tolerance must be above 0% and at most 25% (it is {notation.percent(tolerance)})."
            )

    @property
    def routes(self) -> tuple[str, ...]:
        return tuple(r for r, on in (("IV", self.route_iv), ("SC", self.route_sc)) if on)


class StepCitation(VersionChild):
    """A reference cited on one dosing step."""

    VERSION_PATH = "step__version"

    step = models.ForeignKey(DosingStep, on_delete=models.CASCADE, related_name="citations")
    reference = models.ForeignKey("evidence.Reference", on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)

    history = protocol_history()

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["step", "reference"], name="step_citation_once")]

    def __str__(self) -> str:
        return self.reference.short_label

    def owning_version_id(self) -> int | None:
        if self.step_id is None:
            return None
        return DosingStep.objects.filter(pk=self.step_id).values_list("version_id", flat=True).first()


class AmountConfirmation(VersionChild):
    """The author's confirmation, with a reason, of an amount changed in a draft that lies above what the
    letter reports (protocols.change_checks). It holds for that amount as confirmed (`amount_key`): changed
    again, it must be confirmed again. It belongs to its version and is frozen with it."""

    version = models.ForeignKey(ProtocolVersion, on_delete=models.CASCADE, related_name="amount_confirmations")
    step_name = models.CharField(max_length=120)
    field = models.CharField(max_length=40)
    amount_key = models.CharField(max_length=400)
    amount_text = models.CharField(max_length=400, help_text="What was confirmed, in words, with its per-day amount.")
    reason = models.TextField()
    confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    confirmed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["confirmed_at", "id"]
        constraints = [models.CheckConstraint(condition=~Q(reason=""), name="amount_confirmation_has_reason")]

    def __str__(self) -> str:
        return f"{self.step_name}: {self.amount_text}"


class ProtocolTestPatient(VersionChild):
    """An example patient a pharmacist keeps on a protocol version, with the answer that version must give.

    Test patients belong to their version like its steps: copied into a draft, edited there, shown in the
    diff, approved with it and frozen when it is published. `inputs` are exactly the API's request fields
    (validated by `engine.inputs.RecommendationRequest`, without `institution`: the patient belongs to this
    protocol). A named step's ordered per-dose and per-day amounts are checked exactly, as ranges; a blank
    per-dose range expects none (no interval). A version cannot be submitted or published while any of its
    test patients fails on it.
    """

    version = models.ForeignKey(ProtocolVersion, on_delete=models.CASCADE, related_name="test_patients")
    label = models.CharField(max_length=200, help_text='What this patient checks, e.g. "60 kg: per-dose cap".')
    inputs = models.JSONField(
        "patient inputs (API request fields, JSON)",
        encoder=DecimalJSONEncoder,
        decoder=DecimalJSONDecoder,
        help_text=(
            'The fields of POST /api/v1/recommendations, without "institution". Example: {"weight_kg": 20, '
            '"age_years": 8, "toxicities": [{"type": "CRS", "grade": 3}], "prior_tocilizumab_doses": 1, '
            '"prior_steroids": true}'
        ),
    )
    expected_status = models.CharField(max_length=16, choices=[(s.value, s.value.replace("_", " ")) for s in Status])
    expected_step_name = models.CharField(
        "step checked",
        max_length=120,
        blank=True,
        help_text="Name of the dosing step whose amounts are checked; blank to check the status only.",
    )
    expected_per_dose_low_mg = models.DecimalField(
        "expected per dose, low (mg)", max_digits=8, decimal_places=1, null=True, blank=True
    )
    expected_per_dose_high_mg = models.DecimalField(
        "expected per dose, high (mg)",
        max_digits=8,
        decimal_places=1,
        null=True,
        blank=True,
        help_text="Leave both per-dose amounts blank when the step states no interval (no per-dose amount).",
    )
    expected_per_day_low_mg = models.DecimalField(
        "expected per day, low (mg)", max_digits=8, decimal_places=1, null=True, blank=True
    )
    expected_per_day_high_mg = models.DecimalField(
        "expected per day, high (mg)", max_digits=8, decimal_places=1, null=True, blank=True
    )
    arithmetic = models.TextField(blank=True, help_text="How the expected amounts were worked out.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = protocol_history()

    class Meta:
        ordering = ["label", "id"]
        constraints = [
            models.UniqueConstraint(fields=["version", "label"], name="test_patient_label_unique_in_version"),
            models.CheckConstraint(
                condition=Q(expected_status__in=[s.value for s in Status]), name="test_patient_status_known"
            ),
            models.CheckConstraint(
                condition=(
                    Q(expected_step_name="")
                    & Q(expected_per_dose_low_mg__isnull=True, expected_per_dose_high_mg__isnull=True)
                    & Q(expected_per_day_low_mg__isnull=True, expected_per_day_high_mg__isnull=True)
                )
                | (
                    ~Q(expected_step_name="")
                    & Q(expected_per_day_low_mg__gt=0, expected_per_day_low_mg__lte=F("expected_per_day_high_mg"))
                ),
                name="test_patient_step_has_per_day_range",
            ),
            models.CheckConstraint(
                condition=Q(expected_per_dose_low_mg__isnull=True, expected_per_dose_high_mg__isnull=True)
                | Q(expected_per_dose_low_mg__gt=0, expected_per_dose_low_mg__lte=F("expected_per_dose_high_mg")),
                name="test_patient_per_dose_range_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.label

    def clean(self) -> None:
        errors: dict[str, str | list[str]] = {}
        if self.inputs is not None:
            problems = patient_input_problems(self.inputs)
            if problems:
                errors["inputs"] = problems
        if self.expected_status and self.expected_status not in {s.value for s in Status}:
            errors["expected_status"] = f"Unknown status {self.expected_status!r}."
        dose = (self.expected_per_dose_low_mg, self.expected_per_dose_high_mg)
        day = (self.expected_per_day_low_mg, self.expected_per_day_high_mg)
        if not self.expected_step_name.strip():
            if any(v is not None for v in (*dose, *day)):
                errors["expected_step_name"] = "Name the step these amounts belong to, or clear the amounts."
        elif None in day:
            errors["expected_per_day_low_mg"] = "Give the expected per-day range (mg) for the named step."
        _range_problem(errors, "expected_per_day_low_mg", day, "per-day")
        if (dose[0] is None) != (dose[1] is None):
            errors["expected_per_dose_low_mg"] = "Give both per-dose amounts (mg), or neither (no interval)."
        _range_problem(errors, "expected_per_dose_low_mg", dose, "per-dose")
        if errors:
            raise ValidationError(errors)

    def patient_inputs(self) -> PatientInputs:
        return RecommendationRequest.model_validate(self.inputs).to_patient()


def _range_problem(errors: dict, field: str, bounds: tuple[Decimal | None, Decimal | None], what: str) -> None:
    low, high = bounds
    if field in errors or low is None or high is None:
        return
    if low <= 0 or high <= 0:
        errors[field] = f"The expected {what} amounts must be above 0 mg."
    elif low > high:
        errors[field] = (
            f"The expected {what} low ({notation.amount(low, 'mg')}) is above its high ({notation.amount(high, 'mg')})."
        )


def patient_input_problems(inputs: object) -> list[str]:
    """What is wrong with a test patient's inputs, in the API's own words (empty when valid)."""
    if not isinstance(inputs, dict):
        return ["The inputs must be a JSON object of API request fields."]
    problems = []
    if "institution" in inputs:
        problems.append('Leave out "institution": a test patient belongs to its protocol.')
    try:
        RecommendationRequest.model_validate({k: v for k, v in inputs.items() if k != "institution"})
    except PydanticValidationError as error:
        problems += [
            f"{field}: {message}" for field, messages in validation_errors(error).items() for message in messages
        ]
    return problems


class CatalogRevision(models.Model):
    """One row whose `revision` changes, by database trigger, whenever the published catalog could have:
    any change to protocol versions, institutions or references, however it is made. Reading it is
    how the in-memory catalog (protocols.selectors) knows it is still current."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    revision = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="catalog_revision_single_row")]

    def __str__(self) -> str:
        return f"catalog revision {self.revision}"
