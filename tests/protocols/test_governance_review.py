"""What a P&T committee asks of a reviewed change (issue 14): unusual amounts confirmed with a reason,
changed amounts covered by test patients, a worklist and a notification, a signed approval, who is acting,
and history in plain words. Driven through the admin as two pharmacists would."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from accounts.models import LoginFailure
from audit.models import AuditEvent
from protocols.models import AmountConfirmation, DosingStep, Protocol, ProtocolVersion, VersionStatus
from protocols.services import (
    GovernanceError,
    SignatureRefused,
    protocol_version_approve,
    protocol_version_draft_create,
    protocol_version_submit,
)
from tests import factories
from tests.admin_helpers import admin_form_data, logged_in, step_field, version_change_url

pytestmark = pytest.mark.integration

SEATTLE_PATIENTS = (
    "30 kg, CRS grade 3 after one tocilizumab dose and steroids: consider",
    "30 kg, CRS grade 3 after two tocilizumab doses and steroids: still consider",
    "30 kg, ICANS grade 2 with steroids: below the grade 3 floor",
    "30 kg, ICANS grade 3 with steroids starting",
)


def _draft(slug: str, author) -> ProtocolVersion:
    return protocol_version_draft_create(protocol=Protocol.objects.get(institution__slug=slug), author=author)


def _save_step(client, draft, **fields):
    page = client.get(version_change_url(draft.pk))
    data = admin_form_data(page)
    for name, value in fields.items():
        data[step_field(page, "Initial dosing", name)] = value
    return client.post(version_change_url(draft.pk), data)


def _errors(response) -> list[str]:
    return [
        f"{field}: {message}"
        for inline in response.context["inline_admin_formsets"]
        for form_errors in inline.formset.errors
        for field, messages in form_errors.items()
        for message in messages
    ]


def _next_year():
    return timezone.localdate() + timedelta(days=365)


# --- Item 1: an amount above what the letter reports needs the author's reason -----------------------


def test_mistyped_unit_is_refused_at_save_until_confirmed_with_a_reason(pharmacist):
    draft = _draft("cnh", pharmacist)
    client = logged_in(pharmacist)

    refused = _save_step(client, draft, amount_low="500", amount_high="500")

    # 500 mg/kg/dose every 6 h = 4 x 500 = 2000 mg/kg/day, above 10 mg/kg/day.
    message = (
        "500 mg/kg/dose every 6 h is 4 doses a day x 500 mg/kg = 2000 mg/kg/day, above 10 mg/kg/day: the most any "
        "center in the letter reports (Diorio C, Vatsayan A, et al. Blood Adv 2022 (Table 1)). Check the unit (mg or "
        'mg/kg). If the amount is right, say why in "Reason for an amount above what the letter reports" and save '
        "again."
    )
    assert refused.status_code == 200
    assert _errors(refused) == [f"amount_low: {message}", f"amount_high: {message}"]
    assert DosingStep.objects.get(version=draft).amount_low == Decimal("2")

    saved = _save_step(client, draft, amount_low="500", amount_high="500", unusual_amount_reason="Testing the flag.")

    assert saved.status_code == 302
    confirmations = list(AmountConfirmation.objects.filter(version=draft).values_list("field", "amount_text", "reason"))
    assert confirmations == [
        (
            "amount_low",
            "500 mg/kg/dose every 6 h is 4 doses a day x 500 mg/kg = 2000 mg/kg/day, above 10 mg/kg/day",
            "Testing the flag.",
        ),
        (
            "amount_high",
            "500 mg/kg/dose every 6 h is 4 doses a day x 500 mg/kg = 2000 mg/kg/day, above 10 mg/kg/day",
            "Testing the flag.",
        ),
    ]
    events = AuditEvent.objects.filter(action="protocol_version.amount_confirmed", subject_id=str(draft.pk))
    assert [(e.actor, e.reason, e.details["per_day"]) for e in events] == [
        (pharmacist, "Testing the flag.", "2000 mg/kg/day"),
        (pharmacist, "Testing the flag.", "2000 mg/kg/day"),
    ]


def test_a_confirmed_amount_is_not_asked_again_but_a_changed_one_is(pharmacist):
    draft = _draft("cnh", pharmacist)
    client = logged_in(pharmacist)
    _save_step(client, draft, amount_low="20", amount_high="20", unusual_amount_reason="Loading dose.")

    notes_only = _save_step(client, draft, notes="Wording.")
    changed_again = _save_step(client, draft, amount_low="30", amount_high="30")

    assert notes_only.status_code == 302
    assert changed_again.status_code == 200
    assert [e.split(":")[0] for e in _errors(changed_again)] == ["amount_low", "amount_high"]


def test_amounts_within_the_letter_save_without_a_word(pharmacist):
    draft = _draft("cnh", pharmacist)

    # 2.5 mg/kg/dose every 6 h = 10 mg/kg/day: at the most the letter reports, not above it.
    response = _save_step(logged_in(pharmacist), draft, amount_low="2.5", amount_high="2.5")

    assert response.status_code == 302
    assert AmountConfirmation.objects.filter(version=draft).exists() is False


def test_submit_refused_while_an_amount_above_the_letter_is_unconfirmed(pharmacist):
    draft = _draft("cnh", pharmacist)
    DosingStep.objects.filter(version=draft).update(amount_low=Decimal(50), amount_high=Decimal(50))  # not the form
    draft.test_patients.exclude(expected_step_name="").delete()  # keep the status-only patient, which still passes

    with pytest.raises(GovernanceError, match=r"Cannot submit: 2 changed amount\(s\) above what the letter reports"):
        protocol_version_submit(
            version=draft, submitted_by=pharmacist, change_reason="x", expected_revision=None, coverage_note="x"
        )

    assert ProtocolVersion.objects.get(pk=draft.pk).status == VersionStatus.DRAFT


def test_approver_sees_the_flag_first_and_the_audit_records_both(pharmacist, second_pharmacist):
    draft = _draft("cnh", pharmacist)
    author = logged_in(pharmacist)
    _save_step(author, draft, amount_low="3", amount_high="3", unusual_amount_reason="Center raised the dose.")
    heavy = draft.test_patients.get(label__startswith="60 kg")  # 3 x 60 = 180 -> capped at 100 mg: unchanged
    light = draft.test_patients.get(label__startswith="20 kg, CRS grade 3 after")  # 3 x 20 = 60 mg, 240 mg/day
    light.expected_per_dose_low_mg = light.expected_per_dose_high_mg = Decimal(60)
    light.expected_per_day_low_mg = light.expected_per_day_high_mg = Decimal(240)
    light.save()
    grade_2 = draft.test_patients.get(label__startswith="20 kg, CRS grade 2 after")  # the same 60 mg, 240 mg/day
    grade_2.expected_per_dose_low_mg = grade_2.expected_per_dose_high_mg = Decimal(60)
    grade_2.expected_per_day_low_mg = grade_2.expected_per_day_high_mg = Decimal(240)
    grade_2.save()
    assert heavy.pk
    protocol_version_submit(
        version=draft, submitted_by=pharmacist, change_reason="3 mg/kg/dose.", expected_revision=None
    )

    page = logged_in(second_pharmacist).get(reverse("admin:protocols_protocolversion_approve", args=[draft.pk]))
    protocol_version_approve(
        version=draft,
        approved_by=second_pharmacist,
        password=factories.PASSWORD,
        approval_note="Checked the flag.",
        next_review=_next_year(),
        expected_revision=None,
    )

    html = page.content.decode()
    # 3 mg/kg/dose every 6 h = 12 mg/kg/day, above 10 mg/kg/day; shown before the governance panel and the form.
    assert html.index("2 changed amounts above what the letter reports") < html.index('id="gov-heading"')
    assert html.index("Center raised the dose.") < html.index("Approval note")
    approved = AuditEvent.objects.get(action="protocol_version.approved", subject_id=str(draft.pk)).details
    assert approved["amounts_above_letter"] == [
        {
            "step": "Initial dosing",
            "amount": label,
            "value": "3 mg/kg/dose every 6 h",
            "per_day": "12 mg/kg/day",
            "threshold": "10 mg/kg/day",
            "confirmed_by": pharmacist.get_full_name(),
            "reason": "Center raised the dose.",
        }
        for label in ("amount, low", "amount, high")
    ]


# --- Item 3: each changed amount exercised by a test patient, or a reason why not -------------------


def test_seattle_per_day_cap_no_test_patient_reaches_needs_a_coverage_note(pharmacist):
    # The walked-through change: per-day cap 400 -> 300 mg and a fixed 6-hour interval. Seattle's test
    # patients weigh 30 kg: 60 mg x 4 = 240 mg/day, under either cap.
    draft = _draft("seattle", pharmacist)
    client = logged_in(pharmacist)
    _save_step(client, draft, max_daily_dose_mg="300", interval_is_maximum="")
    submit_url = reverse("admin:protocols_protocolversion_submit", args=[draft.pk])

    page = client.get(submit_url)
    refused = client.post(
        submit_url, {"revision": page.context["form"]["revision"].value(), "change_reason": "Cap 300 mg/day."}
    )

    review = page.context["change_review"]
    assert [(a.amount.label, a.amount.old, a.amount.new, a.covered_by) for a in review.amounts] == [
        (
            "interval",
            "up to every 6 h",
            "every 6 h",
            SEATTLE_PATIENTS,  # each one's frequency changes (the not-indicated one's amounts are shown, labelled)
        ),
        ("maximum per day", "400 mg/day", "300 mg/day", ()),
    ]
    assert refused.context["form"].non_field_errors() == [
        "No test patient's answer changes with Initial dosing: maximum per day. "
        "Add a test patient that exercises each, or say in the coverage note why not."
    ]
    submitted = client.post(
        submit_url,
        {
            "revision": page.context["form"]["revision"].value(),
            "change_reason": "Cap 300 mg/day.",
            "coverage_note": "Reached only above 37.5 kg; a 45 kg patient will be added at the next review.",
        },
    )
    assert submitted.status_code == 302
    version = ProtocolVersion.objects.get(pk=draft.pk)
    assert (version.status, version.coverage_note) == (
        VersionStatus.SUBMITTED,
        "Reached only above 37.5 kg; a 45 kg patient will be added at the next review.",
    )
    event = AuditEvent.objects.get(action="protocol_version.submitted", subject_id=str(draft.pk))
    assert event.details["amounts_no_test_patient_exercises"] == ["Initial dosing: maximum per day"]


# --- Item 4: a worklist on the admin home, and an email to the other pharmacists ----------------------


def test_submitting_emails_the_other_pharmacists_who_may_approve(
    pharmacist, second_pharmacist, clinician, settings, django_capture_on_commit_callbacks
):
    settings.SITE_URL = "https://cds.example.org"
    second_pharmacist.email = "reviewer@example.org"
    second_pharmacist.save()
    pharmacist.email = "author@example.org"  # the author is not told about their own submission
    pharmacist.save()
    clinician.email = "clinician@example.org"  # clinicians cannot approve
    clinician.save()
    factories.UserFactory(username="no-mail", role="pharmacist", email="")  # nowhere to send
    draft = _draft("cnh", pharmacist)

    with django_capture_on_commit_callbacks(execute=True):
        protocol_version_submit(
            version=draft, submitted_by=pharmacist, change_reason="Wording.", expected_revision=None
        )
        unsent = len(mail.outbox)  # nothing is sent before the submission is committed

    assert unsent == 0
    assert [(m.to, m.subject) for m in mail.outbox] == [
        (["reviewer@example.org"], "Awaiting your approval: Children's National Hospital anakinra protocol v2")
    ]
    body = mail.outbox[0].body
    assert f"{pharmacist.get_full_name()} has submitted Children's National Hospital anakinra protocol v2" in body
    assert f"https://cds.example.org/admin/protocols/protocolversion/{draft.pk}/approve/" in body
    event = AuditEvent.objects.get(action="protocol_version.submitted", subject_id=str(draft.pk))
    assert event.details["notified"] == [second_pharmacist.get_full_name()]


def test_a_mail_failure_keeps_the_submission_and_is_audited(
    pharmacist, second_pharmacist, settings, django_capture_on_commit_callbacks
):
    settings.MAILERS = {"default": {"BACKEND": "tests.protocols.failing_mail.FailingBackend"}}
    second_pharmacist.email = "reviewer@example.org"
    second_pharmacist.save()
    draft = _draft("cnh", pharmacist)

    with django_capture_on_commit_callbacks(execute=True):
        protocol_version_submit(
            version=draft, submitted_by=pharmacist, change_reason="Wording.", expected_revision=None
        )

    assert ProtocolVersion.objects.get(pk=draft.pk).status == VersionStatus.SUBMITTED
    failure = AuditEvent.objects.get(action="protocol_version.notification_failed", subject_id=str(draft.pk))
    assert (failure.reason, failure.details["recipients"]) == (
        "ConnectionRefusedError: the mail server refused",
        [second_pharmacist.get_full_name()],
    )


def test_admin_home_lists_what_awaits_each_pharmacist(pharmacist, second_pharmacist):
    submitted = _draft("cnh", pharmacist)
    protocol_version_submit(
        version=submitted, submitted_by=pharmacist, change_reason="Wording.", expected_revision=None
    )
    own_draft = _draft("nih", second_pharmacist)

    reviewer_home = logged_in(second_pharmacist).get(reverse("admin:index"))
    author_home = logged_in(pharmacist).get(reverse("admin:index"))

    def listed(response):
        work = response.context["work"]
        return {
            "review": [e.version.pk for e in work.awaiting_your_review],
            "others": [e.version.pk for e in work.awaiting_another_pharmacist],
            "drafts": [e.version.pk for e in work.your_drafts],
        }

    assert listed(reviewer_home) == {"review": [submitted.pk], "others": [], "drafts": [own_draft.pk]}
    assert listed(author_home) == {"review": [], "others": [submitted.pk], "drafts": []}
    assert reverse("admin:protocols_protocolversion_approve", args=[submitted.pk]) in reviewer_home.content.decode()


# --- Item 7: who is acting; approval signed with the approver's password ----------------------------


def test_admin_header_names_the_person_and_their_role(pharmacist, admin_user):
    pharmacist_page = logged_in(pharmacist).get(reverse("admin:index")).content.decode()
    admin_page = logged_in(admin_user).get(reverse("admin:index")).content.decode()

    assert f"Signed in as <strong>{pharmacist.get_full_name()}</strong>\n  (pharmacist)." in pharmacist_page
    assert "Signed in as <strong>admin</strong>\n  (administrator)." in admin_page
    assert "Welcome," not in pharmacist_page


def test_wrong_password_refuses_the_approval_and_is_audited(pharmacist, second_pharmacist):
    draft = _draft("cnh", pharmacist)
    protocol_version_submit(version=draft, submitted_by=pharmacist, change_reason="Wording.", expected_revision=None)
    client = logged_in(second_pharmacist)
    url = reverse("admin:protocols_protocolversion_approve", args=[draft.pk])
    revision = client.get(url).context["form"]["revision"].value()
    post = {"revision": revision, "approval_note": "Checked.", "next_review": _next_year().isoformat()}

    refused = client.post(url, post | {"password": "not-my-password"})
    approved = client.post(url, post | {"password": factories.PASSWORD})

    assert refused.context["form"].errors == {
        "password": ["That is not your password. Approval is signed with your own password; nothing was approved."]
    }
    assert approved.status_code == 302
    assert ProtocolVersion.objects.get(pk=draft.pk).status == VersionStatus.PUBLISHED
    events = AuditEvent.objects.filter(subject_id=str(draft.pk), actor=second_pharmacist).order_by("id")
    assert [(e.action, e.details.get("signature")) for e in events] == [
        ("protocol_version.signature_refused", None),
        ("protocol_version.approved", "password re-entered at approval"),
        ("protocol_version.published", None),
    ]


def test_repeated_wrong_passwords_pause_approval(pharmacist, second_pharmacist, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    draft = _draft("cnh", pharmacist)
    protocol_version_submit(version=draft, submitted_by=pharmacist, change_reason="Wording.", expected_revision=None)

    def approve(password):
        return protocol_version_approve(
            version=draft,
            approved_by=second_pharmacist,
            password=password,
            approval_note="ok",
            next_review=_next_year(),
            expected_revision=None,
        )

    for _ in range(2):
        with pytest.raises(SignatureRefused, match="That is not your password"):
            approve("guess")
    with pytest.raises(SignatureRefused, match="Too many wrong passwords"):
        approve(factories.PASSWORD)

    assert LoginFailure.objects.count() == 2
    assert ProtocolVersion.objects.get(pk=draft.pk).status == VersionStatus.SUBMITTED


# --- Item 8: history in plain words ------------------------------------------------------------------


def test_version_history_reads_in_plain_words(pharmacist, second_pharmacist):
    draft = _draft("cnh", pharmacist)
    reason = "Per-dose cap lowered to 80 mg after the pharmacy and therapeutics committee's review. " * 3
    _save_step(logged_in(pharmacist), draft, max_single_dose_mg="80")
    for patient in draft.test_patients.filter(label__startswith="60 kg"):
        patient.expected_per_dose_low_mg = patient.expected_per_dose_high_mg = Decimal(80)
        patient.expected_per_day_low_mg = patient.expected_per_day_high_mg = Decimal(320)
        patient.save()
    protocol_version_submit(version=draft, submitted_by=pharmacist, change_reason=reason, expected_revision=None)

    page = logged_in(second_pharmacist).get(reverse("admin:protocols_protocolversion_history", args=[draft.pk]))

    html = page.content.decode()
    rows = page.context["row_history"]
    assert [(e.table, e.row, e.changes) for e in rows if e.action == "changed"][:2] == [
        (
            "Test patient",
            "60 kg, ICANS grade 4 after tocilizumab and steroids: per-dose cap",
            (
                ("Expected per dose, low (mg)", "100", "80"),
                ("Expected per dose, high (mg)", "100", "80"),
                ("Expected per day, low (mg)", "400", "320"),
                ("Expected per day, high (mg)", "400", "320"),
            ),
        ),
        ("Dosing step", "Initial dosing", (("Maximum per dose (mg)", "100", "80"),)),
    ]
    assert escape(reason.strip()) in html  # the whole reason, never "[187 chars]"
    assert "chars]" not in html and "Deleted user" not in html and "pk=None" not in html
    assert "Updated at" not in html and "Edit revision" not in html
    assert f"<td>{pharmacist.get_full_name()}</td>" in html


def test_audit_list_names_protocol_version_and_decision(pharmacist):
    draft = _draft("cnh", pharmacist)

    page = logged_in(pharmacist).get(reverse("admin:audit_auditevent_changelist"))

    html = page.content.decode()
    assert "Children&#x27;s National Hospital anakinra protocol v2" in html
    assert "draft started" in html
    assert f"subject id {draft.pk}" not in html


# --- Item 9: smaller things -----------------------------------------------------------------------


def test_author_sees_no_enabled_approve_button(pharmacist):
    draft = _draft("cnh", pharmacist)
    protocol_version_submit(version=draft, submitted_by=pharmacist, change_reason="Wording.", expected_revision=None)
    client = logged_in(pharmacist)

    change_page = client.get(version_change_url(draft.pk)).content.decode()
    approve_page = client.get(reverse("admin:protocols_protocolversion_approve", args=[draft.pk])).content.decode()

    assert reverse("admin:protocols_protocolversion_approve", args=[draft.pk]) not in change_page
    assert "Approve and publish (not you: you edited it)" in change_page
    assert '<input type="submit" class="default" disabled aria-describedby="own-work-note"' in approve_page


def test_preview_shows_warnings_in_words_not_codes(pharmacist):
    draft = _draft("stjude", pharmacist)

    page = logged_in(pharmacist).get(version_change_url(draft.pk))

    rows = {row.label: row for row in page.context["preview_rows"]}
    warnings = next(
        line.draft
        for line in rows["38 kg, carHLH grade 3: rounded to the nearest vial"].lines
        if line.what == "Warnings"
    )
    assert "above_reported_maximum" not in warnings
    assert warnings.startswith("warning: ")


# --- Item 5: the draft as the bedside shows it, beside the published version -----------------------


def _cap_lowered(author) -> ProtocolVersion:
    """cnh draft: per-dose cap 100 -> 80 mg, with the 60 kg test patient updated (80 mg, 320 mg/day)."""
    draft = _draft("cnh", author)
    _save_step(logged_in(author), draft, max_single_dose_mg="80")
    heavy = draft.test_patients.get(label__startswith="60 kg")
    heavy.expected_per_dose_low_mg = heavy.expected_per_dose_high_mg = Decimal(80)
    heavy.expected_per_day_low_mg = heavy.expected_per_day_high_mg = Decimal(320)
    heavy.save()
    return ProtocolVersion.objects.get(pk=draft.pk)


def test_bedside_preview_puts_the_draft_beside_the_published_version(pharmacist, second_pharmacist, clinician):
    draft = _cap_lowered(pharmacist)
    heavy = draft.test_patients.get(label__startswith="60 kg")
    url = reverse("protocol_version_preview", args=["cnh", draft.pk])

    page = logged_in(second_pharmacist).get(url, {"patient": heavy.pk})
    refused = logged_in(clinician).get(url)

    assert page.status_code == 200
    # 2 mg/kg x 60 kg = 120 mg: capped at 100 mg (published) and at 80 mg (draft).
    assert [
        (rec["protocol"]["version"], rec["steps"][0]["per_dose_mg"], rec["steps"][0]["order_text"])
        for rec in (page.context["published_rec"], page.context["version_rec"])
    ] == [
        (1, {"low": 100, "high": 100}, "anakinra 100 mg IV every 6 hours (2 mg/kg/dose; max 100 mg/dose, 400 mg/day)"),
        (2, {"low": 80, "high": 80}, "anakinra 80 mg IV every 6 hours (2 mg/kg/dose; max 80 mg/dose, 400 mg/day)"),
    ]
    html = page.content.decode()
    assert html.count("100 mg/dose, 400 mg/day") >= 1 and "80 mg/dose, 400 mg/day" in html
    assert refused.status_code == 403


# --- Item 6: one printable change record ---------------------------------------------------------


def test_change_record_has_everything_the_committee_signs(pharmacist, second_pharmacist, django_assert_num_queries):
    draft = _cap_lowered(pharmacist)
    protocol_version_submit(
        version=draft, submitted_by=pharmacist, change_reason="Per-dose cap 80 mg.", expected_revision=None
    )
    protocol_version_approve(
        version=draft,
        approved_by=second_pharmacist,
        password=factories.PASSWORD,
        approval_note="Checked against the source.",
        next_review=_next_year(),
        expected_revision=None,
    )
    client = logged_in(second_pharmacist)
    url = reverse("admin:protocols_protocolversion_change_record", args=[draft.pk])
    client.get(url)  # warm the published catalog cache

    # A fixed number: session, user, permissions and role; each version read once for the answers and once
    # for the diff (with its test patients); the review's confirmations and thresholds; the decisions.
    with django_assert_num_queries(34):
        page = client.get(url)

    html = page.content.decode()
    record = page.context["record"]
    assert (record.compared_with.number, record.version.number) == (1, 2)
    assert [(s.title, [(r.key, r.state) for r in s.rows]) for s in record.sections] == [
        ("Dosing steps", [("Initial dosing", "changed")]),
        ("Test patients", [("60 kg, ICANS grade 4 after tocilizumab and steroids: per-dose cap", "changed")]),
    ]
    assert [(a.amount.label, a.amount.old, a.amount.new) for a in record.review.amounts] == [
        ("maximum per dose", "100 mg/dose every 6 h", "80 mg/dose every 6 h")
    ]
    assert [e.action_words for e in record.decisions] == ["draft started", "submitted", "approved", "published"]
    for text in (
        "Per-dose cap 80 mg.",
        "Checked against the source.",
        pharmacist.get_full_name(),
        second_pharmacist.get_full_name(),
        "password re-entered at approval",
        "Pharmacy and therapeutics committee chair",
        "<td>maximum per dose (mg)</td><td>100</td><td>80</td>",
    ):
        assert text in html, text
