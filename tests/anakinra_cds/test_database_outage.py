"""The app under gunicorn with its database away: a closed port, then a listener that accepts and never
answers. Machine callers get JSON 503s with Retry-After, people a short 503 page, the readiness probe 503 and
the liveness probe 200; each failed request is logged as one line, never a traceback; and once the database
is back, the same processes serve again."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from anakinra_cds.service_errors import SERVICE_UNAVAILABLE
from tests.ehr_support import ISSUER, ORDER_SELECT_PATH, body_json, claims, ec_key, full_prefetch, hook_body, sign

pytestmark = [pytest.mark.integration, pytest.mark.subprocess]

ROOT = Path(__file__).resolve().parents[2]
CONNECT_TIMEOUT_SECONDS = 2  # psycopg's minimum
RETRY_AFTER = "7"
UNAVAILABLE_JSON = {"errors": {"service": [SERVICE_UNAVAILABLE]}}
SESSION_COOKIE = {"sessionid": "a-logged-in-clinicians-session"}
CSRF = "x" * 32  # the CSRF cookie's secret, sent back in the form as it is


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    log: Path

    def request_log_lines(self) -> list[str]:
        """What Django logged about requests (gunicorn's own lines left out)."""
        return [line for line in self.log.read_text().splitlines() if " django.request " in line]


@contextmanager
def gunicorn(
    tmp_path: Path,
    *,
    database_url: str,
    issuers: dict,
    extra_env: dict[str, str] | None = None,
    worker_args: tuple[str, ...] = ("--workers", "1"),
) -> Iterator[Server]:
    port = free_port()
    log = tmp_path / f"gunicorn-{port}.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DATABASE_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT_SECONDS),
        "SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS": RETRY_AFTER,
        "SECRET_KEY": "outage-test-key-0123456789-abcdefghijklmnopqrstuvwxyz-0123456789",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "STATIC_MANIFEST": "false",
        "SITE_URL": "",
        "CDS_HOOKS_ISSUERS": json.dumps(issuers),
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    command = [sys.executable, "-m", "gunicorn", "anakinra_cds.wsgi:application", "--bind", f"127.0.0.1:{port}"]
    with log.open("w") as out:
        process = subprocess.Popen([*command, *worker_args], cwd=ROOT, env=env, stdout=out, stderr=out)
    server = Server(url=f"http://127.0.0.1:{port}", log=log)
    try:
        for _ in range(100):
            try:
                if requests.get(f"{server.url}/healthz", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"gunicorn did not start:\n{log.read_text()}")
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def signing_key():
    return ec_key()


def _issuers(signing_key) -> dict:
    return {ISSUER: {"jwks": signing_key.jwks(), "institution": "cnh"}}


def _cds_post(server: Server, signing_key, *, timeout: float = 10) -> requests.Response:
    token = sign(signing_key, claims(aud=f"{server.url}{ORDER_SELECT_PATH}"))
    return requests.post(
        f"{server.url}{ORDER_SELECT_PATH}",
        data=body_json(hook_body(prefetch=full_prefetch())),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=timeout,
    )


def test_database_at_a_closed_port_gets_503s_and_one_log_line_each(tmp_path, signing_key):
    closed = f"postgres://anakinra@127.0.0.1:{free_port()}/anakinra"
    with gunicorn(tmp_path, database_url=closed, issuers=_issuers(signing_key)) as server:
        token = {"Authorization": "Token some-clinicians-key"}
        api_post = requests.post(
            f"{server.url}/api/v1/recommendations",
            data=json.dumps({"weight_kg": 20, "age_years": 8}),
            headers={**token, "Content-Type": "application/json"},
            timeout=10,
        )
        api_get = requests.get(f"{server.url}/api/v1/institutions", headers=token, timeout=10)
        cds = _cds_post(server, signing_key)
        page = requests.get(f"{server.url}/", cookies=SESSION_COOKIE, timeout=10)
        wizard_post = requests.post(
            f"{server.url}/",
            data={"csrfmiddlewaretoken": CSRF, "weight_kg": "20", "age_years": "8"},
            cookies={**SESSION_COOKIE, "csrftoken": CSRF},
            timeout=10,
        )
        ready = requests.get(f"{server.url}/readyz", timeout=10)
        alive = requests.get(f"{server.url}/healthz", timeout=10)
        log_lines = server.request_log_lines()
        full_log = server.log.read_text()

    for response in (api_post, api_get, cds):
        assert (
            response.status_code,
            response.headers["Content-Type"],
            response.headers["Retry-After"],
            response.json(),
        ) == (503, "application/json", RETRY_AFTER, UNAVAILABLE_JSON)
    for response in (page, wizard_post):
        assert (response.status_code, response.headers["Content-Type"], response.headers["Retry-After"]) == (
            503,
            "text/html; charset=utf-8",
            RETRY_AFTER,
        )
        assert "The database cannot be reached. <strong>Nothing was saved.</strong>" in response.text
    assert (ready.status_code, ready.headers["Retry-After"], ready.json()) == (
        503,
        RETRY_AFTER,
        {"status": "unavailable", **UNAVAILABLE_JSON},
    )
    assert (alive.status_code, alive.json()) == (200, {"status": "ok"})
    # One line per failed request, naming it and the cause; not one traceback.
    assert [re.sub(r"^.* django\.request ", "", line).split(": Operational")[0] for line in log_lines] == [
        "Service Unavailable (database): POST /api/v1/recommendations",
        "Service Unavailable (database): GET /api/v1/institutions",
        f"Service Unavailable (database): POST {ORDER_SELECT_PATH}",
        "Service Unavailable (database): GET /",
        "Service Unavailable (database): POST /",
        "Not ready (database)",
    ]
    assert all("Connection refused" in line for line in log_lines)
    assert "Traceback" not in full_log


@contextmanager
def silent_listener() -> Iterator[int]:
    """A port whose listener accepts connections (the kernel completes them) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


def test_database_that_never_answers_gets_readyz_503_within_the_connect_timeout(tmp_path, signing_key):
    with silent_listener() as port:
        silent = f"postgres://anakinra@127.0.0.1:{port}/anakinra"
        with gunicorn(tmp_path, database_url=silent, issuers=_issuers(signing_key)) as server:
            # The worker's first database connection also loads the backend's modules: not what is measured.
            first = requests.get(f"{server.url}/readyz", timeout=30)
            # A client-side deadline: connect_timeout plus 1 s, or requests raises ReadTimeout.
            ready = requests.get(f"{server.url}/readyz", timeout=CONNECT_TIMEOUT_SECONDS + 1)
            alive = requests.get(f"{server.url}/healthz", timeout=1)
            log_lines = server.request_log_lines()
    assert (ready.status_code, ready.headers["Retry-After"], ready.json()) == (
        503,
        RETRY_AFTER,
        {"status": "unavailable", **UNAVAILABLE_JSON},
    )
    assert (first.status_code, alive.status_code) == (503, 200)
    assert [line.split(" django.request ")[1] for line in log_lines] == [
        "Not ready (database): OperationalError: connection timeout expired"
    ] * 2


class TcpForwarder:
    """Forwards a local port to the real PostgreSQL once switched on: a database that comes back."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.on = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.on.is_set():
                client.close()  # the database is away: the connection is dropped at once
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            sink.close()

    def close(self) -> None:
        self.listener.close()


def test_database_back_after_an_outage_is_served_again_without_a_restart(tmp_path, signing_key, db, settings):
    # The server reads what is committed in the test database: the clinical data loaded once per session.
    database = settings.DATABASES["default"]
    forwarder = TcpForwarder(int(database["PORT"] or 5432))
    url = f"postgres://{database['USER']}@127.0.0.1:{forwarder.port}/{database['NAME']}"
    try:
        with gunicorn(tmp_path, database_url=url, issuers=_issuers(signing_key)) as server:
            during = [requests.get(f"{server.url}{path}", timeout=10) for path in ("/readyz", "/api/v1/openapi.json")]
            forwarder.on.set()
            after = [requests.get(f"{server.url}{path}", timeout=10) for path in ("/readyz", "/api/v1/openapi.json")]
    finally:
        forwarder.close()
    assert [r.status_code for r in during] == [503, 503]
    assert [r.status_code for r in after] == [200, 200]
    institution = after[1].json()["components"]["schemas"]["RecommendationRequest"]["properties"]["institution"]
    assert institution["anyOf"][0]["enum"] == ["chop", "cnh", "musc", "nih", "seattle", "stjude"]
