"""`make bench` is a report, not a test, but its in-process part must keep working against the real models:
it broke once when assessments gained a required column (rules_revision) that the bench's INSERT did not set."""

from __future__ import annotations

import pytest

from assessments.models import Assessment
from bench.run import post_breakdown
from engine.revisions import RULES_REVISION

pytestmark = pytest.mark.integration


def test_bench_post_breakdown_times_every_part_and_stores_current_answers(api_key, settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    before = Assessment.objects.count()
    parts = post_breakdown(api_key, requests=2)
    labels = [label.split(" (")[0] for label, _, _ in parts]
    assert labels == [
        "API-token lookup",
        "catalog revision check",
        "engine, six centers",
        "JSON shape",
        "encode the answer",
        "INSERT of the answer and its commit",
        "whole POST /api/v1/recommendations",
        "whole GET /healthz",
    ]
    assert all(wall_ms > 0 for _, wall_ms, _ in parts)
    # The bench's own INSERTs and the whole POSTs stored answers under the current rules.
    stored = Assessment.objects.order_by("-created_at")[: Assessment.objects.count() - before]
    assert {a.rules_revision for a in stored} == {RULES_REVISION}
