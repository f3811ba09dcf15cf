"""The JWT replay store (writes): each accepted EHR token id is recorded once, and a second use is refused.

Its own module so that `cds_hooks.auth` (which checks a token) and `cds_hooks.services` (which answers the
hook) do not import each other.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from cds_hooks.models import SeenJwtId


def _jti_key(issuer: str, jti: str) -> str:
    return hashlib.sha256(f"{issuer}\x00{jti}".encode()).hexdigest()


def jwt_id_claim(*, issuer: str, jti: str, expires_at: datetime) -> bool:
    """Record a token id as used; False when this issuer already used it (a replay).

    Expired ids are purged first: a token past its `exp` is refused anyway, so its id need not be kept."""
    SeenJwtId.objects.filter(expires_at__lt=timezone.now()).delete()
    seen = SeenJwtId(key=_jti_key(issuer, jti), expires_at=expires_at)
    seen.full_clean(validate_unique=False)  # the unique index decides, atomically, across processes
    try:
        with transaction.atomic():
            seen.save()
    except IntegrityError:
        return False
    return True
