"""API tokens. Only a hash of each key is stored; the key is shown once when it is made."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


def token_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. the calling system.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    key_prefix = models.CharField(max_length=8, editable=False, help_text="First characters, to recognise a key.")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}...)"

    @staticmethod
    def new_key() -> str:
        return secrets.token_urlsafe(32)


class LoginFailure(models.Model):
    """One failed log-in, kept for the throttle window (site and admin log-in alike).

    Stored in the database so every gunicorn process sees the same count. Only a hash of the
    typed username is kept: people sometimes type a password into the username box.
    """

    username_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["username_hash", "created_at"], name="login_failure_lookup_idx")]

    def __str__(self) -> str:
        return f"failed log-in {self.created_at:%Y-%m-%d %H:%M:%S} ({self.username_hash[:8]}...)"


def login_username_hash(username: str) -> str:
    """The same key for "Pharm1", "pharm1 " and "PHARM1": throttling never depends on spelling tricks."""
    return hashlib.sha256(username.strip().casefold().encode("utf-8")).hexdigest()
