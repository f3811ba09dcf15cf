"""The app under gunicorn (gthread) with its database frozen: a throw-away PostgreSQL cluster whose postmaster
and backends are stopped (SIGSTOP), so a connection opens at the TCP level and nothing ever answers, and an
open connection's queries are acknowledged by the kernel and never answered. Every request that needs the
database still gets its 503 within DATABASE_WAIT_TIMEOUT_SECONDS + DATABASE_CONNECT_TIMEOUT (a client-side
deadline in the test, not a timing goal), and once the cluster runs again the same process serves again.

The cluster is always resumed (SIGCONT), stopped and removed in a `finally`, whatever the test did."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import requests
from django.db import connection

from anakinra_cds.db_waits import BoundedWaitConnection
from tests.anakinra_cds.test_database_outage import (
    RETRY_AFTER,
    SESSION_COOKIE,
    UNAVAILABLE_JSON,
    _cds_post,
    _issuers,
    free_port,
    gunicorn,
)
from tests.ehr_support import ORDER_SELECT_PATH, ec_key

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

CONNECT_TIMEOUT_SECONDS = 2  # psycopg's minimum
WAIT_TIMEOUT_SECONDS = 2
# What the client waits at most for any one answer while the database is frozen: a kept connection's health
# check runs out (WAIT), then the new connection's attempt does (CONNECT); 2 s for the rest of the request.
DEADLINE_SECONDS = WAIT_TIMEOUT_SECONDS + CONNECT_TIMEOUT_SECONDS + 2
AGAIN = "(not tried again in this request)"
BOGUS_TOKEN = {"Authorization": "Token not-a-real-key"}  # its lookup is a query: 401 when the database answers


def _pg_bin() -> Path:
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    assert found, "PostgreSQL's server binaries (initdb, postgres) are missing: apt-get install postgresql"
    return found[-1].parent


@dataclass
class Cluster:
    port: int
    postmaster: subprocess.Popen
    database_url: str = ""
    stopped: list[int] = field(default_factory=list)

    def url(self, name: str) -> str:
        return f"postgres://anakinra@127.0.0.1:{self.port}/{name}"

    def _processes(self) -> list[int]:
        children = Path(f"/proc/{self.postmaster.pid}/task/{self.postmaster.pid}/children").read_text().split()
        return [self.postmaster.pid, *map(int, children)]

    def freeze(self) -> None:
        """SIGSTOP the postmaster first (it forks nothing more), then every backend and auxiliary process."""
        for pid in self._processes():
            os.kill(pid, signal.SIGSTOP)
            self.stopped.append(pid)

    def thaw(self) -> None:
        for pid in reversed(self.stopped):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.stopped.clear()


@contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """initdb into a temporary folder, the postmaster on a free port of 127.0.0.1 (as `postgres` when run as
    root: PostgreSQL refuses root), trust authentication, the superuser named `anakinra`."""
    pg_bin = _pg_bin()
    data = Path(tempfile.mkdtemp(prefix="anakinra-frozen-"))
    as_postgres = {"user": "postgres", "group": "postgres", "extra_groups": []} if os.geteuid() == 0 else {}
    if as_postgres:
        shutil.chown(data, "postgres", "postgres")
    postmaster = None
    cluster = None
    try:
        subprocess.run(
            [pg_bin / "initdb", "-D", data / "pg", "-U", "anakinra", "--auth=trust", "--no-sync", "-E", "UTF8"],
            check=True,
            capture_output=True,
            **as_postgres,
        )
        port = free_port()
        settings = ["listen_addresses=127.0.0.1", "fsync=off", "max_connections=20", "shared_buffers=16MB"]
        command = [pg_bin / "postgres", "-D", data / "pg", "-p", str(port), "-k", data / "pg"]
        for setting in settings:
            command += ["-c", setting]
        with (data / "postgres.log").open("w") as log:
            postmaster = subprocess.Popen(command, stdout=log, stderr=log, **as_postgres)
        cluster = Cluster(port=port, postmaster=postmaster)
        for _ in range(100):
            try:
                psycopg.connect(cluster.url("postgres"), connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                assert postmaster.poll() is None, (data / "postgres.log").read_text()
                time.sleep(0.1)
        yield cluster
    finally:
        if cluster is not None:
            cluster.thaw()
        if postmaster is not None:
            postmaster.send_signal(signal.SIGINT)  # fast shutdown
            try:
                postmaster.wait(timeout=20)
            except subprocess.TimeoutExpired:
                postmaster.kill()
                postmaster.wait(timeout=10)
        shutil.rmtree(data, ignore_errors=True)


def _copy_test_database(cluster: Cluster, name: str) -> str:
    """The test database's schema and committed data (the clinical data), restored into the cluster."""
    settings = connection.settings_dict
    source = (
        f"postgres://{settings['USER']}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{settings['NAME']}"
    )
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    pg_bin = _pg_bin()
    dump = subprocess.run(
        [pg_bin / "pg_dump", "--format=custom", "--no-owner", "--no-privileges", source],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(
        [pg_bin / "pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--dbname", cluster.url(name)],
        input=dump,
        check=True,
        capture_output=True,
    )
    return cluster.url(name)


@pytest.fixture(scope="module")
def cluster(django_db_setup, django_db_blocker) -> Iterator[Cluster]:
    with throwaway_cluster() as made:
        with django_db_blocker.unblock():
            made.database_url = _copy_test_database(made, "anakinra")
        yield made


@pytest.fixture(scope="module")
def signing_key():
    return ec_key()


def test_frozen_database_bounds_a_query_on_an_open_connection(cluster):
    # The mechanism alone: an open connection, the server frozen mid-session, one query.
    raw = psycopg.connect(cluster.database_url, autocommit=True)
    raw.__class__ = BoundedWaitConnection
    BoundedWaitConnection.wait_timeout_seconds = WAIT_TIMEOUT_SECONDS
    try:
        assert raw.execute("SELECT 1").fetchone() == (1,)
        cluster.freeze()
        with pytest.raises(psycopg.OperationalError) as raised:
            raw.execute("SELECT 2")
    finally:
        cluster.thaw()
        raw.close()
    assert str(raised.value) == (
        "no answer from the database within 2 s (DATABASE_WAIT_TIMEOUT_SECONDS); connection closed"
    )
    assert raw.closed


def test_frozen_database_gets_503s_within_the_bound_and_recovers(tmp_path, cluster, signing_key):
    env = {
        "DATABASE_WAIT_TIMEOUT_SECONDS": str(WAIT_TIMEOUT_SECONDS),
        "DATABASE_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT_SECONDS),
    }
    # gthread as in the container, one thread, so the request after the freeze meets the connection the one
    # before it kept (CONN_MAX_AGE); gunicorn's own timeout far beyond the deadline, so it cannot be what ends it.
    worker = ("--worker-class", "gthread", "--workers", "1", "--threads", "1", "--timeout", "120")
    server_cm = gunicorn(
        tmp_path,
        database_url=cluster.database_url,
        issuers=_issuers(signing_key),
        extra_env=env,
        worker_args=worker,
    )
    try:
        with server_cm as server:
            before = requests.get(f"{server.url}/api/v1/institutions", headers=BOGUS_TOKEN, timeout=30)
            cluster.freeze()
            try:
                api = requests.get(f"{server.url}/api/v1/institutions", headers=BOGUS_TOKEN, timeout=DEADLINE_SECONDS)
                api_post = requests.post(
                    f"{server.url}/api/v1/recommendations",
                    json={"weight_kg": 20},
                    headers=BOGUS_TOKEN,
                    timeout=DEADLINE_SECONDS,
                )
                cds = _cds_post(server, signing_key, timeout=DEADLINE_SECONDS)
                page = requests.get(f"{server.url}/", cookies=SESSION_COOKIE, timeout=DEADLINE_SECONDS)
                ready = requests.get(f"{server.url}/readyz", timeout=DEADLINE_SECONDS)
                alive = requests.get(f"{server.url}/healthz", timeout=DEADLINE_SECONDS)
            finally:
                cluster.thaw()
            after = requests.get(f"{server.url}/api/v1/institutions", headers=BOGUS_TOKEN, timeout=30)
            ready_after = requests.get(f"{server.url}/readyz", timeout=30)
            log_lines = server.request_log_lines()
            full_log = server.log.read_text()
    finally:
        cluster.thaw()

    assert (before.status_code, after.status_code, ready_after.status_code) == (401, 401, 200)
    for response in (api, api_post, cds):
        assert (
            response.status_code,
            response.headers["Content-Type"],
            response.headers["Retry-After"],
            response.json(),
        ) == (503, "application/json", RETRY_AFTER, UNAVAILABLE_JSON)
    assert (page.status_code, page.headers["Content-Type"], page.headers["Retry-After"]) == (
        503,
        "text/html; charset=utf-8",
        RETRY_AFTER,
    )
    assert "The database cannot be reached. <strong>Nothing was saved.</strong>" in page.text
    assert (ready.status_code, ready.json()) == (503, {"status": "unavailable", **UNAVAILABLE_JSON})
    assert (alive.status_code, alive.json()) == (200, {"status": "ok"})
    # One line per request. The first one after the freeze met the connection the one before kept: its health
    # check ran out of time, and the request did not wait out a connection attempt as well.
    no_answer = "no answer from the database within 2 s (DATABASE_WAIT_TIMEOUT_SECONDS); connection closed"
    assert [line.split(" django.request ")[1] for line in log_lines] == [
        "Unauthorized: /api/v1/institutions",
        f"Service Unavailable (database): GET /api/v1/institutions: OperationalError: {no_answer} {AGAIN}",
        "Service Unavailable (database): POST /api/v1/recommendations: OperationalError: connection timeout expired",
        f"Service Unavailable (database): POST {ORDER_SELECT_PATH}: OperationalError: connection timeout expired",
        f"Service Unavailable (database): GET /: OperationalError: connection timeout expired {AGAIN}",
        "Not ready (database): OperationalError: connection timeout expired",
        "Unauthorized: /api/v1/institutions",
    ]
    assert "Traceback" not in full_log
