"""JWK Set fetches cannot starve the service. Reproduction: a token naming an allowed `jku` whose server
accepts and never answers made every CDS Hooks call wait for its own fetch; three such connections cut
legitimate throughput from 108 to 1.6 requests/s."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from cds_hooks import auth
from cds_hooks.auth import InvalidToken, cds_client_verify
from tests.cds_hooks.conftest import TEST_HOST
from tests.ehr_support import ISSUER, bearer, claims, ec_key, sign

pytestmark = pytest.mark.integration

DISCOVERY = "/cds-services"
DISCOVERY_AUD = f"{TEST_HOST}{DISCOVERY}"
TIMEOUT_SECONDS = 1
HOLD_SECONDS = 6


@dataclass
class StallingServer:
    """Accepts connections and does not finish an answer: silent, or (trickle) a header and then one byte of
    the body every 0.2 s, so no single read ever times out. Each connection is dropped after HOLD_SECONDS, so
    a regression fails its deadline instead of hanging the suite."""

    trickle: bool = False
    connections: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def _serve(self, listener: socket.socket) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        until = time.monotonic() + HOLD_SECONDS
        with conn:
            if self.trickle:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
            while not self.stop.wait(0.2) and time.monotonic() < until:
                if self.trickle:
                    try:
                        conn.sendall(b" ")
                    except OSError:
                        return


@contextmanager
def stalling_jku(*, trickle: bool = False) -> Iterator[tuple[str, StallingServer]]:
    server = StallingServer(trickle=trickle)
    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=server._serve, args=(listener,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/jwks", server
    finally:
        server.stop.set()
        listener.close()


@pytest.fixture
def jku_issuer(ehr, settings):
    """The trusted issuer keeps its inline keys and may also name one jku (set by the test)."""
    settings.CDS_HOOKS_HTTP_TIMEOUT_SECONDS = TIMEOUT_SECONDS

    def allow(jku: str) -> None:
        settings.CDS_HOOKS_ISSUERS[ISSUER]["jku"] = [jku]

    return allow


def _attacker_token(jku: str) -> str:
    # Signed by a key no one trusts, with a kid no held set has: only a fetch of the jku could find it.
    return sign(ec_key(kid="attacker"), claims(aud=DISCOVERY_AUD), jku=jku)


def _timed(call) -> tuple[object, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def test_jwks_stalled_fetch_holds_a_request_no_longer_than_the_timeout_then_is_not_retried(ehr, jku_issuer):
    with stalling_jku() as (jku, server):
        jku_issuer(jku)
        first, first_seconds = _timed(lambda: ehr.get(DISCOVERY, token=_attacker_token(jku)))
        second, second_seconds = _timed(lambda: ehr.get(DISCOVERY, token=_attacker_token(jku)))
        connections = server.connections

    assert (first.status_code, second.status_code) == (401, 401)
    # Client-side deadlines, not timing goals: the timeout plus 1 s for the first, and no wait for the second.
    assert first_seconds < TIMEOUT_SECONDS + 1
    assert second_seconds < 1
    assert connections == 1


def test_jwks_trickling_server_cannot_hold_a_request_past_the_timeout(ehr, jku_issuer):
    # Each read gets a byte before the timeout, so only a deadline on the whole fetch stops it.
    with stalling_jku(trickle=True) as (jku, _server):
        jku_issuer(jku)
        response, seconds = _timed(lambda: ehr.get(DISCOVERY, token=_attacker_token(jku)))

    assert response.status_code == 401
    assert seconds < TIMEOUT_SECONDS + 1


def test_jwks_concurrent_requests_share_one_fetch(ehr, jku_issuer):
    with stalling_jku() as (jku, server):
        jku_issuer(jku)
        outcomes: list[str] = []

        def call() -> None:
            try:
                cds_client_verify(authorization=bearer(_attacker_token(jku))["Authorization"], audience=DISCOVERY_AUD)
            except InvalidToken:
                outcomes.append("refused")

        threads = [threading.Thread(target=call) for _ in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=TIMEOUT_SECONDS + 1)
        connections = server.connections

    assert (outcomes, connections) == (["refused"] * 5, 1)


def test_jwks_kid_already_held_is_used_without_fetching_the_named_jku(ehr, jku_issuer):
    # The issuer's own key, in a token that names the stalled jku: the held key verifies it, nothing waits.
    with stalling_jku() as (jku, server):
        jku_issuer(jku)
        token = sign(ehr.key, claims(aud=DISCOVERY_AUD), jku=jku)
        response, seconds = _timed(lambda: ehr.get(DISCOVERY, token=token))
        connections = server.connections

    assert (response.status_code, connections) == (200, 0)
    assert seconds < 1


def test_jwks_failed_fetch_is_tried_again_once_the_failure_is_forgotten(ehr, jku_issuer, fake_ehr_server, monkeypatch):
    monkeypatch.setattr(auth, "JWKS_FAILURE_SECONDS", 0.3)
    key = ec_key(kid="jku-key")
    jku = f"{fake_ehr_server.url}/jwks"
    jku_issuer(jku)
    fake_ehr_server.routes["/jwks"] = (503, {})

    failed = ehr.get(DISCOVERY, token=sign(key, claims(aud=DISCOVERY_AUD), jku=jku))
    fake_ehr_server.routes["/jwks"] = (200, key.jwks())
    remembered = ehr.get(DISCOVERY, token=sign(key, claims(aud=DISCOVERY_AUD), jku=jku))
    time.sleep(0.4)
    retried = ehr.get(DISCOVERY, token=sign(key, claims(aud=DISCOVERY_AUD), jku=jku))

    assert (failed.status_code, remembered.status_code, retried.status_code) == (401, 401, 200)
    assert [r["path"] for r in fake_ehr_server.requests] == ["/jwks", "/jwks"]
