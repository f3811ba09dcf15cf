"""Settings from the environment: the env helpers that fail loudly, the production checks, .env.example, Decimal-
exact JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from anakinra_cds import jsonutil
from anakinra_cds.env import env_bool, env_int, env_list, env_secret

ROOT = Path(__file__).resolve().parents[2]


PYTHON = sys.executable


def run(args: list[str], env: dict[str, str], timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.unit
@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("1", True), ("Off", False), ("0", False)])
def test_env_bool_reads_words(monkeypatch, raw, expected):
    monkeypatch.setenv("X_FLAG", raw)
    assert env_bool("X_FLAG", not expected) is expected


@pytest.mark.unit
def test_env_bool_refuses_anything_else(monkeypatch):
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG must be true or false, not 'maybe'"):
        env_bool("X_FLAG", False)


@pytest.mark.unit
def test_env_int_refuses_words_and_values_below_minimum(monkeypatch):
    monkeypatch.setenv("X_NUM", "ten")
    with pytest.raises(ImproperlyConfigured, match="X_NUM must be a whole number"):
        env_int("X_NUM", 1)
    monkeypatch.setenv("X_NUM", "-1")
    with pytest.raises(ImproperlyConfigured, match="X_NUM must be at least 0"):
        env_int("X_NUM", 1, minimum=0)


@pytest.mark.unit
def test_env_list_splits_and_trims(monkeypatch):
    monkeypatch.setenv("X_LIST", " a.example , b.example,, ")
    assert env_list("X_LIST", []) == ["a.example", "b.example"]


@pytest.mark.unit
def test_env_secret_reads_a_file_and_refuses_both(monkeypatch, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n", encoding="utf-8")
    monkeypatch.delenv("X_SECRET", raising=False)
    monkeypatch.setenv("X_SECRET_FILE", str(secret))
    assert env_secret("X_SECRET", required=True) == "s3cret"
    monkeypatch.setenv("X_SECRET", "direct")
    with pytest.raises(ImproperlyConfigured, match="Set X_SECRET or X_SECRET_FILE, not both"):
        env_secret("X_SECRET", required=True)


@pytest.mark.unit
def test_env_secret_required_and_missing_fails_loudly(monkeypatch):
    monkeypatch.delenv("X_SECRET", raising=False)
    monkeypatch.delenv("X_SECRET_FILE", raising=False)
    with pytest.raises(ImproperlyConfigured, match=r"Set X_SECRET \(or X_SECRET_FILE\); it is required"):
        env_secret("X_SECRET", required=True)


def _clean_env(**extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}
    return {**keep, "DJANGO_SETTINGS_MODULE": "anakinra_cds.settings", **extra}


@pytest.mark.integration
@pytest.mark.subprocess
def test_settings_production_refuses_to_start_without_secret_key():
    result = run([PYTHON, "manage.py", "check"], _clean_env(DEBUG="false"))
    assert result.returncode == 1
    assert "Set SECRET_KEY (or SECRET_KEY_FILE); it is required." in result.stderr


@pytest.mark.integration
@pytest.mark.subprocess
def test_settings_production_check_deploy_reports_nothing(tmp_path):
    env = _clean_env(
        DEBUG="false",
        SECRET_KEY="k" * 20 + "-production-like-secret-key-0123456789abcdefgh",
        ALLOWED_HOSTS="cds.example.org",
        DATABASE_URL=f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
    )
    result = run([PYTHON, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)
    assert (result.returncode, result.stdout.strip()) == (0, "System check identified no issues (0 silenced).")


@pytest.mark.integration
@pytest.mark.subprocess
def test_settings_reject_malformed_boolean():
    result = run([PYTHON, "manage.py", "check"], _clean_env(SECRET_KEY="x" * 50, DEBUG="perhaps"))
    assert result.returncode == 1
    assert "DEBUG must be true or false, not 'perhaps'." in result.stderr


@pytest.mark.integration
def test_env_example_lists_every_variable_the_settings_read():
    read = set()
    for path in [ROOT / "anakinra_cds" / "settings.py", *ROOT.glob("*/settings.py")]:
        import re

        read |= set(
            re.findall(r'env_(?:str|bool|int|list|secret|json)\(\s*"([A-Z0-9_]+)"', path.read_text(encoding="utf-8"))
        )
    listed = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    }
    assert read - listed == set()


@pytest.mark.unit
def test_json_writes_decimals_as_exact_numbers_and_reads_them_back():
    text = jsonutil.dumps({"per_dose_mg": Decimal("112.5"), "volume_ml": Decimal("0.75"), "n": 4})
    assert text == '{"per_dose_mg":112.5,"volume_ml":0.75,"n":4}'
    assert jsonutil.loads(text) == {"per_dose_mg": Decimal("112.5"), "volume_ml": Decimal("0.75"), "n": 4}
    with pytest.raises(json.JSONDecodeError, match="NaN is not a valid JSON number"):
        jsonutil.loads('{"x": NaN}')
    with pytest.raises(json.JSONDecodeError, match="nested too deeply"):
        jsonutil.loads("[" * 100_000)


@pytest.mark.unit
def test_env_blank_value_counts_as_not_set(monkeypatch):
    from anakinra_cds.env import env_str

    monkeypatch.setenv("X_ROOT", "  ")
    assert (env_str("X_ROOT", "default"), env_secret("X_ROOT", required=False)) == ("default", None)


@pytest.mark.integration
@pytest.mark.subprocess
def test_settings_refuse_a_static_root_that_would_serve_the_project():
    result = run([PYTHON, "manage.py", "check"], _clean_env(SECRET_KEY="x" * 50, DEBUG="true", STATIC_ROOT="."))
    assert result.returncode == 1
    assert f"STATIC_ROOT must be a folder of its own, not {ROOT}." in result.stderr


@pytest.mark.integration
@pytest.mark.subprocess
def test_check_deploy_warns_when_production_runs_on_the_quick_start_database():
    env = _clean_env(
        DEBUG="false",
        SECRET_KEY="k" * 20 + "-production-like-secret-key-0123456789abcdefgh",
        ALLOWED_HOSTS="cds.example.org",
    )
    result = run([PYTHON, "manage.py", "check", "--deploy"], env)
    assert "(site.W001) DATABASE_URL is not set" in result.stderr + result.stdout
