"""The one table of the SMART launch: which local account an EHR user was given on first launch.

It records EHR *users* (clinicians), never patients: a launch's patient id and tokens live only in the
session (`smart.session`).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class EhrUserLink(models.Model):
    """A clinician account created for an EHR user by a registration with `user_mapping: create`."""

    registration = models.CharField(max_length=200, help_text="The EHR's CDS_HOOKS_ISSUERS key.")
    fhir_user = models.CharField(max_length=500, help_text="The EHR user's fhirUser URL (a Practitioner).")
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ehr_link")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["registration", "fhir_user"], name="smart_ehr_user_once_per_registration")
        ]

    def __str__(self) -> str:
        return f"{self.fhir_user} ({self.registration}) -> {self.user}"
