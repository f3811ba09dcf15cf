"""CDS Hooks bodies with numbers nothing can read: a clear 400, not a 500 (Decimal overflow) or Python's
own integer-limit message."""

from __future__ import annotations

import pytest

from anakinra_cds import jsonutil
from tests.ehr_support import ORDER_SELECT_PATH, full_prefetch, hook_body, weight_bundle

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("literal", "message"),
    [
        ("1e999999999", "The number 1e999999999 at line {} is out of range: its exponent is beyond ±100000."),
        (
            "1" + "0" * 5000,
            "The number 100000000000... (5001 characters) at line {} is out of range: it has more than 4300 digits.",
        ),
    ],
)
def test_order_select_weight_out_of_range_is_a_clear_400(ehr, literal, message):
    body = jsonutil.dumps(hook_body(prefetch=full_prefetch(weight=weight_bundle(jsonutil.loads("12345.5")))))
    column = body.index("12345.5") + 1
    response = ehr.client.post(
        ORDER_SELECT_PATH,
        body.replace("12345.5", literal),
        content_type="application/json",
        headers={"Authorization": f"Bearer {ehr.token(ORDER_SELECT_PATH)}"},
    )
    assert (response.status_code, response["Content-Type"], response.json()) == (
        400,
        "application/json",
        {"errors": {"body": [message.format(f"1 column {column}")]}},
    )
