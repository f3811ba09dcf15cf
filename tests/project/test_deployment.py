"""Deployment beyond one host: the Kubernetes manifests (checked against the vendored Kubernetes JSON
schemas), the compose proxy and its HAProxy configuration, the gunicorn worker model, and the app
through PgBouncer in transaction mode with DATABASE_PREPARED_STATEMENTS=false."""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from django.db import connection
from referencing import Registry, Resource

from bench.loadtools import DEFAULT_WORKER_MODEL

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"
SCHEMAS = ROOT / "tests" / "vendor" / "kubernetes-json-schema" / "v1.33.0-local-strict"
PYTHON = sys.executable


def schema_file(manifest: dict[str, Any]) -> Path:
    """The schema file for a manifest's kind and apiVersion, named as kubeconform names them
    (apps/v1 Deployment -> deployment-apps-v1.json, v1 Service -> service-v1.json)."""
    group, _, version = manifest["apiVersion"].rpartition("/")
    group = group.split(".")[0]
    return SCHEMAS / f"{manifest['kind'].lower()}{f'-{group}' if group else ''}-{version}.json"


@functools.cache
def kubernetes_definitions() -> dict[str, Any]:
    return json.loads((SCHEMAS / "_definitions.json").read_text(encoding="utf-8"))


def kubernetes_errors(manifest: dict[str, Any]) -> list[str]:
    schema = json.loads(schema_file(manifest).read_text(encoding="utf-8"))
    definitions = kubernetes_definitions()
    registry = Registry().with_resources(
        [(schema["$id"], Resource.from_contents(schema)), (definitions["$id"], Resource.from_contents(definitions))]
    )
    validator = jsonschema.Draft202012Validator(schema, registry=registry)
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(manifest))


def manifests() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            found[f"{document['kind']}/{document['metadata']['name']}"] = document
    return found


# --- Kubernetes ------------------------------------------------------------------------------------


@pytest.mark.unit
def test_kubernetes_manifests_are_valid_against_the_kubernetes_schemas():
    found = manifests()
    assert sorted(found) == [
        "ConfigMap/anakinra-cds",
        "Deployment/anakinra-cds",
        "Job/anakinra-cds-migrate",
        "PodDisruptionBudget/anakinra-cds",
        "Service/anakinra-cds",
    ]
    assert {name: kubernetes_errors(manifest) for name, manifest in found.items()} == {name: [] for name in found}


@pytest.mark.unit
def test_kubernetes_schema_check_refuses_a_misspelt_field_and_a_wrong_type():
    deployment = manifests()["Deployment/anakinra-cds"]
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2, "replicas": "two"}}
    errors = kubernetes_errors(broken)
    assert errors == [
        "spec/replicas: 'two' is not of type 'integer', 'null'",
        "spec: Additional properties are not allowed ('replica' was unexpected)",
    ]


@pytest.mark.unit
def test_kubernetes_deployment_readiness_on_readyz_liveness_on_healthz():
    deployment = manifests()["Deployment/anakinra-cds"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    probes = {kind: container[kind]["httpGet"]["path"] for kind in ("readinessProbe", "livenessProbe", "startupProbe")}
    assert probes == {"readinessProbe": "/readyz", "livenessProbe": "/healthz", "startupProbe": "/healthz"}
    assert container["command"] == ["gunicorn", "-c", "deploy/gunicorn.conf.py", "anakinra_cds.wsgi:application"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


@pytest.mark.unit
def test_kubernetes_service_and_budget_select_the_deployment_pods():
    found = manifests()
    pod_labels = found["Deployment/anakinra-cds"]["spec"]["template"]["metadata"]["labels"]
    for selector in (
        found["Service/anakinra-cds"]["spec"]["selector"],
        found["PodDisruptionBudget/anakinra-cds"]["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= pod_labels.items()
    assert found["Service/anakinra-cds"]["spec"]["ports"][0]["targetPort"] == "http"


@pytest.mark.unit
def test_kubernetes_migration_job_migrates_and_loads_straight_to_postgresql():
    job = manifests()["Job/anakinra-cds-migrate"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == [
        "sh",
        "-c",
        "python manage.py migrate --noinput && python manage.py load_clinical_data",
    ]
    assert container["env"] == [
        {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "anakinra-cds", "key": "DATABASE_URL_DIRECT"}}}
    ]


@pytest.mark.unit
def test_kubernetes_configmap_sets_only_documented_settings_and_the_chosen_worker_model():
    data = manifests()["ConfigMap/anakinra-cds"]["data"]
    documented = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    }
    assert set(data) - documented == set()
    assert (data["GUNICORN_WORKER_CLASS"], int(data["GUNICORN_WORKERS"]), int(data["GUNICORN_THREADS"])) == (
        DEFAULT_WORKER_MODEL.worker_class,
        DEFAULT_WORKER_MODEL.workers,
        DEFAULT_WORKER_MODEL.threads,
    )


# --- gunicorn, compose, HAProxy ---------------------------------------------------------------------


def gunicorn_settings(env: dict[str, str]) -> dict[str, Any]:
    code = "import runpy, json; c = runpy.run_path('deploy/gunicorn.conf.py'); " + (
        "print(json.dumps({k: c[k] for k in ('bind', 'worker_class', 'workers', 'threads')}))"
    )
    result = subprocess.run(
        [PYTHON, "-c", code], cwd=ROOT, env={"PATH": os.environ["PATH"], **env}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.unit
@pytest.mark.subprocess
def test_gunicorn_defaults_are_the_worker_model_the_bench_chose():
    assert gunicorn_settings({}) == {
        "bind": "0.0.0.0:8000",
        "worker_class": DEFAULT_WORKER_MODEL.worker_class,
        "workers": DEFAULT_WORKER_MODEL.workers,
        "threads": DEFAULT_WORKER_MODEL.threads,
    }


@pytest.mark.unit
@pytest.mark.subprocess
def test_gunicorn_worker_model_comes_from_the_environment():
    settings = gunicorn_settings({"GUNICORN_WORKER_CLASS": "sync", "GUNICORN_WORKERS": "5", "GUNICORN_THREADS": "1"})
    assert (settings["worker_class"], settings["workers"], settings["threads"]) == ("sync", 5, 1)


@pytest.mark.unit
def test_compose_runs_migrations_once_and_scales_the_app_behind_the_proxy():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))["services"]
    app, migrate, proxy = services["app"], services["migrate"], services["proxy"]
    assert "ports" not in app  # a fixed host port would stop --scale app=N
    assert app["command"] == ["gunicorn", "-c", "deploy/gunicorn.conf.py", "anakinra_cds.wsgi:application"]
    assert app["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert migrate["command"][-1] == "python manage.py migrate --noinput && python manage.py load_clinical_data"
    assert migrate["environment"] == app["environment"]
    assert proxy["ports"] == ["127.0.0.1:8000:8000"]
    assert proxy["volumes"] == ["./deploy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro"]


@pytest.mark.integration
@pytest.mark.subprocess
def test_compose_proxy_haproxy_config_is_valid_and_checks_readyz():
    haproxy = shutil.which("haproxy")
    assert haproxy, "haproxy is missing: apt-get install haproxy (.ci/run installs it)."
    config = ROOT / "deploy" / "haproxy.cfg"
    result = subprocess.run(
        [haproxy, "-c", "-f", str(config)],
        env={"PATH": os.environ["PATH"], "APP_HOST": "cds.example.org"},
        capture_output=True,
        text=True,
    )
    assert (result.returncode, result.stdout.strip()) == (0, "Configuration file is valid")
    lines = [line.strip() for line in config.read_text(encoding="utf-8").splitlines()]
    assert "balance roundrobin" in lines
    assert 'http-check send meth GET uri /readyz hdr Host "${APP_HOST}" hdr X-Forwarded-Proto https' in lines


# --- PgBouncer in transaction mode ------------------------------------------------------------------

# Through the real view stack: API-token auth, the catalog revision read, a stored answer, a read back.
# More requests than psycopg's prepare threshold, each statement its own transaction (autocommit).
THROUGH_PGBOUNCER = textwrap.dedent(
    """
    import django, json, sys
    django.setup()
    from django.conf import settings
    from django.test import Client
    from accounts.services import api_token_create
    from assessments.models import Assessment
    from django.contrib.auth import get_user_model
    print("OPTIONS", json.dumps(settings.DATABASES["default"].get("OPTIONS", {}), sort_keys=True))
    # /readyz bounds its query with SET LOCAL statement_timeout, which holds behind a transaction pooler.
    print("READYZ", Client().get("/readyz").status_code)
    user = get_user_model().objects.create_user("pgbouncer-check", password=None)
    try:
        client = Client(headers={"Authorization": "Token " + api_token_create(user=user, name="pgbouncer")[1]})
        statuses = []
        for weight in range(20, 28):
            body = {"weight_kg": weight, "age_years": 8, "toxicities": [{"type": "CRS", "grade": 3}],
                    "prior_tocilizumab_doses": 1, "prior_steroids": True}
            answer = client.post("/api/v1/recommendations", body, content_type="application/json")
            statuses.append(answer.status_code)
            if answer.status_code == 200:
                read = client.get(f"/api/v1/assessments/{answer.json()['assessment_id']}")
                statuses.append(read.status_code)
        print("STATUSES", statuses, "ROWS", Assessment.objects.filter(created_by=user).count())
    finally:
        Assessment.objects.filter(created_by=user).delete()
        user.delete()
    """
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def pgbouncer(tmp_path, db):
    """A real PgBouncer in transaction mode in front of the test database. After every transaction it
    discards the server session (DISCARD ALL), as when the next transaction lands on another server
    connection: a prepared statement never outlives its transaction, deterministically."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    assert Path(binary).exists(), "pgbouncer is missing: apt-get install pgbouncer (.ci/run installs it)."
    settings = connection.settings_dict
    port = free_port()
    tmp_path.chmod(0o755)  # PgBouncer refuses to run as root: it drops to `nobody`, who must read this
    config = tmp_path / "pgbouncer.ini"
    server = f"host={settings['HOST'] or '127.0.0.1'} port={settings['PORT'] or 5432}"
    config.write_text(
        textwrap.dedent(
            f"""
            [databases]
            app = {server} dbname={settings["NAME"]} user={settings["USER"]}
            [pgbouncer]
            listen_addr = 127.0.0.1
            listen_port = {port}
            unix_socket_dir =
            auth_type = any
            pool_mode = transaction
            default_pool_size = 2
            server_reset_query = DISCARD ALL
            server_reset_query_always = 1
            ignore_startup_parameters = extra_float_digits,options
            """
        )
    )
    config.chmod(0o644)
    command = [binary, str(config)]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "nobody"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert process.poll() is None, f"pgbouncer did not start: {process.stdout.read()}"
                time.sleep(0.05)
        yield f"postgres://{settings['USER']}@127.0.0.1:{port}/app"
    finally:
        process.terminate()
        process.wait(timeout=10)


def run_through(url: str, **env: str) -> subprocess.CompletedProcess:
    keep = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}
    return subprocess.run(
        [PYTHON, "-c", THROUGH_PGBOUNCER],
        cwd=ROOT,
        env={
            **keep,
            "DJANGO_SETTINGS_MODULE": "anakinra_cds.settings",
            "SECRET_KEY": "pgbouncer-test-only-key-0123456789-abcdefghijklmnopqrstuvwxyz",
            "DEBUG": "false",
            "ALLOWED_HOSTS": "testserver",
            "SECURE_SSL_REDIRECT": "false",
            "STATIC_MANIFEST": "false",
            "DATABASE_URL": url,
            "DATABASE_CONN_MAX_AGE": "600",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.integration
@pytest.mark.subprocess
def test_pgbouncer_transaction_mode_serves_the_api_without_prepared_statements(pgbouncer):
    result = run_through(pgbouncer, DATABASE_PREPARED_STATEMENTS="false")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[-3:] == [
        'OPTIONS {"connect_timeout": 3}',  # psycopg's own, not a startup parameter: fine behind PgBouncer
        "READYZ 200",
        "STATUSES [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200] ROWS 8",
    ]


@pytest.mark.integration
@pytest.mark.subprocess
def test_pgbouncer_transaction_mode_breaks_prepared_statements_so_the_setting_matters(pgbouncer):
    # The control: with the default (prepared statements on), the same calls fail behind this pooler.
    result = run_through(pgbouncer, DATABASE_PREPARED_STATEMENTS="true")
    assert '"server_side_binding": true' in result.stdout
    assert "prepared statement" in result.stderr and "does not exist" in result.stderr
