"""Writes for users and tokens."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import transaction
from django.utils import timezone

from accounts.models import ApiToken, LoginFailure, login_username_hash, token_hash
from accounts.roles import CLINICIAN, PHARMACIST


def api_token_create(*, user: AbstractBaseUser, name: str) -> tuple[ApiToken, str]:
    """Make a token; returns it with the plain key, which is not stored and cannot be shown again."""
    key = ApiToken.new_key()
    token = ApiToken(user=user, name=name, key_hash=token_hash(key), key_prefix=key[:8])
    token.full_clean()
    token.save()
    return token, key


DEMO_ACCOUNTS = (
    ("clinician", "Demo", "Clinician", CLINICIAN),
    ("pharmacist1", "Demo", "Pharmacist One", PHARMACIST),
    ("pharmacist2", "Demo", "Pharmacist Two", PHARMACIST),
)


@transaction.atomic
def demo_accounts_create() -> list[tuple[str, str | None]]:
    """Local demo users, one per role plus a second pharmacist for two-person approval.

    Returns (username, password) for each; password is None for an account that already existed
    (its password was shown once, when it was made).
    """
    user_model = get_user_model()
    made: list[tuple[str, str | None]] = []
    for username, first, last, role in DEMO_ACCOUNTS:
        if user_model.objects.filter(username=username).exists():
            made.append((username, None))
            continue
        password = secrets.token_urlsafe(12)
        user = user_model.objects.create_user(
            username=username,
            password=password,
            first_name=first,
            last_name=last,
            # Where governance notifications go (the console in development: make run).
            email=f"{username}@example.org",
            is_staff=role == PHARMACIST,
        )
        user.groups.add(Group.objects.get(name=role))
        made.append((username, password))
    return made


class NotADemoAccount(ValueError):
    """Only the demo accounts' passwords are reset this way; real accounts use `manage.py changepassword`."""


@transaction.atomic
def demo_account_password_reset(*, username: str) -> str:
    """A new generated password for a demo account (shown once by the caller), and any log-in pause lifted."""
    if username not in {account[0] for account in DEMO_ACCOUNTS}:
        raise NotADemoAccount(f"{username!r} is not a demo account ({', '.join(a[0] for a in DEMO_ACCOUNTS)}).")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise NotADemoAccount(f"{username!r} does not exist yet: `make run` (or create_demo_accounts) makes it.")
    password = secrets.token_urlsafe(12)
    user.set_password(password)
    user.save(update_fields=["password"])
    login_failures_clear(username=username)
    return password


def login_failure_record(*, username: str, now: datetime | None = None) -> LoginFailure:
    """Count one failed log-in for this username; failures older than the window are dropped."""
    now = now or timezone.now()
    window = timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    LoginFailure.objects.filter(created_at__lte=now - window).delete()
    return LoginFailure.objects.create(username_hash=login_username_hash(username), created_at=now)


def login_failures_clear(*, username: str) -> int:
    """Forget this username's failures (after a successful log-in, or when an administrator unlocks it)."""
    deleted, _ = LoginFailure.objects.filter(username_hash=login_username_hash(username)).delete()
    return deleted
