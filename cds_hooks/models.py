"""The JWT replay store: the ids of accepted EHR tokens, kept until the token has expired.

A database table, not process memory: every gunicorn worker (and every host) must see every id,
or a token replayed to another worker would pass. The unique key makes the first use win.
"""

from __future__ import annotations

from django.db import models


class SeenJwtId(models.Model):
    key = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the issuer and the token's jti")
    expires_at = models.DateTimeField(db_index=True, help_text="When the token expires; the row is purged after")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "seen JWT id"

    def __str__(self) -> str:
        return f"{self.key[:12]}... until {self.expires_at:%Y-%m-%d %H:%M:%S}"
