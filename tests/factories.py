"""One factory per model. Protocol factories build drafts; publish through protocols.services."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.models import ApiToken, LoginFailure, login_username_hash, token_hash
from assessments.models import Assessment
from audit.models import AuditEvent
from bedside.models import AssessmentGrading, AssessmentLiterature, InstitutionChoice
from cds_hooks.models import SeenJwtId
from engine.inputs import RecommendationRequest
from engine.revisions import RULES_REVISION
from evidence.models import Reference, Study
from protocols.models import (
    DosingStep,
    IndicationRule,
    Institution,
    Protocol,
    ProtocolCitation,
    ProtocolTestPatient,
    ProtocolVersion,
    StepCitation,
    VersionStatus,
)
from smart.models import EhrUserLink

# Every factory user's password (approval is signed by entering it again).
PASSWORD = "a-long-test-password"


class UserFactory(factory.django.DjangoModelFactory):
    """`UserFactory(role="pharmacist")` adds the role's group (pharmacists are staff, for the admin)."""

    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = "Test"
    last_name = factory.Sequence(lambda n: f"User {n}")
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.add(Group.objects.get(name=extracted))
            if extracted == "pharmacist" and not self.is_staff:
                self.is_staff = True
                self.save(update_fields=["is_staff"])


class ApiTokenFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApiToken

    user = factory.SubFactory(UserFactory)
    name = "test token"
    key_hash = factory.Sequence(lambda n: token_hash(f"key-{n}"))
    key_prefix = factory.Sequence(lambda n: f"key-{n}"[:8])


class ReferenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reference

    key = factory.Sequence(lambda n: f"test-ref-{n}")
    short_label = factory.Sequence(lambda n: f"Author A, et al. Journal {2000 + n % 20}")
    authors = "Author A, Author B"
    title = "A test reference"
    journal = "Test J"
    year = 2021


class StudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Study
        skip_postgeneration_save = True

    key = factory.Sequence(lambda n: f"test-study-{n}")
    table_order = factory.Sequence(lambda n: 100 + n)
    label = factory.Sequence(lambda n: f"Test et al {n}")
    study_type = "Case series"
    population = Study.Population.ADULT
    population_summary = "Adults"
    n_patients = 5
    anakinra_use = "Treatment"
    dose_as_reported = "100 mg/day SC"
    response = "Improved"
    addresses_crs = True

    @factory.post_generation
    def references(self, create, extracted, **kwargs):
        if create and extracted:
            self.references.set(extracted)


class InstitutionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Institution

    slug = factory.Sequence(lambda n: f"center{n}")
    name = factory.Sequence(lambda n: f"Test Center {n}")
    short_name = factory.Sequence(lambda n: f"TC{n}")
    location = "Testville"


class ProtocolFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Protocol

    institution = factory.SubFactory(InstitutionFactory)
    title = factory.LazyAttribute(lambda o: f"{o.institution.name} protocol")


class ProtocolVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProtocolVersion

    protocol = factory.SubFactory(ProtocolFactory)
    number = factory.Sequence(lambda n: n + 1)
    status = VersionStatus.DRAFT
    utilization = "CRS"
    indications_summary = "After tocilizumab and steroids"


class ProtocolCitationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProtocolCitation

    version = factory.SubFactory(ProtocolVersionFactory)
    reference = factory.SubFactory(ReferenceFactory)
    locator = ""


class IndicationRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = IndicationRule

    version = factory.SubFactory(ProtocolVersionFactory)
    applies_to_crs = True
    min_grade = 1
    summary = "test rule"


class DosingStepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DosingStep

    version = factory.SubFactory(ProtocolVersionFactory)
    kind = "initial"
    name = "Initial dosing"
    applies_to_crs = True
    dose_basis = "mg/kg/dose"
    amount_low = Decimal("2")
    amount_high = Decimal("2")
    interval_hours = 6
    route_iv = True


class StepCitationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StepCitation

    step = factory.SubFactory(DosingStepFactory)
    reference = factory.SubFactory(ReferenceFactory)


class AssessmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Assessment

    created_by = factory.SubFactory(UserFactory)
    source = Assessment.Source.API
    rules_revision = RULES_REVISION
    # The validated echo of a real request (what every stored assessment holds).
    inputs = factory.LazyFunction(
        lambda: RecommendationRequest.model_validate(
            {
                "weight_kg": 20,
                "age_years": 8,
                "toxicities": [{"type": "CRS", "grade": 3}],
                "prior_tocilizumab_doses": 1,
                "prior_steroids": True,
            }
        ).echo()
    )
    recommendations = factory.LazyFunction(list)


class AuditEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AuditEvent

    actor = factory.SubFactory(UserFactory)
    action = "protocol_version.submitted"
    subject_type = "protocol_version"
    subject_id = "1"


class SeenJwtIdFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SeenJwtId

    key = factory.Sequence(lambda n: f"{n:064x}")
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(minutes=5))


# --- bedside ---------------------------------------------------------------------------------------


class InstitutionChoiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = InstitutionChoice

    user = factory.SubFactory(UserFactory)
    institution = factory.LazyFunction(lambda: Institution.objects.get(slug="cnh"))


class AssessmentGradingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AssessmentGrading

    assessment = factory.SubFactory(AssessmentFactory, source=Assessment.Source.BEDSIDE)
    toxicities = factory.LazyFunction(
        lambda: [{"type": "CRS", "grade": 2, "method": "picked", "set_by": [], "findings": [], "notes": []}]
    )


class AssessmentLiteratureFactory(factory.django.DjangoModelFactory):
    """nih's own trial (Table 2) worked out for 12 kg, as the wizard stores it."""

    class Meta:
        model = AssessmentLiterature

    assessment = factory.SubFactory(AssessmentFactory, source=Assessment.Source.BEDSIDE)
    regimens = factory.LazyFunction(
        lambda: [
            {
                "institution": "nih",
                "study_key": "lichtenstein-shah",
                "study_label": "Lichtenstein et al; Shah et al",
                "references": ["Lichtenstein DA, et al. Blood 2021", "Shah NN, et al. J Clin Oncol 2020"],
                "dose_basis": "mg/kg/dose",
                "amount": {"low": Decimal("2.5"), "high": Decimal("4")},
                "interval_hours": 12,
                "routes": ["SC"],
                "weight_kg": Decimal("12"),
                "per_dose_mg": {"low": Decimal("30"), "high": Decimal("48")},
                "per_day_mg": {"low": Decimal("60"), "high": Decimal("96")},
                "doses_per_day": 2,
                "arithmetic": [
                    "2.5 to 4 mg/kg/dose x 12 kg = 30 to 48 mg per dose",
                    "2 doses a day x 30 to 48 mg = 60 to 96 mg/day",
                ],
            }
        ]
    )


class ProtocolTestPatientFactory(factory.django.DjangoModelFactory):
    """A 20 kg CRS grade 3 patient after tocilizumab and steroids; the expected answer is the caller's."""

    class Meta:
        model = ProtocolTestPatient

    version = factory.SubFactory(ProtocolVersionFactory)
    label = factory.Sequence(lambda n: f"test patient {n}")
    inputs = factory.LazyFunction(
        lambda: {
            "weight_kg": Decimal("20"),
            "age_years": 8,
            "toxicities": [{"type": "CRS", "grade": 3}],
            "prior_tocilizumab_doses": 1,
            "prior_steroids": True,
        }
    )
    expected_status = "indicated"


class LoginFailureFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LoginFailure

    username_hash = factory.LazyFunction(lambda: login_username_hash("someone"))


class EhrUserLinkFactory(factory.django.DjangoModelFactory):
    """A clinician account made for an EHR user at their first SMART launch."""

    class Meta:
        model = EhrUserLink

    registration = "https://ehr.example.org"
    fhir_user = factory.Sequence(lambda n: f"https://ehr.example.org/fhir/r4/Practitioner/p{n}")
    user = factory.SubFactory(UserFactory, role="clinician")
