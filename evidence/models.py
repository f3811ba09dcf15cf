"""Bibliographic references and the Table 2 literature summary."""

import re

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from engine.vocabulary import INTERVAL_HOURS_CHOICES, DoseBasis, Route


class Reference(models.Model):
    """One bibliographic record. Identifiers are stored only where the source gives them."""

    key = models.SlugField(max_length=60, unique=True, help_text="Stable key used by the data file.")
    letter_ref_number = models.PositiveSmallIntegerField(
        null=True, blank=True, unique=True, help_text="Number in the letter's reference list (1-43)."
    )
    short_label = models.CharField(
        max_length=200, help_text='Citation label, e.g. "Hines MR, et al. Br J Haematol 2021".'
    )
    authors = models.TextField(blank=True, help_text="Empty where the source names none (e.g. a package insert).")
    title = models.TextField(blank=True)
    journal = models.CharField(max_length=200, blank=True)
    year = models.PositiveSmallIntegerField(null=True, blank=True)
    volume = models.CharField(max_length=40, blank=True)
    issue = models.CharField(max_length=40, blank=True)
    pages = models.CharField(max_length=60, blank=True)
    doi = models.CharField("DOI", max_length=120, blank=True)
    pmid = models.CharField("PMID", max_length=12, blank=True)
    url = models.URLField("URL", max_length=500, blank=True)
    note = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = [models.F("letter_ref_number").asc(nulls_last=True), "key"]
        constraints = [
            models.CheckConstraint(condition=Q(doi="") | Q(doi__startswith="10."), name="reference_doi_starts_10"),
            models.CheckConstraint(
                condition=Q(pmid="") | Q(pmid__regex=r"^[1-9][0-9]{0,9}$"), name="reference_pmid_digits"
            ),
            models.CheckConstraint(
                condition=Q(year__isnull=True) | Q(year__gte=1900, year__lte=2100), name="reference_year_range"
            ),
            models.CheckConstraint(
                condition=Q(letter_ref_number__isnull=True) | Q(letter_ref_number__gte=1),
                name="reference_number_positive",
            ),
        ]

    def __str__(self) -> str:
        prefix = f"[{self.letter_ref_number}] " if self.letter_ref_number else ""
        return f"{prefix}{self.short_label}"

    def clean(self) -> None:
        # Field messages for the CheckConstraints above.
        errors: dict[str, str] = {}
        if self.doi and not self.doi.startswith("10."):
            errors["doi"] = 'A DOI starts with "10." (give it without "https://doi.org/").'
        if self.pmid and not re.fullmatch(r"[1-9][0-9]{0,9}", self.pmid):
            errors["pmid"] = "A PMID is a number of up to 10 digits, without a leading zero."
        if self.year is not None and not 1900 <= self.year <= 2100:
            errors["year"] = "The year must be from 1900 to 2100."
        if self.letter_ref_number is not None and self.letter_ref_number < 1:
            errors["letter_ref_number"] = "Reference numbers start at 1."
        if errors:
            raise ValidationError(errors)

    @property
    def link(self) -> str:
        """The best link a reader can follow: DOI, then PubMed, then the stated URL."""
        if self.doi:
            return f"https://doi.org/{self.doi}"
        if self.pmid:
            return f"https://pubmed.ncbi.nlm.nih.gov/{self.pmid}/"
        return self.url


class Study(models.Model):
    """One row of the letter's Table 2: a published report of anakinra for CAR T-cell toxicity."""

    class Population(models.TextChoices):
        PEDIATRIC = "pediatric", "Pediatric / young adult"
        ADULT = "adult", "Adult"

    key = models.SlugField(max_length=60, unique=True)
    table_order = models.PositiveSmallIntegerField(unique=True, help_text="Row position in Table 2.")
    label = models.CharField(max_length=120, help_text="Authors as cited in the app (corrected spelling).")
    label_as_printed = models.CharField(
        max_length=120, blank=True, help_text="Authors exactly as Table 2 prints them, where that differs."
    )
    study_type = models.CharField(max_length=120)
    population = models.CharField(max_length=12, choices=Population.choices)
    population_summary = models.TextField()
    n_patients = models.PositiveIntegerField(null=True, blank=True, help_text="Patients in the report.")
    product = models.CharField(max_length=200, blank=True)
    anakinra_use = models.TextField()
    dose_as_reported = models.CharField(max_length=200)
    response = models.TextField()
    addresses_crs = models.BooleanField("CRS", default=False)
    addresses_icans = models.BooleanField("ICANS", default=False)
    addresses_carhlh = models.BooleanField("carHLH", default=False)
    references = models.ManyToManyField(Reference, related_name="studies")

    # The regimen the study used, as data (never parsed from dose_as_reported). Linked to the protocol of
    # the center whose own trial it is, it is worked out for the patient's weight on that center's result
    # and printout as literature, never as an order line.
    regimen_protocol = models.ForeignKey(
        "protocols.Protocol",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="literature_regimens",
        verbose_name="show the regimen with the protocol of",
        help_text="The center whose own published trial this is; leave empty to show no regimen.",
    )
    regimen_dose_basis = models.CharField(
        "regimen dose basis", max_length=12, blank=True, choices=[(b.value, b.value) for b in DoseBasis]
    )
    regimen_amount_low = models.DecimalField(
        "regimen amount, low (in its basis unit)",
        max_digits=8,
        decimal_places=3,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
    )
    regimen_amount_high = models.DecimalField(
        "regimen amount, high (in its basis unit)",
        max_digits=8,
        decimal_places=3,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
    )
    regimen_interval_hours = models.PositiveSmallIntegerField(
        "regimen interval (hours)",
        null=True,
        blank=True,
        choices=[(h, f"every {h} h") for h in INTERVAL_HOURS_CHOICES],
        help_text="Twice daily is every 12 h.",
    )
    regimen_route_iv = models.BooleanField("regimen route IV", default=False)
    regimen_route_sc = models.BooleanField("regimen route subcut", default=False)

    history = HistoricalRecords(m2m_fields=[references])

    class Meta:
        ordering = ["table_order"]
        verbose_name_plural = "studies"
        constraints = [
            models.CheckConstraint(
                condition=Q(addresses_crs=True) | Q(addresses_icans=True) | Q(addresses_carhlh=True),
                name="study_addresses_a_toxicity",
            ),
            models.CheckConstraint(condition=Q(population__in=["pediatric", "adult"]), name="study_population_known"),
            # A regimen is all there (protocol, basis, amounts low <= high, interval, a route) or not at all.
            models.CheckConstraint(
                condition=(
                    Q(
                        regimen_protocol__isnull=True,
                        regimen_dose_basis="",
                        regimen_amount_low__isnull=True,
                        regimen_amount_high__isnull=True,
                        regimen_interval_hours__isnull=True,
                        regimen_route_iv=False,
                        regimen_route_sc=False,
                    )
                    | (
                        Q(
                            regimen_protocol__isnull=False,
                            regimen_dose_basis__in=[b.value for b in DoseBasis],
                            regimen_amount_low__gt=0,
                            regimen_amount_high__gte=models.F("regimen_amount_low"),
                            regimen_interval_hours__in=INTERVAL_HOURS_CHOICES,
                        )
                        & (Q(regimen_route_iv=True) | Q(regimen_route_sc=True))
                    )
                ),
                name="study_regimen_complete_or_absent",
            ),
        ]

    def __str__(self) -> str:
        return self.label

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if not (self.addresses_crs or self.addresses_icans or self.addresses_carhlh):
            errors["addresses_crs"] = "Choose at least one toxicity the study addresses (CRS, ICANS or carHLH)."
        if self.population and self.population not in self.Population.values:
            errors["population"] = "The population must be pediatric or adult."
        self._clean_regimen(errors)
        if errors:
            raise ValidationError(errors)

    def _clean_regimen(self, errors: dict[str, str]) -> None:
        given = {
            "regimen_protocol": self.regimen_protocol_id is not None,
            "regimen_dose_basis": bool(self.regimen_dose_basis),
            "regimen_amount_low": self.regimen_amount_low is not None,
            "regimen_amount_high": self.regimen_amount_high is not None,
            "regimen_interval_hours": self.regimen_interval_hours is not None,
            "regimen_route_sc": self.regimen_route_iv or self.regimen_route_sc,
        }
        if not any(given.values()):
            return
        for name, present in given.items():
            if not present:
                errors[name] = (
                    "Choose at least one route for the regimen, or clear the regimen."
                    if name == "regimen_route_sc"
                    else "A regimen needs every field (protocol, basis, amounts, interval, route), or none."
                )
        low, high = self.regimen_amount_low, self.regimen_amount_high
        if low is not None and low <= 0:
            errors["regimen_amount_low"] = "The regimen amount must be above 0."
        if low is not None and high is not None and high < low:
            errors["regimen_amount_high"] = "The high amount must not be below the low amount."

    @property
    def has_regimen(self) -> bool:
        return self.regimen_protocol_id is not None and bool(self.regimen_dose_basis)

    @property
    def regimen_routes(self) -> tuple[str, ...]:
        return tuple(r.value for r, on in ((Route.IV, self.regimen_route_iv), (Route.SC, self.regimen_route_sc)) if on)

    @property
    def toxicities(self) -> tuple[str, ...]:
        flags = (("CRS", self.addresses_crs), ("ICANS", self.addresses_icans), ("carHLH", self.addresses_carhlh))
        return tuple(name for name, on in flags if on)


class LoadedRecord(models.Model):
    """What the clinical data loader last wrote to one record (a fingerprint of its loaded fields).

    A later load compares the record as it is now with this: unchanged since loaded -> the file may
    update it; different -> someone edited it since, so it is kept and reported. Kept here (not on the
    records) so institutions and test patients need no change to their own tables.
    """

    class Kind(models.TextChoices):
        REFERENCE = "reference", "reference"
        STUDY = "study", "study"
        INSTITUTION = "institution", "institution"
        PROTOCOL_TITLE = "protocol-title", "protocol title"
        TEST_PATIENT = "test-patient", "test patient"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    natural_key = models.CharField(
        max_length=255, help_text="The data file's key: reference or study key, institution slug, slug/label."
    )
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the fields as the loader wrote them.")
    loaded_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "natural_key"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "natural_key"], name="loaded_record_unique"),
            models.CheckConstraint(
                condition=Q(kind__in=["reference", "study", "institution", "protocol-title", "test-patient"]),
                name="loaded_record_kind_known",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.natural_key}"
