"""Bedside page budget: server time and bytes transferred for the wizard and the result page.

    DATABASE_URL=postgres://... .venv/bin/python bench/bedside.py [--requests 200]

Creates its own throw-away database on that server (bench_bedside_<name>), loads the clinical data,
walks the wizard once with the Django test client, then times repeated GETs of each page
(p50/p99, in-process: URL routing, middleware, session, queries, templates) and adds up what a
browser downloads for it: the HTML plus every stylesheet and script the page links, gzip-compressed
the way WhiteNoise serves static files. Budget: under 150 KB and under 50 ms per page.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "anakinra_cds.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-insecure-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("STATIC_MANIFEST", "false")
# The test client's host. No setup_test_environment(): its template instrumentation would be timed too.
os.environ.setdefault("ALLOWED_HOSTS", "testserver")

import django  # noqa: E402

django.setup()

from django.contrib.staticfiles import finders  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

BUDGET_BYTES = 150_000
BUDGET_MS = 50.0
PATIENT = {
    "weight_kg": "20",
    "age_years": "8",
    "prior_tocilizumab_doses": "1",
    "prior_steroids": "true",
    "safety_screen": "none",
    "institution": "cnh",
    "car_target": "CD19",
}
TOXICITIES = {
    "fever": "true",
    "hypotension": "true",
    "crs_grade": "calculate",
    "crs_hypotension": "one_vasopressor",
    "crs_oxygen": "none",
    "icans_grade": "absent",
    "carhlh_grade": "absent",
}
ASSET = re.compile(r'<(?:link[^>]+rel="stylesheet"[^>]+href|script[^>]+src)="([^"]+)"')


def gzip_size(content: bytes) -> int:
    return len(gzip.compress(content, compresslevel=9, mtime=0))


def asset_bytes(html: str) -> tuple[int, list[str]]:
    """Compressed size of every stylesheet and script the page links (each once)."""
    total, names = 0, []
    for url in dict.fromkeys(ASSET.findall(html)):
        name = url.split("/static/", 1)[1]
        path = finders.find(name)
        if path is None:
            raise SystemExit(f"{url} is linked but not found by the static finders")
        total += gzip_size(Path(path).read_bytes())
        names.append(name)
    return total, names


def walk_wizard(client: Client) -> str:
    """One patient through the wizard; returns the result page's URL."""
    response = client.post("/", {**PATIENT, "action": "next"})
    assert response.status_code == 302, response.status_code
    response = client.post("/wizard/toxicities/", {**TOXICITIES, "action": "next"})
    assert response.status_code == 302 and response["Location"].startswith("/assessments/"), response
    return response["Location"]


def time_get(client: Client, url: str, requests: int) -> tuple[float, float, bytes]:
    for _ in range(10):  # warm caches: templates, the published-protocol cache, connections
        client.get(url)
    samples = []
    content = b""
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
        content = response.content
    samples.sort()
    p99 = samples[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))]
    return statistics.median(samples), p99, content


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="timed requests per page (default 200)")
    args = parser.parse_args()

    from django.contrib.auth import get_user_model

    from protocols.seed import clinical_data_load

    old_name = connection.settings_dict["NAME"]
    # Its own name, so a test run on the same server (test_<name>) is never clobbered.
    connection.settings_dict["TEST"]["NAME"] = f"bench_bedside_{old_name}"
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        clinical_data_load()
        user = get_user_model().objects.create_user(username="bench", password=None)
        client = Client()
        client.force_login(user)
        result_url = walk_wizard(client)
        pages = [
            ("wizard: patient step", "/"),
            ("wizard: toxicities step", "/wizard/toxicities/"),
            ("result page", result_url),
            ("print page", result_url + "print/"),
        ]
        print(f"Bedside pages on {connection.vendor} ({args.requests} timed requests each, in-process test client)")
        header = f"{'page':26} {'p50 ms':>7} {'p99 ms':>7} {'HTML':>8} {'HTML gz':>8} {'CSS+JS gz':>10} {'total':>8}"
        print(header)
        print("-" * len(header))
        within = True
        for label, url in pages:
            p50, p99, content = time_get(client, url, args.requests)
            assets, _ = asset_bytes(content.decode())
            # Django sends HTML uncompressed (no GZipMiddleware); count it raw, so the total is an upper bound.
            total = len(content) + assets
            ok = p50 < BUDGET_MS and p99 < BUDGET_MS and total < BUDGET_BYTES
            within = within and ok
            print(
                f"{label:26} {p50:7.1f} {p99:7.1f} {len(content):8} {gzip_size(content):8} {assets:10} {total:8}"
                f"  {'ok' if ok else 'OVER BUDGET'}"
            )
        _, names = asset_bytes(client.get("/").content.decode())
        print(f"\nStatic files counted (gzip level 9, as WhiteNoise compresses them): {', '.join(names)}")
        print(
            f"Budget: p50 and p99 under {BUDGET_MS:.0f} ms, HTML (uncompressed) + CSS + JS under "
            f"{BUDGET_BYTES // 1000} KB: {'within budget' if within else 'OVER BUDGET'}."
        )
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
