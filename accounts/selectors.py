"""Reads for authentication."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

from accounts.models import ApiToken, token_hash


def user_for_api_key(*, key: str) -> AbstractBaseUser | None:
    """The active user owning an unrevoked token with this key (one query), else None."""
    if not key or len(key) > 200:
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=token_hash(key), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    return token.user if token else None
