"""A refactoring guard, run by hand (not collected by `make test`): writes what clinicians and EHRs are sent
for a fixed grid of cases - the API's JSON, the stored assessment, its FHIR export and CDS Hooks cards - with
the per-call identifiers (assessment id, times, card uuids) blanked, so two runs can be compared byte for byte.

    SNAPSHOT_DIR=/tmp/before .venv/bin/python -m pytest tests/snapshot/outputs.py -q
    ... change the code ...
    SNAPSHOT_DIR=/tmp/after .venv/bin/python -m pytest tests/snapshot/outputs.py -q
    diff -r /tmp/before /tmp/after

Run both on the same day: a card names the age of the EHR's weight.
"""

from __future__ import annotations

import itertools
import os
import re
from decimal import Decimal
from pathlib import Path

import pytest

from tests.ehr_support import (
    ORDER_SELECT_PATH,
    ORDER_SIGN_PATH,
    SC,
    allergy_bundle,
    anakinra_draft,
    full_prefetch,
    hook_body,
    weight_bundle,
)

pytestmark = pytest.mark.integration

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?")

INSTITUTIONS = ["cnh", "seattle", "chop", "nih", "musc", "stjude"]
WEIGHTS = ["8", "9.9", "10", "20", "36.3", "36.4", "40", "41", "44.5", "51", "120"]
TOXICITY_SETS = [
    [{"type": "CRS", "grade": 1}],
    [{"type": "CRS", "grade": 2}],
    [{"type": "CRS", "grade": 3}],
    [{"type": "ICANS", "grade": 2}],
    [{"type": "ICANS", "grade": 4}],
    [{"type": "carHLH", "grade": 2}],
    [{"type": "carHLH", "grade": 3}],
    [{"type": "CRS", "grade": 4}, {"type": "ICANS", "grade": 3}, {"type": "carHLH", "grade": 4}],
]
HISTORIES = [(0, False), (1, True), (2, True)]
SAFETY = [
    {},
    {"thrombocytopenia_or_coagulopathy": True, "active_infection": True, "creatinine_clearance_ml_min": 25},
    {"concurrent_tnf_blocker": True, "car_target": "CD22", "age_years": 31},
    {"ecoli_protein_hypersensitivity": True},
    {"late_onset_isolated": True, "fever": False, "hypotension": False},
]


def _blank(text: str) -> str:
    return STAMP.sub("<time>", UUID.sub("<uuid>", text))


def _api_cases() -> list[dict]:
    cases = []
    for weight, toxicities, (tocilizumab, steroids) in itertools.product(WEIGHTS, TOXICITY_SETS, HISTORIES):
        cases.append(
            {
                "weight_kg": Decimal(weight),
                "age_years": 10,
                "toxicities": toxicities,
                "prior_tocilizumab_doses": tocilizumab,
                "prior_steroids": steroids,
            }
        )
    for extra, institution in itertools.product(SAFETY, INSTITUTIONS):
        body = {
            "weight_kg": Decimal("20"),
            "age_years": 10,
            "toxicities": TOXICITY_SETS[-1],
            "prior_tocilizumab_doses": 1,
            "prior_steroids": True,
            "institution": institution,
        }
        cases.append({**body, **extra})
    return cases


def _cds_cases() -> list[tuple[str, dict]]:
    cases = []
    for institution_dose, route, every in itertools.product(["40", "100", "250"], [None, SC], [6, 12, None]):
        draft = anakinra_draft(Decimal(institution_dose), every_hours=every, **({"route": route} if route else {}))
        cases.append((ORDER_SELECT_PATH, hook_body(draft, prefetch=full_prefetch())))
        cases.append((ORDER_SIGN_PATH, hook_body(draft, hook="order-sign", prefetch=full_prefetch())))
    for weight in ["9", "20", "51", "120"]:
        prefetch = full_prefetch(weight_bundle(Decimal(weight)))
        cases.append((ORDER_SELECT_PATH, hook_body(anakinra_draft(Decimal("100")), prefetch=prefetch)))
    allergic = {**full_prefetch(), "allergies": allergy_bundle("anakinra")}
    cases.append((ORDER_SELECT_PATH, hook_body(anakinra_draft(), prefetch=allergic)))
    no_weight = {**full_prefetch(), "weight": None}
    cases.append((ORDER_SELECT_PATH, hook_body(anakinra_draft(Decimal("150")), prefetch=no_weight)))
    cases.append(
        (
            ORDER_SELECT_PATH,
            hook_body(anakinra_draft(), anakinra_draft(route=SC, draft_id="d2"), prefetch=full_prefetch()),
        )
    )
    return cases


def test_write_snapshot(token_client, ehr, settings):
    target = Path(os.environ.get("SNAPSHOT_DIR", "test-artifacts/snapshot"))
    target.mkdir(parents=True, exist_ok=True)
    from anakinra_cds import jsonutil

    for number, body in enumerate(_api_cases()):
        posted = token_client.post("/api/v1/recommendations", jsonutil.dumps(body), content_type="application/json")
        assert posted.status_code == 200, posted.content
        answer = posted.json()
        stored = token_client.get(f"/api/v1/assessments/{answer['assessment_id']}")
        fhir = token_client.get(f"/api/v1/assessments/{answer['assessment_id']}/fhir")
        text = "\n".join(_blank(response.content.decode()) for response in (posted, stored, fhir))
        (target / f"api-{number:03}.txt").write_text(text, encoding="utf-8")
    for institution in INSTITUTIONS:
        settings.CDS_HOOKS_ISSUERS = {
            issuer: {**config, "institution": institution} for issuer, config in settings.CDS_HOOKS_ISSUERS.items()
        }
        for number, (path, body) in enumerate(_cds_cases()):
            response = ehr.post(path, body)
            (target / f"cds-{institution}-{number:03}.txt").write_text(
                f"{response.status_code}\n{_blank(response.content.decode())}", encoding="utf-8"
            )
    discovery = ehr.client.get("/cds-services")
    (target / "cds-discovery.txt").write_text(_blank(discovery.content.decode()), encoding="utf-8")
    openapi = token_client.get("/api/v1/openapi.json")
    (target / "openapi.txt").write_text(openapi.content.decode(), encoding="utf-8")
