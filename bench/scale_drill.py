"""The scale-out drill: two gunicorn instances behind HAProxy (round robin) on one PostgreSQL.

    DATABASE_URL=postgres://... scripts/scale_drill.sh      (or: .venv/bin/python -m bench.scale_drill)

Run by hand, not in CI. It makes a throw-away database (`<name>_drill`, dropped and made again on each
run), starts instances A and B and a balancer on 127.0.0.1, and proves that nothing lives in one
process: a publish through A is served by B on its next request; a session made on A works on B;
log-in throttle counts, JWT ids (replays) and token revocations are seen by both; load through the
balancer stores one row per 2xx answer; killing B mid-load leaves A serving with at most as many
failed requests as the load had connections open. Then it measures throughput through the balancer
with one and with two instances. Prints every figure; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import psycopg
import requests
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import loadtools  # noqa: E402
from bench.loadtools import DEFAULT_WORKER_MODEL, Spread, WorkerModel  # noqa: E402

LOAD_CONNECTIONS = 8
RECOMMENDATION_BODY = (
    '{"weight_kg":%s,"age_years":8,"prior_tocilizumab_doses":1,"prior_steroids":true,'
    '"toxicities":[{"type":"CRS","grade":3},{"type":"carHLH","grade":3}]}'
)
PASSWORD = "drill-only-password-" + uuid.uuid4().hex


# --- Environment and data ---------------------------------------------------------------------------


def environment(*, database_suffix: str, issuers: dict | None = None) -> dict[str, str]:
    """Production settings (DEBUG off) for plain HTTP on 127.0.0.1."""
    env = {
        **os.environ,
        "DATABASE_URL": loadtools.database_url_with_suffix(database_suffix),
        "SECRET_KEY": os.environ.get("BENCH_SECRET_KEY", "drill-" + uuid.uuid4().hex * 2),
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "STATIC_MANIFEST": "false",
        "LOG_LEVEL": "WARNING",
        "DATABASE_CONN_MAX_AGE": "600",
        "DJANGO_SETTINGS_MODULE": "anakinra_cds.settings",
    }
    if issuers is not None:
        env["CDS_HOOKS_ISSUERS"] = json.dumps(issuers)
    return env


def database_recreate(url: str) -> None:
    """Drop and create the drill's own database (never any other)."""
    parts = psycopg.conninfo.conninfo_to_dict(url)
    name = parts["dbname"]
    if not name.endswith("_drill"):
        raise SystemExit(f"refusing to drop {name!r}: the drill only drops a database named *_drill")
    with psycopg.connect(psycopg.conninfo.make_conninfo(url, dbname="postgres"), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def migrate_and_load(env: dict[str, str]) -> None:
    python = loadtools.PYTHON
    subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [python, "manage.py", "load_clinical_data"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
    )


def django_setup(env: dict[str, str]) -> None:
    """This process reads and writes the drill database like an administrator's shell would."""
    os.environ.update(env)
    import django

    django.setup()


@dataclass
class DrillData:
    api_key: str
    revocable_key: str
    revocable_token_id: int
    draft_id: int
    draft_revision: int


def drill_data_create() -> DrillData:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from accounts.models import ApiToken
    from accounts.services import api_token_create
    from protocols.models import Protocol
    from protocols.services import protocol_version_draft_create, protocol_version_submit

    users = get_user_model().objects
    author = users.create_user("drill-author", password=PASSWORD, is_staff=True)
    reviewer = users.create_user("drill-reviewer", password=PASSWORD, is_staff=True)
    for pharmacist in (author, reviewer):
        pharmacist.groups.add(Group.objects.get(name="pharmacist"))
    for username in ("drill-clinician", "drill-throttled"):
        users.create_user(username, password=PASSWORD).groups.add(Group.objects.get(name="clinician"))
    system = users.create_user("drill-system", password=None)
    _, api_key = api_token_create(user=system, name="drill load")
    revocable, revocable_key = api_token_create(user=system, name="drill revocation")
    draft = protocol_version_draft_create(
        protocol=Protocol.objects.get(institution__slug="cnh"), author=author, reason="Scale drill"
    )
    draft = protocol_version_submit(
        version=draft,
        submitted_by=author,
        change_reason="Scale drill: republish the same content as a new version.",
        expected_revision=draft.edit_revision,
    )
    assert ApiToken.objects.filter(pk=revocable.pk, revoked_at__isnull=True).exists()
    return DrillData(
        api_key=api_key,
        revocable_key=revocable_key,
        revocable_token_id=revocable.pk,
        draft_id=draft.pk,
        draft_revision=draft.edit_revision,
    )


def stored_answers() -> int:
    from assessments.models import Assessment

    return Assessment.objects.filter(created_by__username="drill-system").count()


# --- HTTP helpers -----------------------------------------------------------------------------------


def login(base: str, username: str, password: str, *, path: str = "/accounts/login/") -> requests.Response:
    """Log in with the form (CSRF cookie and token, as a browser would); returns the POST's answer."""
    session = requests.Session()
    page = session.get(base + path, timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return session.post(
        base + path,
        data={"csrfmiddlewaretoken": token, "username": username, "password": password, "next": "/"},
        allow_redirects=False,
        timeout=30,
    )


def cnh_version(base: str, api_key: str) -> int:
    answer = requests.get(base + "/api/v1/institutions", headers={"Authorization": f"Token {api_key}"}, timeout=10)
    answer.raise_for_status()
    (cnh,) = [i for i in answer.json()["institutions"] if i["slug"] == "cnh"]
    return cnh["protocol"]["version"]


def recommend(base: str, api_key: str) -> requests.Response:
    return requests.post(
        base + "/api/v1/recommendations",
        data=RECOMMENDATION_BODY % "20",
        headers={"Authorization": f"Token {api_key}", "Content-Type": "application/json"},
        timeout=10,
    )


# --- Checks -----------------------------------------------------------------------------------------


@dataclass
class Report:
    lines: list[tuple[bool, str]] = field(default_factory=list)

    def check(self, ok: bool, text: str) -> bool:
        self.lines.append((ok, text))
        print(f"  [{'pass' if ok else 'FAIL'}] {text}", flush=True)
        return ok

    @property
    def passed(self) -> bool:
        return all(ok for ok, _ in self.lines)


def check_publish_seen_everywhere(report: Report, a: str, b: str, data: DrillData) -> None:
    before = cnh_version(b, data.api_key)  # B has now loaded and cached the catalog
    admin = requests.Session()
    answer = login(a, "drill-reviewer", PASSWORD, path="/admin/login/")
    admin.cookies.update(answer.cookies)
    approve_url = f"{a}/admin/protocols/protocolversion/{data.draft_id}/approve/"
    page = admin.get(approve_url, timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    published = admin.post(
        approve_url,
        data={
            "csrfmiddlewaretoken": token,
            "revision": str(data.draft_revision),
            "approval_note": "Scale drill: checked.",
            "next_review": str(_today() + timedelta(days=180)),
        },
        allow_redirects=False,
        timeout=30,
    )
    after = cnh_version(b, data.api_key)
    served = recommend(b, data.api_key).json()
    versions = {r["institution"]["slug"]: r["protocol"]["version"] for r in served["recommendations"]}
    report.check(
        published.status_code == 302 and (before, after, versions.get("cnh")) == (1, 2, 2),
        f"publish through A, served by B on its next request: cnh v{before} -> v{after} on B "
        f"(approve answered {published.status_code}; B's next recommendation used v{versions.get('cnh')})",
    )


def _today():
    from django.utils import timezone

    return timezone.localdate()


def check_session_shared(report: Report, a: str, b: str) -> None:
    answer = login(a, "drill-clinician", PASSWORD)
    cookies = {"sessionid": answer.cookies.get("sessionid", "")}
    on_b = requests.get(b + "/", cookies=cookies, allow_redirects=False, timeout=10)
    anonymous = requests.get(b + "/", allow_redirects=False, timeout=10)
    report.check(
        answer.status_code == 302 and on_b.status_code == 200 and anonymous.status_code == 302,
        f"a session made on A works on B: log-in on A {answer.status_code}, B with that cookie {on_b.status_code}, "
        f"B without it {anonymous.status_code} (to the log-in page)",
    )


def check_throttle_shared(report: Report, a: str, b: str) -> None:
    from django.conf import settings

    limit = settings.LOGIN_FAILURE_LIMIT
    for attempt in range(limit):
        login(a if attempt % 2 == 0 else b, "drill-throttled", "a wrong password")
    right_on_a = login(a, "drill-throttled", PASSWORD)
    right_on_b = login(b, "drill-throttled", PASSWORD)
    refused = [r.status_code == 200 and "Too many failed log-in attempts" in r.text for r in (right_on_a, right_on_b)]
    report.check(
        refused == [True, True],
        f"log-in throttle counts are shared: {limit} failures spread over A and B, then the right password "
        f"is refused on A and on B ({refused})",
    )


def check_replay_shared(report: Report, a: str, b: str, balancer_host: str, signer: Callable[[str], str]) -> None:
    from tests.ehr_support import ORDER_SELECT_PATH, full_prefetch, hook_body

    audience = f"http://{balancer_host}{ORDER_SELECT_PATH}"
    body = json.dumps(hook_body(prefetch=full_prefetch()), default=str)

    def call(base: str, token: str) -> int:
        return requests.post(
            base + ORDER_SELECT_PATH,
            data=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Host": balancer_host},
            timeout=10,
        ).status_code

    token = signer(audience)
    first, replayed, fresh = call(a, token), call(b, token), call(b, signer(audience))
    report.check(
        (first, replayed, fresh) == (200, 401, 200),
        f"CDS Hooks jti replays are shared: a JWT used on A {first}, replayed on B {replayed}, "
        f"a fresh JWT on B {fresh}",
    )


def check_revocation_immediate(report: Report, a: str, b: str, data: DrillData) -> None:
    from django.utils import timezone

    from accounts.models import ApiToken

    before = (recommend(a, data.revocable_key).status_code, recommend(b, data.revocable_key).status_code)
    ApiToken.objects.filter(pk=data.revocable_token_id).update(revoked_at=timezone.now())
    after = (recommend(a, data.revocable_key).status_code, recommend(b, data.revocable_key).status_code)
    report.check(
        (before, after) == ((200, 200), (401, 401)),
        f"a revoked token stops at once on every instance: A, B before {before}, right after revoking {after}",
    )


# --- Load through the balancer ----------------------------------------------------------------------


@dataclass
class LoadResult:
    sent: int
    ok: int
    failed: int
    failures: Counter
    ok_after: int = 0
    failed_after: int = 0
    seconds: float = 0.0


def python_load(
    port: int,
    api_key: str,
    *,
    connections: int,
    per_connection: int,
    seconds: float,
    after: threading.Event | None = None,
) -> LoadResult:
    """`connections` keep-alive connections, each sending up to `per_connection` POSTs within `seconds`.
    Counts every answer exactly (wrk cannot: it drops the answers in flight when its time is up).
    With `after`, also counts what was answered once that event was set."""
    lock = threading.Lock()
    result = LoadResult(sent=0, ok=0, failed=0, failures=Counter())
    deadline = time.monotonic() + seconds
    headers = {"Authorization": f"Token {api_key}", "Content-Type": "application/json"}

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for number in range(per_connection):
            if time.monotonic() > deadline:
                break
            spread = (index * 7919 + number * 104729) % 1400  # weights 1.0-140.9 kg, no two alike in a row
            body = RECOMMENDATION_BODY % f"{1 + spread // 10}.{spread % 10}"
            late = after is not None and after.is_set()
            try:
                connection.request("POST", "/api/v1/recommendations", body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                status, reason = response.status, str(response.status)
            except (OSError, http.client.HTTPException) as error:
                status, reason = 0, type(error).__name__
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            with lock:
                result.sent += 1
                if 200 <= status < 300:
                    result.ok += 1
                    result.ok_after += late
                else:
                    result.failed += 1
                    result.failed_after += late
                    result.failures[reason] += 1
        connection.close()

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.monotonic() - started
    return result


def haproxy_split(stats_port: int) -> dict[str, int]:
    """2xx answers per instance, from HAProxy's own statistics."""
    text = requests.get(f"http://127.0.0.1:{stats_port}/stats;csv", timeout=5).text.lstrip("# ")
    rows = csv.DictReader(io.StringIO(text))
    return {r["svname"]: int(r["hrsp_2xx"] or 0) for r in rows if r["pxname"] == "instances" and len(r["svname"]) == 1}


def check_load_keeps_every_answer(report: Report, balancer: loadtools.Balancer, data: DrillData) -> None:
    before_rows, before_split = stored_answers(), haproxy_split(balancer.stats_port)
    load = python_load(balancer.port, data.api_key, connections=LOAD_CONNECTIONS, per_connection=150, seconds=60)
    rows = stored_answers() - before_rows
    split = {k: v - before_split.get(k, 0) for k, v in haproxy_split(balancer.stats_port).items()}
    report.check(
        load.failed == 0 and rows == load.ok and min(split.values()) > 0,
        f"load through the balancer loses no stored answer: {load.sent} POSTs on {LOAD_CONNECTIONS} connections "
        f"in {load.seconds:.1f} s, {load.ok} 2xx, {rows} new rows; round robin split {split}",
    )


def check_kill_mid_load(report: Report, balancer: loadtools.Balancer, victim: loadtools.Instance, data: DrillData):
    before_rows = stored_answers()
    killed = threading.Event()
    settled = threading.Event()  # health checks have had time to mark the victim down

    def kill_later() -> None:
        time.sleep(3)
        victim.kill()
        killed.set()
        time.sleep(2)
        settled.set()

    killer = threading.Thread(target=kill_later)
    killer.start()
    load = python_load(
        balancer.port, data.api_key, connections=LOAD_CONNECTIONS, per_connection=10_000, seconds=10, after=settled
    )
    killer.join()
    rows = stored_answers() - before_rows
    report.check(
        killed.is_set()
        and load.failed <= LOAD_CONNECTIONS
        and load.ok_after > 0
        and load.failed_after == 0
        and load.ok <= rows <= load.ok + load.failed,
        f"killing instance B mid-load (SIGKILL at 3 s of 10 s) leaves A serving: {load.sent} POSTs, "
        f"{load.ok} 2xx, {load.failed} failed (at most {LOAD_CONNECTIONS}, the connections open; "
        f"{dict(load.failures)}), {load.ok_after} 2xx and {load.failed_after} failed once B was marked down; "
        f"{rows} new rows (every 2xx stored; a killed request may have been stored without its answer)",
    )


# --- Throughput -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Throughput:
    instances: int
    post: Spread
    healthz: Spread
    post_p99: Spread


def throughput(
    env: dict[str, str],
    api_key: str,
    *,
    model: WorkerModel,
    rounds: int,
    seconds: float,
    health_path: str | None = None,
) -> list[Throughput]:
    """POST /api/v1/recommendations and GET /healthz through the balancer with one, then two instances
    (wrk, 8 connections), interleaved in each round."""
    script = loadtools.post_script(
        path_body_template=RECOMMENDATION_BODY, headers={"Authorization": f"Token {api_key}"}
    )
    results = []
    try:
        for count in (1, 2):
            posts, healths = [], []
            with (
                loadtools.instances(env, model, count) as started,
                loadtools.balancer(started, health_path=health_path or health_path_for(started[0])) as front,
            ):
                loadtools.wrk(front.url + "/healthz", seconds=1, connections=8)
                loadtools.wrk(front.url + "/api/v1/recommendations", seconds=2, connections=8, script=script)
                for _ in range(rounds):
                    healths.append(loadtools.wrk(front.url + "/healthz", seconds=seconds, connections=8))
                    posts.append(
                        loadtools.wrk(
                            front.url + "/api/v1/recommendations", seconds=seconds, connections=8, script=script
                        )
                    )
            results.append(
                Throughput(
                    instances=count,
                    post=Spread(tuple(r.requests_per_second for r in posts)),
                    healthz=Spread(tuple(r.requests_per_second for r in healths)),
                    post_p99=Spread(tuple(r.p99_ms for r in posts)),
                )
            )
    finally:
        script.unlink(missing_ok=True)
    return results


def health_path_for(instance: loadtools.Instance) -> str:
    """/readyz (readiness: the database answers) when the app has it, else /healthz (liveness)."""
    answer = requests.get(instance.url + "/readyz", timeout=10)
    if answer.status_code == 404:
        return "/healthz"
    if answer.status_code != 200:
        raise SystemExit(f"/readyz answered {answer.status_code} on a fresh instance: {answer.text[:300]}")
    return "/readyz"


# --- Main -------------------------------------------------------------------------------------------


def signing_setup() -> tuple[dict, Callable[[str], str]]:
    from tests.ehr_support import ISSUER, claims, ec_key, sign

    key = ec_key("drill")
    return {ISSUER: {"jwks": key.jwks(), "institution": "cnh"}}, lambda audience: sign(key, claims(aud=audience))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds per configuration (default 3)")
    parser.add_argument("--seconds", type=float, default=8, help="seconds per wrk run (default 8)")
    args = parser.parse_args()
    loadtools.require("haproxy", "wrk")
    issuers, signer = signing_setup()
    env = environment(database_suffix="_drill", issuers=issuers)
    model = DEFAULT_WORKER_MODEL
    print(f"Scale drill: {loadtools.machine_note()}; each instance gunicorn {model.label}; HAProxy round robin")
    print(f"Database {env['DATABASE_URL'].rsplit('/', 1)[-1]} (made again for this run)", flush=True)
    # The role and the database first (check_postgres makes them on a fresh server), then a clean copy.
    subprocess.run([loadtools.PYTHON, "scripts/check_postgres.py"], cwd=ROOT, env=env, check=True)
    database_recreate(env["DATABASE_URL"])
    migrate_and_load(env)
    django_setup(env)
    data = drill_data_create()
    report = Report()
    with loadtools.instances(env, model, 2) as (a, b):
        health_path = health_path_for(a)
        if health_path != "/readyz":
            print("  note: the app has no /readyz yet; the balancer checks /healthz (liveness only)")
        with loadtools.balancer([a, b], health_path=health_path) as front:
            print(f"Instances A {a.url}, B {b.url}; balancer {front.url} (health checks on {health_path})")
            check_publish_seen_everywhere(report, a.url, b.url, data)
            check_session_shared(report, a.url, b.url)
            check_throttle_shared(report, a.url, b.url)
            check_replay_shared(report, a.url, b.url, f"127.0.0.1:{front.port}", signer)
            check_revocation_immediate(report, a.url, b.url, data)
            check_load_keeps_every_answer(report, front, data)
            check_kill_mid_load(report, front, b, data)
    print(f"Throughput through the balancer (wrk, 8 connections, {args.rounds} x {args.seconds:g} s; median (range)):")
    for row in throughput(
        env, data.api_key, model=model, rounds=args.rounds, seconds=args.seconds, health_path=health_path
    ):
        print(
            f"  {row.instances} instance{'s' if row.instances > 1 else ' '}: POST {row.post.text()} req/s "
            f"(p99 {row.post_p99.text('{:.0f}')} ms), GET /healthz {row.healthz.text()} req/s"
        )
    print("Scale drill " + ("passed." if report.passed else "FAILED."))
    return 0 if report.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
