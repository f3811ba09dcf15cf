"""Defects a QA walk of the pharmacist workflow found (draft -> test patients -> second-pharmacist approval ->
publish): the test-patient diff, the link in the approval email, the bedside preview's label of a draft, the
plausibility arithmetic, and the printed change record. Driven through the admin as two pharmacists would."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse
from django.utils.html import strip_tags

from protocols.models import AmountConfirmation, Protocol, ProtocolVersion
from protocols.services import protocol_version_draft_create, protocol_version_submit
from tests.admin_helpers import admin_form_data, logged_in, step_field, version_change_url

pytestmark = pytest.mark.integration

SEATTLE_CRS = "30 kg, CRS grade 3 after one tocilizumab dose and steroids: consider"


def _draft(slug: str, author) -> ProtocolVersion:
    return protocol_version_draft_create(protocol=Protocol.objects.get(institution__slug=slug), author=author)


# --- The test-patient diff pairs a patient with itself, not by label alone ---------------------------


def test_approval_diff_shows_a_renamed_test_patient_as_changed(pharmacist, second_pharmacist):
    draft = _draft("seattle", pharmacist)
    crs = draft.test_patients.get(label=SEATTLE_CRS)
    crs.label = "30 kg, CRS grade 3 after one tocilizumab dose and steroids: may be considered"
    crs.arithmetic = "Checked again: 2 mg/kg/dose x 30 kg = 60 mg per dose; 4 doses a day = 240 mg/day."
    crs.save()
    protocol_version_submit(version=draft, submitted_by=pharmacist, change_reason="Wording.", expected_revision=None)

    page = logged_in(second_pharmacist).get(reverse("admin:protocols_protocolversion_approve", args=[draft.pk]))

    assert page.status_code == 200
    assert [
        (section.title, [(row.key, row.state, [(c.label, c.old, c.new) for c in row.changes]) for row in section.rows])
        for section in page.context["diff_sections"]
    ] == [
        (
            "Test patients",
            [
                (
                    "30 kg, CRS grade 3 after one tocilizumab dose and steroids: may be considered",
                    "changed",
                    [
                        ("label", SEATTLE_CRS, crs.label),
                        (
                            "arithmetic",
                            "Severe CRS after a first tocilizumab dose and steroids: may be considered. "
                            "2 mg/kg/dose x 30 kg = 60 mg per dose; 4 doses a day = 240 mg/day.",
                            crs.arithmetic,
                        ),
                    ],
                )
            ],
        )
    ]
    html = page.content.decode()
    assert "removed</span>" not in html and "added</span>" not in html


def test_approval_diff_shows_a_test_patient_with_edited_inputs_under_its_label_as_changed(
    pharmacist, second_pharmacist
):
    draft = _draft("seattle", pharmacist)
    crs = draft.test_patients.get(label=SEATTLE_CRS)
    # 2 mg/kg/dose x 32 kg = 64 mg per dose; up to every 6 h = at most 4 doses a day: 256 mg/day (below the caps).
    crs.inputs = {**crs.inputs, "weight_kg": 32}
    crs.expected_per_dose_low_mg = crs.expected_per_dose_high_mg = Decimal(64)
    crs.expected_per_day_low_mg = crs.expected_per_day_high_mg = Decimal(256)
    crs.save()
    protocol_version_submit(version=draft, submitted_by=pharmacist, change_reason="Weight.", expected_revision=None)

    page = logged_in(second_pharmacist).get(reverse("admin:protocols_protocolversion_approve", args=[draft.pk]))

    assert [
        (row.key, row.state, [(c.label, c.old, c.new) for c in row.changes])
        for section in page.context["diff_sections"]
        for row in section.rows
    ] == [
        (
            SEATTLE_CRS,
            "changed",
            [
                (
                    "patient",
                    "30 kg; 10 years; CRS grade 3; tocilizumab doses 1; steroids yes",
                    "32 kg; 10 years; CRS grade 3; tocilizumab doses 1; steroids yes",
                ),
                ("expected per dose", "60 mg", "64 mg"),
                ("expected per day", "240 mg/day", "256 mg/day"),
            ],
        )
    ]


# --- The approval email links to the approval page with an absolute URL ------------------------------


def _submit_through_the_admin(client, draft, django_capture_on_commit_callbacks, **extra):
    url = reverse("admin:protocols_protocolversion_submit", args=[draft.pk])
    revision = ProtocolVersion.objects.get(pk=draft.pk).edit_revision
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"revision": revision, "change_reason": "Wording."}, **extra)
    return response


@pytest.mark.parametrize(
    ("site_url", "host", "expected_base"),
    [
        ("", "testserver", "http://testserver"),  # unset: the host the author submitted from
        ("", "cds.hospital.example:8443", "http://cds.hospital.example:8443"),
        ("https://cds.example.org", "testserver", "https://cds.example.org"),  # set: SITE_URL wins
    ],
)
def test_approval_email_link_is_absolute(
    pharmacist, second_pharmacist, settings, django_capture_on_commit_callbacks, site_url, host, expected_base
):
    settings.SITE_URL = site_url
    settings.ALLOWED_HOSTS = ["testserver", "cds.hospital.example"]
    second_pharmacist.email = "reviewer@example.org"
    second_pharmacist.save()
    draft = _draft("cnh", pharmacist)

    response = _submit_through_the_admin(
        logged_in(pharmacist), draft, django_capture_on_commit_callbacks, HTTP_HOST=host
    )

    assert response.status_code == 302
    [message] = mail.outbox
    link_line = next(line for line in message.body.splitlines() if line.startswith("You may review it: "))
    assert link_line == f"You may review it: {expected_base}/admin/protocols/protocolversion/{draft.pk}/approve/"


# --- The bedside preview labels a draft as the draft --------------------------------------------------


def _protocol_refs(html: str) -> list[str]:
    """The "Protocol version ..." line of each answer card on a page, in page order, as text."""
    return [strip_tags(part.split("</p>")[0]).strip() for part in html.split('<p class="protocol-ref">')[1:]]


def test_bedside_preview_labels_the_draft_as_a_draft_not_in_use(pharmacist, second_pharmacist):
    draft = _draft("seattle", pharmacist)
    url = reverse("protocol_version_preview", args=["seattle", draft.pk])
    client = logged_in(second_pharmacist)

    as_draft = client.get(url)
    protocol_version_submit(version=draft, submitted_by=pharmacist, change_reason="Review.", expected_revision=None)
    as_submitted = client.get(url)

    published_line = (
        r"Protocol version 1 \(in this app since \d+ \w+ \d{4}\)\. From the published letter: Diorio C, Vatsayan A, "
        r"et al\. Blood Adv 2022 \(Table 1\)\. Not yet approved by a local pharmacist\."
    )
    not_approved = "Not approved yet: clinicians see the published version until a second pharmacist approves this one."
    [published, version] = _protocol_refs(as_draft.content.decode())
    assert re.fullmatch(published_line, published)
    assert version == f"Protocol version 2 (draft - not in use). {not_approved}"
    assert _protocol_refs(as_submitted.content.decode())[1] == (
        f"Protocol version 2 (submitted for approval - not in use). {not_approved}"
    )
    assert "From the published letter" not in version


# --- The plausibility message's arithmetic agrees with itself -----------------------------------------


def _save_step(client, draft, **fields):
    page = client.get(version_change_url(draft.pk))
    data = admin_form_data(page)
    for name, value in fields.items():
        data[step_field(page, "Initial dosing", name)] = value
    return client.post(version_change_url(draft.pk), data)


def _step_errors(response) -> dict[str, list[str]]:
    return {
        field: messages
        for inline in response.context["inline_admin_formsets"]
        for form_errors in inline.formset.errors
        for field, messages in form_errors.items()
    }


def test_per_dose_cap_message_shows_the_doses_a_day_and_the_per_day_cap(pharmacist):
    draft = _draft("cnh", pharmacist)  # cnh: 2 mg/kg/dose every 6 h, at most 100 mg/dose and 400 mg/day
    client = logged_in(pharmacist)

    refused = _save_step(client, draft, max_single_dose_mg="1000", max_daily_dose_mg="3000")
    saved = _save_step(
        client,
        draft,
        max_single_dose_mg="1000",
        max_daily_dose_mg="3000",
        unusual_amount_reason="Testing the arithmetic of the flag.",
    )

    tail = (
        ", above 400 mg/day: the most any center in the letter reports (Diorio C, Vatsayan A, et al. Blood Adv 2022 "
        '(Table 1)). Check the unit (mg or mg/kg). If the amount is right, say why in "Reason for an amount above '
        'what the letter reports" and save again.'
    )
    # 1000 mg/dose every 6 h: 24 / 6 = 4 doses a day, 4 x 1000 = 4000 mg/day, held to the 3000 mg/day cap.
    assert _step_errors(refused) == {
        "max_single_dose_mg": [
            "1000 mg/dose every 6 h is 4 doses a day x 1000 mg = 4000 mg/day, held to 3000 mg/day by the maximum "
            f"per day{tail}"
        ],
        "max_daily_dose_mg": [f"3000 mg/day{tail}"],
    }
    assert saved.status_code == 302
    assert sorted(AmountConfirmation.objects.filter(version=draft).values_list("amount_text", flat=True)) == [
        "1000 mg/dose every 6 h is 4 doses a day x 1000 mg = 4000 mg/day, held to 3000 mg/day by the maximum per "
        "day, above 400 mg/day",
        "3000 mg/day, above 400 mg/day",
    ]
    review = client.get(version_change_url(draft.pk))  # the draft's page: what the approver will see first
    assert (
        "<li>Initial dosing, maximum per dose: <strong>1000 mg/dose every 6 h is 4 doses a day x 1000 mg = "
        "4000 mg/day, held to 3000 mg/day by the maximum per day</strong>, above 400 mg/day." in review.content.decode()
    )
