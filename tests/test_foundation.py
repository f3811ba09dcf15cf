"""Settings from the environment, deployment files, the database's own guards, and immutability."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction

from anakinra_cds import jsonutil
from anakinra_cds.env import env_bool, env_int, env_list, env_secret
from protocols.models import DosingStep, IndicationRule, ProtocolVersion, PublishedVersionIsImmutable, VersionStatus
from tests import factories

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def run(args: list[str], env: dict[str, str], timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)


# --- Environment helpers ------------------------------------------------------------------------


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


# --- Deployment files and the test database check ------------------------------------------------


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


# --- The database's own guards ------------------------------------------------------------------


def _step_values(version, **overrides) -> dict:
    values = dict(
        version=version,
        kind="initial",
        name="s",
        applies_to_crs=True,
        dose_basis="mg/kg/dose",
        amount_low=Decimal(2),
        amount_high=Decimal(2),
        interval_hours=6,
        route_iv=True,
    )
    values.update(overrides)
    return values


@pytest.mark.integration
@pytest.mark.parametrize(
    ("overrides", "constraint"),
    [
        ({"amount_low": Decimal(3)}, "step_amount_low_le_high"),
        ({"amount_low": Decimal(0)}, "step_amount_measurable"),
        ({"dose_basis": "mg/kg/week"}, "step_dose_basis_known"),
        ({"route_iv": False}, "step_has_a_route"),
        ({"applies_to_crs": False}, "step_applies_to_a_toxicity"),
        ({"interval_hours": None}, "step_per_dose_basis_needs_interval"),
        ({"interval_hours": 5}, "step_interval_divides_day"),
        ({"max_single_dose_mg": Decimal(-1)}, "step_single_dose_cap_positive_with_interval"),
        ({"max_single_dose_mg": Decimal(500), "max_daily_dose_mg": Decimal(400)}, "step_single_cap_le_daily_cap"),
        ({"rounding_increment_mg": Decimal(100)}, "step_rounding_complete_and_in_range"),
        (
            {"rounding_increment_mg": Decimal(100), "rounding_tolerance_percent": Decimal(30)},
            "step_rounding_complete_and_in_range",
        ),
        ({"escalation_ceiling_amount": Decimal(10)}, "step_escalation_complete"),
        ({"escalation_ceiling_basis": "mg/kg/day"}, "step_escalation_complete"),
        ({"rounding_tolerance_percent": Decimal(10)}, "step_rounding_complete_and_in_range"),
        ({"min_grade": 3, "max_grade": 2}, "step_grade_band_valid"),
        ({"kind": "bolus"}, "step_kind_known"),
        (
            {
                "dose_basis": "mg/kg/day",
                "amount_low": Decimal("0.3"),
                "amount_high": Decimal("0.3"),
                "interval_hours": 4,
            },
            "step_divided_dose_measurable",
        ),
    ],
)
def test_database_rejects_invalid_dosing_step(db, overrides, constraint):
    draft = factories.ProtocolVersionFactory()
    # bulk_create skips model validation: the database itself must refuse.
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        DosingStep.objects.bulk_create([DosingStep(**_step_values(draft, **overrides))])


@pytest.mark.integration
@pytest.mark.parametrize(
    ("overrides", "constraint"),
    [
        ({"applies_to_crs": False}, "rule_applies_to_a_toxicity"),
        ({"min_grade": 5}, "rule_grade_1_to_4"),
        ({"result_status": "contraindicated"}, "rule_status_known"),
        ({"first_line_if_isolated_late_onset": True}, "rule_first_line_has_summary"),
    ],
)
def test_database_rejects_invalid_indication_rule(db, overrides, constraint):
    draft = factories.ProtocolVersionFactory()
    values = {"version": draft, "applies_to_crs": True, "summary": "s", **overrides}
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        IndicationRule.objects.bulk_create([IndicationRule(**values)])


@pytest.mark.integration
def test_database_allows_one_published_version_per_protocol(db):
    cnh = ProtocolVersion.objects.get(protocol__institution__slug="cnh", status=VersionStatus.PUBLISHED)
    with pytest.raises(IntegrityError, match="one_published_version_per_protocol"), transaction.atomic():
        ProtocolVersion.objects.bulk_create(
            [
                ProtocolVersion(
                    protocol=cnh.protocol,
                    number=9,
                    status="published",
                    published_at=cnh.published_at,
                    utilization="x",
                    indications_summary="y",
                )
            ]
        )


@pytest.mark.integration
@pytest.mark.parametrize(("field", "value"), [("doi", "doi:10.1/x"), ("pmid", "PMC123")])
def test_database_rejects_malformed_identifiers(db, field, value):
    from evidence.models import Reference

    with pytest.raises(IntegrityError), transaction.atomic():
        Reference.objects.bulk_create([Reference(key="bad", short_label="x", authors="y", **{field: value})])


# --- Published versions are immutable -----------------------------------------------------------


@pytest.fixture
def published(db) -> ProtocolVersion:
    return ProtocolVersion.objects.get(protocol__institution__slug="cnh", status=VersionStatus.PUBLISHED)


@pytest.mark.integration
def test_published_version_refuses_save_and_delete(published):
    published.notes = "changed"
    with pytest.raises(PublishedVersionIsImmutable):
        published.save()
    with pytest.raises(PublishedVersionIsImmutable):
        published.delete()
    assert ProtocolVersion.objects.get(pk=published.pk).notes != "changed"


@pytest.mark.integration
def test_published_version_refuses_bulk_update_and_delete(published):
    with pytest.raises(PublishedVersionIsImmutable):
        ProtocolVersion.objects.filter(pk=published.pk).update(notes="changed")
    with pytest.raises(PublishedVersionIsImmutable):
        ProtocolVersion.objects.filter(protocol__institution__slug="cnh").delete()


@pytest.mark.integration
def test_published_version_rows_refuse_every_change(published):
    step = published.steps.get()
    step.max_single_dose_mg = Decimal(150)
    with pytest.raises(PublishedVersionIsImmutable):
        step.save()
    with pytest.raises(PublishedVersionIsImmutable):
        DosingStep.objects.filter(version=published).update(max_single_dose_mg=Decimal(150))
    with pytest.raises(PublishedVersionIsImmutable):
        published.rules.all().delete()
    with pytest.raises(PublishedVersionIsImmutable):
        DosingStep.objects.bulk_create([DosingStep(**_step_values(published))])
    with pytest.raises(PublishedVersionIsImmutable):
        factories.StepCitationFactory(step=step)
    assert published.steps.get().max_single_dose_mg == Decimal(100)


@pytest.mark.integration
def test_draft_rows_can_be_edited(db):
    draft = factories.ProtocolVersionFactory()
    step = factories.DosingStepFactory(version=draft)
    step.max_single_dose_mg = Decimal(90)
    step.save()
    assert DosingStep.objects.get(pk=step.pk).max_single_dose_mg == Decimal(90)


# --- Exact JSON ---------------------------------------------------------------------------------


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
