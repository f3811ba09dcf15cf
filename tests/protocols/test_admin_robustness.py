"""Bad ids and bad numbers in the admin: every page answers 404 or a field error, never a 500.

The URLs are enumerated from the admin's URLconf (every model page and custom governance view),
so a page added later is probed too.
"""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.urls import URLPattern, get_resolver, reverse

from protocols.models import Protocol
from protocols.services import protocol_version_draft_create, protocol_version_submit
from tests.admin_helpers import admin_form_data, logged_in, patient_form_data, step_field, version_change_url

pytestmark = pytest.mark.integration

BAD_IDS = ("999999999", "abc", "1.5", "-1", "0", "1%20OR%201=1", "99999999999999999999999", "%00")


def _admin_object_routes() -> list[str]:
    admin_resolver = next(p for p in get_resolver().url_patterns if getattr(p, "app_name", None) == "admin")
    routes = []
    for model_pattern in admin_resolver.url_patterns:
        if not hasattr(model_pattern, "url_patterns"):
            continue
        prefix = str(model_pattern.pattern)
        for pattern in model_pattern.url_patterns:
            if isinstance(pattern, URLPattern) and "object_id" in str(pattern.pattern):
                routes.append("/admin/" + prefix + str(pattern.pattern))
    return routes


def test_admin_object_pages_answer_bad_ids_with_404(pharmacist):
    client = logged_in(pharmacist)
    client.raise_request_exception = False  # collect every 500 rather than stop at the first
    routes = _admin_object_routes()
    assert len(routes) >= len(admin.site._registry) * 4  # change, delete, history, simple_history per model
    answers = {}
    for route in routes:
        for bad in BAD_IDS:
            # Every parameter bad, and (for history rows) a real object with a bad second id.
            urls = {re.sub(r"<[^>]+>", bad, route)}
            if route.count("<") > 1:
                urls.add(re.sub(r"<[^>]+>", bad, route.replace("<path:object_id>", "1")))
            for url in urls:
                for method in ("get", "post"):
                    answers[(method, url)] = getattr(client, method)(url).status_code
    not_handled = {key: code for key, code in answers.items() if code not in (302, 403, 404)}
    assert not_handled == {}


BAD_NUMBERS = ("NaN", "nan", "-NaN", "sNaN", "Infinity", "-Infinity", "inf", "1e999", "-1e999", "1e-999", "99999999999")
STEP_DECIMALS = (
    "amount_low",
    "amount_high",
    "max_single_dose_mg",
    "max_daily_dose_mg",
    "escalation_ceiling_amount",
    "rounding_increment_mg",
    "rounding_tolerance_percent",
)


@pytest.fixture
def draft(pharmacist):
    return protocol_version_draft_create(protocol=Protocol.objects.get(institution__slug="cnh"), author=pharmacist)


def test_draft_decimal_fields_refuse_non_finite_and_absurd_numbers(pharmacist, draft):
    client = logged_in(pharmacist)
    client.raise_request_exception = False
    step = draft.steps.order_by("position").first()
    page = client.get(version_change_url(draft.pk))
    fields = {name: step_field(page, step.name, name) for name in STEP_DECIMALS}
    fields["concentration_mg_per_ml"] = "concentration_mg_per_ml"
    revision = draft.edit_revision
    answers = {}
    for label, posted_name in fields.items():
        for bad in BAD_NUMBERS:
            data = admin_form_data(page) | {posted_name: bad}
            response = client.post(version_change_url(draft.pk), data)
            answers[(label, bad)] = response.status_code
    draft.refresh_from_db()
    step.refresh_from_db()

    assert {key: code for key, code in answers.items() if code != 200} == {}  # the form again, with errors
    assert draft.edit_revision == revision  # nothing was saved
    assert step.amount_low.is_finite() and draft.concentration_mg_per_ml.is_finite()


def test_test_patient_decimal_fields_refuse_non_finite_numbers(pharmacist, draft):
    client = logged_in(pharmacist)
    client.raise_request_exception = False
    base = patient_form_data(draft, label="bad number probe") | {
        "expected_status": "recommended",
        "expected_step_name": "probe",
        "expected_per_day_low_mg": "10",
        "expected_per_day_high_mg": "10",
    }
    answers = {}
    for field in (
        "expected_per_dose_low_mg",
        "expected_per_day_low_mg",
        "expected_per_day_high_mg",
        "weight_kg",
        "age_years",
        "creatinine_clearance_ml_min",
    ):
        for bad in BAD_NUMBERS:
            response = client.post("/admin/protocols/protocoltestpatient/add/", base | {field: bad})
            answers[(field, bad)] = (response.status_code, bool(response.context and response.context["errors"]))

    assert {key: answer for key, answer in answers.items() if answer != (200, True)} == {}
    assert not draft.test_patients.filter(label="bad number probe").exists()


GARBAGE = {
    "revision": "NaN",
    "change_reason": "x" * 20000,
    "approval_note": "\x00",
    "reason": "",
    "next_review": "99999-99-99",
}


def test_governance_views_answer_garbage_posts_with_form_errors(pharmacist, second_pharmacist, draft):
    client = logged_in(second_pharmacist)
    client.raise_request_exception = False
    nih_draft = protocol_version_draft_create(protocol=Protocol.objects.get(institution__slug="nih"), author=pharmacist)
    submitted = protocol_version_submit(
        version=nih_draft,
        submitted_by=pharmacist,
        change_reason="probe",
        expected_revision=None,
    )
    urls = [
        reverse("admin:protocols_protocolversion_submit", args=[draft.pk]),
        reverse("admin:protocols_protocolversion_approve", args=[submitted.pk]),
        reverse("admin:protocols_protocolversion_reject", args=[submitted.pk]),
        reverse("admin:protocols_protocol_start_draft", args=[draft.protocol_id]),
    ]
    answers = {url: client.post(url, GARBAGE).status_code for url in urls}
    for against in ("abc", "999999999", "1.5", "\x00"):
        url = reverse("admin:protocols_protocolversion_diff", args=[draft.pk]) + "?against=" + against
        answers[url] = client.get(url).status_code

    assert {url: code for url, code in answers.items() if code not in (200, 404)} == {}
    assert [v.status for v in (type(draft).objects.get(pk=draft.pk), type(draft).objects.get(pk=submitted.pk))] == [
        "draft",
        "submitted",
    ]


BAD_QUERIES = (
    "q=%00",
    "q=" + "x" * 5000,
    "o=abc",
    "o=99",
    "p=abc",
    "p=99999",
    "e=1",
    "review=zzz",
    "status=zzz",
    "protocol__id__exact=abc",
    "protocol=abc",
    "expected_status=%00",
    "action=%00",
    "_changelist_filters=%00",
)


@pytest.mark.parametrize("role", ["pharmacist", "admin_user"])
def test_admin_changelists_answer_bad_query_strings_without_500(db, request, role):
    client = logged_in(request.getfixturevalue(role))
    client.raise_request_exception = False
    # Ours: Django's own user and group lists (superusers only) are left as Django made them.
    changelists = [
        f"/admin/{m._meta.app_label}/{m._meta.model_name}/" for m in admin.site._registry if m._meta.app_label != "auth"
    ]
    answers = {
        f"{url}?{query}": client.get(f"{url}?{query}").status_code for url in changelists for query in BAD_QUERIES
    }

    assert {url: code for url, code in answers.items() if code >= 500} == {}
