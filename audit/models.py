"""Audit events for domain actions (submit, approve, publish, reject, EHR card feedback...).

Field-level history of protocol tables is kept by django-simple-history; these events record the
decisions themselves, with who made them and why. Events are append-only.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from anakinra_cds.jsonutil import DecimalJSONDecoder, DecimalJSONEncoder

# What an action code means, for people reading the audit (the admin's list, its filter, a change record).
# An action not named here reads as its last part in words ("protocol_version.draft_started" -> "draft started").
ACTION_WORDS = {
    "protocol_version.amount_confirmed": "unusual amount confirmed",
    "protocol_version.notification_failed": "reviewers' email not sent",
    "protocol_version.signature_refused": "approval refused: wrong password",
    "cds_card.issued": "EHR card sent",
    "cds_card.accepted": "EHR card accepted by the clinician",
    "cds_card.overridden": "EHR card overridden by the clinician",
    "smart.launch": "opened from the EHR (SMART launch)",
    "smart.launch_refused": "EHR launch refused",
}


SUBJECT_WORDS = {
    "protocol_version": "protocol version",
    "cds_card": "EHR card",
    "smart_registration": "EHR registration (SMART)",
}


def action_words(action: str) -> str:
    return ACTION_WORDS.get(action) or action.rsplit(".", 1)[-1].replace("_", " ")


def subject_type_words(subject_type: str) -> str:
    return SUBJECT_WORDS.get(subject_type) or subject_type.replace("_", " ")


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("Audit events are append-only.")

    def delete(self):
        raise PermissionError("Audit events are append-only.")


class AuditEvent(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_events"
    )
    actor_label = models.CharField(
        max_length=200, blank=True, help_text="Who acted when it was not a user, e.g. an EHR's issuer URL."
    )
    action = models.CharField(max_length=60, db_index=True, help_text="e.g. protocol_version.published")
    subject_type = models.CharField(max_length=60, help_text="e.g. protocol_version, cds_card")
    subject_id = models.CharField(max_length=64)
    reason = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True, encoder=DecimalJSONEncoder, decoder=DecimalJSONDecoder)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["subject_type", "subject_id"], name="audit_subject_idx")]

    def __str__(self) -> str:
        who = self.actor or self.actor_label or "system"
        return f"{self.created_at:%Y-%m-%d %H:%M} {who}: {self.action_words} ({self.subject_words})"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit events are append-only.")

    @property
    def action_words(self) -> str:
        """The decision in words: "smart.launch" -> "opened from the EHR (SMART launch)" (ACTION_WORDS), else
        its last part: "protocol_version.draft_started" -> "draft started"."""
        return action_words(self.action)

    @property
    def subject_words(self) -> str:
        """What the decision was about, by name: the label recorded with it, else the protocol and version
        number it names, else its kind and id."""
        details = self.details or {}
        if details.get("subject"):
            return str(details["subject"])
        if "protocol" in details and "version" in details:
            return f"protocol {details['protocol']} v{details['version']}"
        return f"{subject_type_words(self.subject_type)} {self.subject_id}"
