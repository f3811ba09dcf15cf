"""Repeated failed logins are throttled per username, in the database (so across processes), on
the site and the admin alike, with one message whether or not the username exists."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.models import LoginFailure, login_username_hash

pytestmark = pytest.mark.integration

SITE_LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
PASSWORD = "a-long-test-password"
THROTTLED = (
    "Too many failed log-in attempts with this username. Log-in is paused for it: try again in 15 minutes, "
    "or ask an administrator to unlock it."
)
INVALID_SITE = "Please enter a correct username and password. Note that both fields may be case-sensitive."


def _login(client: Client, url: str, username: str, password: str):
    return client.post(url, {"username": username, "password": password})


def _form_errors(response) -> list[str]:
    return list(response.context["form"].non_field_errors())


def _fail(url: str, username: str, times: int) -> None:
    client = Client()
    for _ in range(times):
        _login(client, url, username, "wrong-password")


def test_site_login_paused_after_five_failures_even_with_the_right_password(pharmacist):
    _fail(SITE_LOGIN, "pharm1", 5)
    client = Client()

    response = _login(client, SITE_LOGIN, "pharm1", PASSWORD)

    assert response.status_code == 200
    assert _form_errors(response) == [THROTTLED]
    assert "Too many failed log-in attempts with this username." in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_four_failures_do_not_pause_login(pharmacist):
    _fail(SITE_LOGIN, "pharm1", 4)

    response = _login(Client(), SITE_LOGIN, "pharm1", PASSWORD)

    assert (response.status_code, response["Location"]) == (302, "/")
    assert LoginFailure.objects.filter(username_hash=login_username_hash("pharm1")).count() == 0


def test_admin_login_paused_after_five_failures(pharmacist):
    _fail(ADMIN_LOGIN, "pharm1", 5)

    response = _login(Client(), ADMIN_LOGIN, "pharm1", PASSWORD)

    assert response.status_code == 200
    assert _form_errors(response) == [THROTTLED]


def test_failures_on_site_and_admin_count_together_in_the_database(pharmacist):
    _fail(SITE_LOGIN, "pharm1", 3)
    _fail(ADMIN_LOGIN, "pharm1", 2)

    response = _login(Client(), SITE_LOGIN, "pharm1", PASSWORD)

    assert _form_errors(response) == [THROTTLED]
    assert LoginFailure.objects.count() == 5


def test_unknown_and_known_usernames_get_the_same_messages(pharmacist):
    first_known = _login(Client(), SITE_LOGIN, "pharm1", "wrong-password")
    first_unknown = _login(Client(), SITE_LOGIN, "nobody-here", "wrong-password")
    _fail(SITE_LOGIN, "pharm1", 4)
    _fail(SITE_LOGIN, "nobody-here", 4)

    paused_known = _login(Client(), SITE_LOGIN, "pharm1", "wrong-password")
    paused_unknown = _login(Client(), SITE_LOGIN, "nobody-here", "wrong-password")

    assert _form_errors(first_known) == _form_errors(first_unknown) == [INVALID_SITE]
    assert _form_errors(paused_known) == _form_errors(paused_unknown) == [THROTTLED]


def test_username_spelling_does_not_escape_the_throttle(pharmacist):
    _fail(SITE_LOGIN, "PHARM1", 3)
    _fail(SITE_LOGIN, " Pharm1 ", 2)

    response = _login(Client(), SITE_LOGIN, "pharm1", PASSWORD)

    assert _form_errors(response) == [THROTTLED]


def test_pause_lifts_when_the_failures_age_out_of_the_window(pharmacist):
    _fail(SITE_LOGIN, "pharm1", 5)
    LoginFailure.objects.update(created_at=timezone.now() - timedelta(minutes=16))

    response = _login(Client(), SITE_LOGIN, "pharm1", PASSWORD)

    assert (response.status_code, response["Location"]) == (302, "/")


def test_pause_says_how_long_is_left(pharmacist):
    _fail(SITE_LOGIN, "pharm1", 5)
    LoginFailure.objects.update(created_at=timezone.now() - timedelta(minutes=14, seconds=30))

    response = _login(Client(), SITE_LOGIN, "pharm1", PASSWORD)

    assert _form_errors(response) == [THROTTLED.replace("15 minutes", "1 minute")]


def test_attempts_while_paused_do_not_extend_the_pause(pharmacist):
    _fail(SITE_LOGIN, "pharm1", 5)

    _fail(SITE_LOGIN, "pharm1", 3)

    assert LoginFailure.objects.count() == 5


def test_only_a_hash_of_the_typed_username_is_stored(db):
    _login(Client(), SITE_LOGIN, "my-secret-password-typed-here", "x")

    assert list(LoginFailure.objects.values_list("username_hash", flat=True)) == [
        login_username_hash("my-secret-password-typed-here")
    ]


def test_clinician_with_right_password_at_admin_login_is_not_a_failure(clinician):
    response = _login(Client(), ADMIN_LOGIN, "clin", PASSWORD)

    assert response.status_code == 200
    assert LoginFailure.objects.count() == 0


def test_unlock_command_lifts_the_pause(pharmacist):
    _fail(SITE_LOGIN, "pharm1", 5)

    output = io.StringIO()

    call_command("unlock_login", "pharm1", stdout=output)

    assert output.getvalue() == "Cleared 5 failed log-in record(s) for 'pharm1'.\n"
    assert _login(Client(), SITE_LOGIN, "pharm1", PASSWORD).status_code == 302
