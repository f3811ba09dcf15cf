"""CDS Hooks bodies with numbers nothing can use: answered like any unusable weight, not a 500 (Decimal
overflow on 1E+999999999) or Python's own integer-limit message (an integer over 4300 digits)."""

from __future__ import annotations

import pytest

from anakinra_cds import jsonutil
from tests.ehr_support import ORDER_SELECT_PATH, full_prefetch, hook_body, weight_bundle

pytestmark = pytest.mark.integration


def _order_select(ehr, body: str, weight_literal: str):
    return ehr.client.post(
        ORDER_SELECT_PATH,
        body.replace("12345.5", weight_literal),
        content_type="application/json",
        headers={"Authorization": f"Bearer {ehr.token(ORDER_SELECT_PATH)}"},
    )


def _without_ids(answer: dict) -> dict:
    return {"cards": [{k: v for k, v in card.items() if k != "uuid"} for card in answer["cards"]]}


@pytest.mark.parametrize("literal", ["1e999999999", "-1e999999999", "1" + "0" * 5000])
def test_order_select_weight_out_of_any_range_is_an_unusable_weight(ehr, literal):
    # One body for both (its dates are relative to now), only the weight's value differs.
    body = jsonutil.dumps(hook_body(prefetch=full_prefetch(weight=weight_bundle(jsonutil.loads("12345.5")))))
    answer = _order_select(ehr, body, literal)
    usual = _order_select(ehr, body, "1e400")  # a weight far out of range, answered since issue 10
    assert (answer.status_code, answer["Content-Type"], usual.status_code) == (200, "application/json", 200)
    assert _without_ids(answer.json()) == _without_ids(usual.json())
