"""Reads for authentication."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import LoginFailure, login_username_hash, token_hash


def user_for_api_key(*, key: str) -> AbstractBaseUser | None:
    """The active user owning an unrevoked token with this key (one query), else None."""
    if not key or len(key) > 200:
        return None
    # key_hash is unique, so at most one row: no ORDER BY (it cost as much as the lookup itself).
    users = get_user_model().objects.filter(
        api_tokens__key_hash=token_hash(key), api_tokens__revoked_at__isnull=True, is_active=True
    )[:1]
    return next(iter(users), None)


def login_locked_until(*, username: str, now: datetime | None = None) -> datetime | None:
    """When log-in with this username is allowed again, or None when it is allowed now.

    Locked while LOGIN_FAILURE_LIMIT failures fall within the last LOGIN_FAILURE_WINDOW_SECONDS;
    the lock lifts when the oldest of those ages out of the window. One indexed query.
    """
    now = now or timezone.now()
    window = timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    limit = settings.LOGIN_FAILURE_LIMIT
    recent = (
        LoginFailure.objects.filter(username_hash=login_username_hash(username), created_at__gt=now - window)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
    )
    oldest_counted = recent[limit - 1 : limit].first()
    return None if oldest_counted is None else oldest_counted + window


def users_with_permission(*, permission: str) -> QuerySet:
    """Active users holding `app_label.codename` through a group, directly, or as superusers (one query)."""
    app_label, codename = permission.split(".", 1)
    held = Q(groups__permissions__content_type__app_label=app_label, groups__permissions__codename=codename) | Q(
        user_permissions__content_type__app_label=app_label, user_permissions__codename=codename
    )
    return get_user_model().objects.filter(held | Q(is_superuser=True), is_active=True).distinct()
