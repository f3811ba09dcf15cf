"""Shared fixtures. The reviewed clinical data is loaded once into each test database, so every
test starts from the six published protocols (each test's changes are rolled back)."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.services import api_token_create
from protocols.seed import clinical_data_load
from tests import factories

MARKERS = {"unit", "integration", "e2e"}


def pytest_collection_modifyitems(config, items):
    unmarked = [item.nodeid for item in items if not MARKERS & {m.name for m in item.iter_markers()}]
    if unmarked:
        raise pytest.UsageError("Mark every test unit, integration or e2e: " + ", ".join(unmarked[:5]))


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Real hashing costs ~0.5 s per user; the tests do not measure it.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        clinical_data_load()


@pytest.fixture
def clinician(db):
    return factories.UserFactory(username="clin", role="clinician")


@pytest.fixture
def pharmacist(db):
    return factories.UserFactory(username="pharm1", role="pharmacist")


@pytest.fixture
def second_pharmacist(db):
    return factories.UserFactory(username="pharm2", role="pharmacist")


@pytest.fixture
def clinician_client(clinician) -> Client:
    client = Client()
    client.force_login(clinician)
    return client


@pytest.fixture
def api_key(clinician) -> str:
    _, key = api_token_create(user=clinician, name="tests")
    return key


@pytest.fixture
def token_client(api_key) -> Client:
    return Client(headers={"Authorization": f"Token {api_key}"})
