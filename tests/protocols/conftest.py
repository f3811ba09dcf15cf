"""Governance tests create several users each; hashing their passwords with the production
hasher (PBKDF2, deliberately slow) would dominate the run. Authentication itself is unchanged."""

import pytest

FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = FAST_HASHERS
