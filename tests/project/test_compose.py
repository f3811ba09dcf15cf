"""The compose file against the compose specification's schema, and the PostgreSQL check `make test` runs first."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


PYTHON = sys.executable


def run(args: list[str], env: dict[str, str], timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _clean_env(**extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}
    return {**keep, "DJANGO_SETTINGS_MODULE": "anakinra_cds.settings", **extra}


COMPOSE_SCHEMA = ROOT / "tests" / "vendor" / "compose-spec" / "compose-spec.json"


def _compose_command() -> list[str] | None:
    """`docker compose` (the plugin), else `docker-compose`, else None: neither is installed."""
    if shutil.which("docker") and run(["docker", "compose", "version"], _clean_env()).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def _required_variables(text: str) -> set[str]:
    """Variables the file interpolates as ${NAME:?message}: compose refuses to run without them."""
    import re

    return set(re.findall(r"\$\{([A-Z0-9_]+):\?[^}]*\}", text))


@pytest.mark.integration
@pytest.mark.subprocess
def test_compose_file_is_valid_and_needs_its_secrets_from_the_environment():
    """The compose specification's own JSON schema (vendored, Apache-2.0) checks the file on any machine;
    where Docker's compose is installed, its `config` runs too (it also checks interpolation)."""
    import jsonschema
    import yaml

    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    validator = jsonschema.Draft7Validator(json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8")))
    assert [error.message for error in validator.iter_errors(yaml.safe_load(text))] == []
    assert _required_variables(text) == {"SECRET_KEY", "POSTGRES_PASSWORD", "ALLOWED_HOSTS", "APP_HOST"}

    compose = _compose_command()
    if compose is not None:
        env = _clean_env(
            SECRET_KEY="s", POSTGRES_PASSWORD="p", ALLOWED_HOSTS="cds.example.org", APP_HOST="cds.example.org"
        )
        result = run([*compose, "-f", "docker-compose.yml", "config", "--quiet"], env)
        assert (result.returncode, result.stderr) == (0, "")
        # And it refuses to run without the secrets, which are never in the file.
        missing = run([*compose, "-f", "docker-compose.yml", "config", "--quiet"], _clean_env())
        assert missing.returncode != 0


@pytest.mark.unit
def test_compose_schema_refuses_a_misspelt_key():
    import jsonschema
    import yaml

    validator = jsonschema.Draft7Validator(json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8")))
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    compose["services"]["app"]["enviroment"] = {"DEBUG": "false"}
    assert [error.message for error in validator.iter_errors(compose)] == [
        "'enviroment' does not match any of the regexes: '^x-'"
    ]


@pytest.mark.unit
def test_compose_passes_every_setting_to_the_app():
    import re

    read = set(
        re.findall(
            r'env_(?:str|bool|int|list|secret|json)\(\s*"([A-Z0-9_]+)"',
            (ROOT / "anakinra_cds" / "settings.py").read_text(encoding="utf-8"),
        )
    )
    compose = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    # STATIC_ROOT and STATIC_MANIFEST belong to the image (collectstatic at build time).
    assert sorted(v for v in read - {"STATIC_ROOT", "STATIC_MANIFEST"} if f"      {v}:" not in compose) == []


@pytest.mark.integration
@pytest.mark.subprocess
def test_check_postgres_says_in_one_line_how_to_start_the_server():
    env = _clean_env(DATABASE_URL="postgres://anakinra@127.0.0.1:1/anakinra")
    result = run([PYTHON, "scripts/check_postgres.py"], env)
    assert (result.returncode, result.stdout.splitlines(), result.stderr) == (
        1,
        [
            "PostgreSQL is not reachable at 127.0.0.1:1: start it with `pg_ctlcluster 15 main start` "
            "(or set DATABASE_URL to a running server)."
        ],
        "",
    )
