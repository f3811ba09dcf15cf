"""Setting up: `make run` on a chosen port, a lost demo password reset, and the documented deployment check
run exactly as written."""

from __future__ import annotations

import os
import re
import subprocess
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command

from accounts.models import LoginFailure, login_username_hash
from accounts.services import NotADemoAccount, demo_account_password_reset, demo_accounts_create
from tests.factories import LoginFailureFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]
# The README's set-up and production-check text lives in these docs pages (the front page links them).
GETTING_STARTED = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
OPERATIONS = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")


def _make_dry_run(*args: str) -> str:
    """The commands `make` would run (-n: printed, not run)."""
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}
    result = subprocess.run(
        ["make", "-n", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.unit
@pytest.mark.parametrize(("args", "address"), [((), "127.0.0.1:8000"), (("PORT=8123",), "127.0.0.1:8123")])
@pytest.mark.subprocess
def test_make_run_serves_on_the_port_asked_for(args, address):
    assert _make_dry_run("run", *args).splitlines()[-1].endswith(f"manage.py runserver {address}")


@pytest.mark.unit
@pytest.mark.subprocess
def test_make_reset_password_runs_the_documented_command():
    last = _make_dry_run("reset-password", "ACCOUNT=clinician").splitlines()[-1]
    assert last.endswith('manage.py create_demo_accounts --reset "clinician"')
    assert "`make reset-password ACCOUNT=clinician`" in GETTING_STARTED and "`make run PORT=8001`" in GETTING_STARTED


@pytest.mark.integration
def test_demo_account_password_reset_sets_a_new_password_and_lifts_a_pause(db):
    demo_accounts_create()
    LoginFailureFactory.create_batch(5, username_hash=login_username_hash("clinician"))
    password = demo_account_password_reset(username="clinician")
    assert (authenticate(username="clinician", password=password) is not None, LoginFailure.objects.count()) == (
        True,
        0,
    )
    assert demo_account_password_reset(username="clinician") != password  # a new one every time


@pytest.mark.integration
@pytest.mark.parametrize("username", ["admin", "someone"])
def test_demo_account_password_reset_refuses_other_accounts(db, username):
    user = UserFactory(username=username)
    before = user.password
    with pytest.raises(NotADemoAccount):
        demo_account_password_reset(username=username)
    user.refresh_from_db()
    assert user.password == before


@pytest.mark.integration
def test_create_demo_accounts_reset_prints_the_new_password_once(db):
    demo_accounts_create()
    out = StringIO()
    call_command("create_demo_accounts", "--reset", "pharmacist1", stdout=out)
    printed = re.fullmatch(r"  pharmacist1  new password: (\S+)\n", out.getvalue())
    assert printed is not None and authenticate(username="pharmacist1", password=printed.group(1)) is not None
    with pytest.raises(CommandError, match="'root' is not a demo account"):
        call_command("create_demo_accounts", "--reset", "root")


@pytest.mark.integration
@pytest.mark.subprocess
def test_readme_check_deploy_lines_report_no_issues_as_written():
    intro = OPERATIONS.index("`check --deploy` reports no issues")
    block = re.search(r"```sh\n(.*?)```", OPERATIONS[intro:], re.S).group(1)
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}
    result = subprocess.run(
        ["bash", "-c", block], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert (result.returncode, result.stdout.strip(), result.stderr) == (
        0,
        "System check identified no issues (0 silenced).",
        "",
    )
