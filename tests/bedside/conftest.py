import pytest


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Each user a fixture makes would otherwise cost a full PBKDF2 hash (about a second).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
