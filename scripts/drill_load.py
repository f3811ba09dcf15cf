"""The fault drill's load and report (run by scripts/fault_drill.sh, not on its own).

Sends POST /api/v1/recommendations from a few threads for --seconds, polls /readyz and /healthz, stops the
throw-away cluster at --stop-at for --down-for seconds (pg_ctlcluster), then prints: requests answered per
status, rows stored against 2xx answers (and any 2xx whose row is missing), 5xx other than 503, seconds to
recovery, and what the app logged.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psycopg
import requests


@dataclass
class Answer:
    sent_at: float
    status: str
    content_type: str = ""
    assessment_id: str | None = None


def post_loop(args: argparse.Namespace, key: str, start: float, stop: float, out: list[Answer], n: int) -> None:
    session = requests.Session()
    session.headers.update({"Authorization": f"Token {key}", "Content-Type": "application/json"})
    i = 0
    while (now := time.monotonic()) < stop:
        i += 1
        body = {
            "weight_kg": 10 + (n * 997 + i) % 1300 / 10,
            "age_years": 8,
            "toxicities": [{"type": "CRS", "grade": 3}],
            "prior_tocilizumab_doses": 1,
            "prior_steroids": True,
        }
        try:
            response = session.post(f"{args.url}/api/v1/recommendations", data=json.dumps(body), timeout=10)
        except requests.RequestException as error:
            out.append(Answer(now - start, f"no answer ({type(error).__name__})"))
            continue
        answer = Answer(now - start, str(response.status_code), response.headers.get("Content-Type", ""))
        if response.status_code == 200:
            answer.assessment_id = response.json()["assessment_id"]
        out.append(answer)


def poll_loop(url: str, start: float, stop: float, out: list[tuple[float, int | str]]) -> None:
    while (now := time.monotonic()) < stop:
        try:
            status: int | str = requests.get(url, timeout=5).status_code
        except requests.RequestException as error:
            status = type(error).__name__
        out.append((now - start, status))
        time.sleep(0.25)


def outage(args: argparse.Namespace, start: float, events: dict[str, float]) -> None:
    time.sleep(args.stop_at)
    subprocess.run(["pg_ctlcluster", *args.cluster.split(), "stop", "-m", "fast"], check=True)
    events["database_stopped"] = time.monotonic() - start  # when the stop command has returned
    time.sleep(args.down_for)
    events["database_starting"] = time.monotonic() - start  # when the start command is given
    subprocess.run(["pg_ctlcluster", *args.cluster.split(), "start"], check=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--key-file", type=Path, required=True)
    parser.add_argument("--app-log", type=Path, required=True)
    parser.add_argument("--cluster", required=True, help='"<version> <name>" for pg_ctlcluster')
    parser.add_argument("--seconds", type=float, default=45)
    parser.add_argument("--stop-at", type=float, default=10)
    parser.add_argument("--down-for", type=float, default=15)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    key = args.key_file.read_text().strip()

    start = time.monotonic()
    stop = start + args.seconds
    answers: list[Answer] = []
    readyz: list[tuple[float, int | str]] = []
    healthz: list[tuple[float, int | str]] = []
    events: dict[str, float] = {}
    threads = [
        threading.Thread(target=post_loop, args=(args, key, start, stop, answers, n)) for n in range(args.concurrency)
    ]
    threads += [
        threading.Thread(target=poll_loop, args=(f"{args.url}/readyz", start, stop, readyz)),
        threading.Thread(target=poll_loop, args=(f"{args.url}/healthz", start, stop, healthz)),
        threading.Thread(target=outage, args=(args, start, events)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    ok_ids = [a.assessment_id for a in answers if a.assessment_id]
    with psycopg.connect(args.database_url) as connection:
        stored = {str(row[0]) for row in connection.execute("SELECT id FROM assessments_assessment")}
    missing = [i for i in ok_ids if i not in stored]
    started = events["database_starting"]
    first_ok_after = min((a.sent_at for a in answers if a.status == "200" and a.sent_at >= started), default=None)
    first_ready_after = min((t for t, s in readyz if s == 200 and t >= started), default=None)
    during = [a for a in answers if events["database_stopped"] <= a.sent_at < started]
    log = args.app_log.read_text()

    print(f"\nLoad: {len(answers)} POST /api/v1/recommendations in {args.seconds:g} s from {args.concurrency} threads;")
    stopped = events["database_stopped"]
    print(f"database stopped (stop command returned) at {stopped:.1f} s, start command at {started:.1f} s")
    print("Answered, per status:")
    for status, count in sorted(Counter(a.status for a in answers).items()):
        print(f"  {status:>24}: {count}")
    print(f"  of them while the database was stopped: {dict(sorted(Counter(a.status for a in during).items()))}")
    not_json = sum(1 for a in answers if a.status.isdigit() and not a.content_type.startswith("application/json"))
    other_5xx = sum(1 for a in answers if a.status.startswith("5") and a.status != "503")
    print(f"Answers not JSON: {not_json}; 5xx other than 503: {other_5xx}")
    print(f"Rows stored: {len(stored)}; 2xx answers: {len(ok_ids)}; 2xx without a row: {len(missing)}")
    recovered = f"{first_ok_after - started:.1f} s" if first_ok_after is not None else "never"
    ready = f"{first_ready_after - started:.1f} s" if first_ready_after is not None else "never"
    print(f"Seconds to recovery (start command -> first 2xx): {recovered}; -> first /readyz 200: {ready}")
    print(f"/readyz answers: {dict(sorted(Counter(str(s) for _, s in readyz).items()))}")
    print(f"/healthz answers: {dict(sorted(Counter(str(s) for _, s in healthz).items()))}")
    unavailable_lines = log.count("Service Unavailable (database)")
    print(
        f"App log: {len(log.splitlines())} lines ({len(log.encode()) // 1024} KB), {log.count('Traceback')} "
        f"tracebacks, {unavailable_lines} "
        f"'Service Unavailable (database)' lines for {sum(1 for a in answers if a.status == '503')} 503 answers, "
        f"{log.count('Not ready (database)')} 'Not ready' lines"
    )
    healthy = not missing and not other_5xx and not not_json and first_ok_after is not None
    return 0 if healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())
