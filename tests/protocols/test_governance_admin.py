"""The admin's governance pages: read-only published versions, draft-only deletes, concurrent
edits refused, validation messages, previews, diffs, history, review flags, query counts."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from protocols.models import DosingStep, Protocol, ProtocolTestPatient, ProtocolVersion, VersionStatus
from protocols.selectors.catalog import published_protocols
from protocols.services import protocol_version_draft_create, protocol_version_publish
from tests import factories
from tests.admin_helpers import admin_form_data, logged_in, patient_form_data, step_field, version_change_url

pytestmark = pytest.mark.integration

CHANGELIST = reverse("admin:protocols_protocolversion_changelist")


def _published(slug: str) -> ProtocolVersion:
    return ProtocolVersion.objects.get(protocol__institution__slug=slug, status=VersionStatus.PUBLISHED)


def _draft(slug: str, author) -> ProtocolVersion:
    return protocol_version_draft_create(protocol=Protocol.objects.get(institution__slug=slug), author=author)


def _errors(response) -> list[str]:
    """Every error on an admin change page: the form's and each inline form's, flattened."""
    messages = list(response.context["adminform"].form.non_field_errors())
    for inline in response.context["inline_admin_formsets"]:
        for form_errors in inline.formset.errors:
            messages += [f"{field}: {m}" for field, errors in form_errors.items() for m in errors]
    return messages


# --- Published versions: read-only in the admin -------------------------------------------------


def test_published_version_change_page_is_read_only(pharmacist):
    response = logged_in(pharmacist).get(version_change_url(_published("cnh").pk))

    assert response.status_code == 200
    assert response.context["has_change_permission"] is False
    assert 'name="_save"' not in response.content.decode()
    assert all(not inline.has_change_permission for inline in response.context["inline_admin_formsets"])


@pytest.mark.parametrize("user_fixture", ["pharmacist", "admin_user"])
def test_published_version_change_post_refused(db, request, user_fixture):
    user = request.getfixturevalue(user_fixture)
    version = _published("cnh")
    client = logged_in(user)

    response = client.post(version_change_url(version.pk), {"notes": "changed", "_save": "Save"})

    assert response.status_code == 403
    assert ProtocolVersion.objects.get(pk=version.pk).notes == version.notes


@pytest.mark.parametrize("user_fixture", ["pharmacist", "admin_user"])
def test_published_version_delete_page_refused(db, request, user_fixture):
    client = logged_in(request.getfixturevalue(user_fixture))
    version = _published("cnh")

    response = client.post(reverse("admin:protocols_protocolversion_delete", args=[version.pk]), {"post": "yes"})

    assert response.status_code == 403
    assert ProtocolVersion.objects.filter(pk=version.pk).exists() is True


def test_version_list_offers_no_bulk_delete(pharmacist):
    drafts = [_draft("nih", pharmacist), _draft("musc", pharmacist)]

    client = logged_in(pharmacist)

    page = client.get(CHANGELIST)
    client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [d.pk for d in drafts], "post": "yes"})

    assert page.context["action_form"] is None
    assert ProtocolVersion.objects.filter(pk__in=[d.pk for d in drafts]).count() == 2


def test_draft_delete_needs_a_reason_and_audits_it(pharmacist):
    draft = _draft("nih", pharmacist)
    url = reverse("admin:protocols_protocolversion_delete", args=[draft.pk])
    client = logged_in(pharmacist)

    refused = client.post(url, {"reason": "  "})
    response = client.post(url, {"reason": "Started on the wrong protocol."})

    assert refused.status_code == 200
    assert refused.context["form"].errors == {"reason": ["This field is required."]}
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:protocols_protocol_change", args=[draft.protocol_id])
    assert ProtocolVersion.objects.filter(pk=draft.pk).exists() is False
    event = AuditEvent.objects.get(action="protocol_version.draft_deleted")
    assert (event.subject_id, event.actor, event.reason) == (
        str(draft.pk),
        pharmacist,
        "Started on the wrong protocol.",
    )


def test_history_revert_post_refused(pharmacist):
    draft = _draft("cnh", pharmacist)
    record = draft.history.first()

    response = logged_in(pharmacist).post(
        reverse("admin:protocols_protocolversion_simple_history", args=[draft.pk, record.history_id]),
        {"notes": "reverted"},
    )

    assert response.status_code == 403


# --- Drafts: edits, validation messages, concurrent saves -----------------------------------------


def test_draft_inline_validation_messages(pharmacist):
    draft = _draft("cnh", pharmacist)
    client = logged_in(pharmacist)
    page = client.get(version_change_url(draft.pk))
    data = admin_form_data(page)
    data[step_field(page, "Initial dosing", "amount_low")] = "3"  # above the high amount (2)
    data[step_field(page, "Initial dosing", "max_single_dose_mg")] = "500"  # above 400 mg/day
    data[step_field(page, "Initial dosing", "rounding_increment_mg")] = "100"
    data[step_field(page, "Initial dosing", "rounding_tolerance_percent")] = "40"

    response = client.post(version_change_url(draft.pk), data)

    assert response.status_code == 200
    assert _errors(response) == [
        "amount_low: The low amount (3 mg/kg/dose) is above the high amount (2 mg/kg/dose). "
        "For a single value, give it in both.",
        "max_single_dose_mg: The maximum per dose (500 mg) is above the maximum per day (400 mg).",
        "rounding_tolerance_percent: The rounding tolerance must be above 0% and at most 25% (it is 40%).",
    ]
    step = DosingStep.objects.get(version=draft)
    assert (step.amount_low, step.max_single_dose_mg, step.rounding_tolerance_percent) == (
        Decimal("2.000"),
        Decimal("100.0"),
        None,
    )


def test_draft_missing_interval_message(pharmacist):
    draft = _draft("cnh", pharmacist)
    client = logged_in(pharmacist)
    page = client.get(version_change_url(draft.pk))
    data = admin_form_data(page)
    data[step_field(page, "Initial dosing", "interval_hours")] = ""
    data[step_field(page, "Initial dosing", "max_single_dose_mg")] = ""

    response = client.post(version_change_url(draft.pk), data)

    assert _errors(response) == [
        "interval_hours: A mg/kg/dose amount needs an interval (how many hours between doses)."
    ]
    assert DosingStep.objects.get(version=draft).interval_hours == 6


def test_second_save_of_the_same_draft_is_refused_naming_who_changed_it(pharmacist, second_pharmacist):
    draft = _draft("cnh", pharmacist)
    first, second = logged_in(pharmacist), logged_in(second_pharmacist)
    first_page = first.get(version_change_url(draft.pk))
    second_page = second.get(version_change_url(draft.pk))
    second_data = admin_form_data(second_page)
    second_data[step_field(second_page, "Initial dosing", "max_daily_dose_mg")] = "300"
    assert second.post(version_change_url(draft.pk), second_data).status_code == 302
    first_data = admin_form_data(first_page)
    first_data[step_field(first_page, "Initial dosing", "max_single_dose_mg")] = "80"  # an inline-only edit

    response = first.post(version_change_url(draft.pk), first_data)

    assert response.status_code == 200
    [message] = _errors(response)
    assert message.startswith(f"This version was changed by {second_pharmacist.get_full_name()} at ")
    assert message.endswith(
        "after you opened it. Nothing was saved: reload the page to see the current version, then make your "
        "change again."
    )
    step = DosingStep.objects.get(version=draft)
    assert (step.max_single_dose_mg, step.max_daily_dose_mg) == (Decimal("100.0"), Decimal("300.0"))


def test_admin_edits_record_the_pharmacist_in_history(pharmacist):
    draft = _draft("cnh", pharmacist)
    client = logged_in(pharmacist)
    page = client.get(version_change_url(draft.pk))
    data = admin_form_data(page) | {"notes": "Reviewed."}
    data[step_field(page, "Initial dosing", "max_single_dose_mg")] = "80"

    client.post(version_change_url(draft.pk), data)

    step_record = DosingStep.history.filter(version_id=draft.pk).order_by("-history_date", "-history_id").first()
    version_record = draft.history.order_by("-history_date", "-history_id").first()
    assert (step_record.history_user, step_record.max_single_dose_mg) == (pharmacist, Decimal("80.0"))
    assert (version_record.history_user, version_record.notes) == (pharmacist, "Reviewed.")
    history_page = client.get(reverse("admin:protocols_protocolversion_history", args=[draft.pk]))
    row_entries = [(e.who, e.table, e.row, e.changes) for e in history_page.context["row_history"] if e.changes]
    assert row_entries == [
        (pharmacist.get_full_name(), "Dosing step", "Initial dosing", (("Maximum per dose (mg)", "100", "80"),))
    ]


def test_step_citations_edited_inline(pharmacist):
    draft = _draft("cnh", pharmacist)
    client = logged_in(pharmacist)
    page = client.get(version_change_url(draft.pk))
    data = admin_form_data(page)
    reference = factories.ReferenceFactory(short_label="New trial 2026")
    data[step_field(page, "Initial dosing", "cited_references")] = [str(reference.pk)]

    client.post(version_change_url(draft.pk), data)

    assert [c.reference.short_label for c in DosingStep.objects.get(version=draft).citations.all()] == [
        "New trial 2026"
    ]


# --- Preview, diff, governance display --------------------------------------------------------------


def _draft_with_cap(author, cap: str) -> ProtocolVersion:
    draft = _draft("cnh", author)
    step = draft.steps.get()
    step.max_single_dose_mg = Decimal(cap)
    step.save()
    return draft


def test_draft_page_previews_published_and_draft_answers_side_by_side(pharmacist):
    draft = _draft_with_cap(pharmacist, "80")

    response = logged_in(pharmacist).get(version_change_url(draft.pk))

    rows = {row.label: row for row in response.context["preview_rows"]}
    heavy = rows["60 kg, ICANS grade 4 after tocilizumab and steroids: per-dose cap"]
    changed = [(line.what, line.published, line.draft) for line in heavy.lines if line.changed]
    assert changed == [
        ("Initial dosing: per dose", "100 mg", "80 mg"),
        ("Initial dosing: per day", "400 mg/day", "320 mg/day"),
        (
            "Initial dosing: order",
            "anakinra 100 mg IV every 6 hours (2 mg/kg/dose; max 100 mg/dose, 400 mg/day)",
            "anakinra 80 mg IV every 6 hours (2 mg/kg/dose; max 80 mg/dose, 400 mg/day)",
        ),
    ]
    assert (heavy.draft.passed, heavy.changed) == (False, True)
    light = rows["20 kg, CRS grade 3 after tocilizumab and steroids: below both caps"]
    assert (light.draft.passed, light.changed) == (True, True)  # only the order text names the new cap
    assert '<strong class="gov-changed-mark">(changed)</strong>' in response.content.decode()


def test_diff_page_lists_changed_fields(pharmacist):
    draft = _draft_with_cap(pharmacist, "80")

    response = logged_in(pharmacist).get(reverse("admin:protocols_protocolversion_diff", args=[draft.pk]))

    assert response.status_code == 200
    assert [
        (section.title, row.key, row.state, [(c.label, c.old, c.new) for c in row.changes])
        for section in response.context["sections"]
        for row in section.rows
    ] == [("Dosing steps", "Initial dosing", "changed", [("maximum per dose (mg)", "100", "80")])]


def test_protocol_list_flags_overdue_review(pharmacist, second_pharmacist):
    draft = _draft("cnh", pharmacist)
    draft.next_review = timezone.localdate() - timedelta(days=1)
    draft.save()
    protocol_version_publish(version=draft, approved_by=second_pharmacist)
    client = logged_in(pharmacist)

    response = client.get(reverse("admin:protocols_protocol_changelist"), {"review": "overdue"})

    assert [p.institution.slug for p in response.context["cl"].result_list] == ["cnh"]
    assert f"Review overdue (due {draft.next_review})" in response.content.decode()
    unscheduled = client.get(reverse("admin:protocols_protocol_changelist"), {"review": "unscheduled"})
    assert sorted(p.institution.slug for p in unscheduled.context["cl"].result_list) == [
        "chop",
        "musc",
        "nih",
        "seattle",
        "stjude",
    ]


def test_protocol_page_shows_governance(pharmacist):
    protocol = Protocol.objects.get(institution__slug="stjude")

    response = logged_in(pharmacist).get(reverse("admin:protocols_protocol_change", args=[protocol.pk]))

    governance = response.context["governance"]
    assert (
        governance.version_number,
        governance.authored_by,
        governance.checked_by,
        governance.review_state,
    ) == (
        1,
        "data file loader",
        "Not locally approved: loaded from the reviewed data file (Diorio et al., Blood Adv 2022, Table 1)",
        "not scheduled",
    )
    assert response.context["can_start_draft"] is True
    assert "Start a new draft" in response.content.decode()


def test_first_version_of_a_new_protocol_is_added_as_a_draft(pharmacist):
    protocol = factories.ProtocolFactory()
    client = logged_in(pharmacist)
    add_url = reverse("admin:protocols_protocolversion_add")
    data = admin_form_data(client.get(add_url)) | {
        "protocol": str(protocol.pk),
        "utilization": "CRS.",
        "indications_summary": "After tocilizumab and steroids.",
        "concentration_mg_per_ml": "150",
    }

    response = client.post(add_url, data)

    assert response.status_code == 302
    version = ProtocolVersion.objects.get(protocol=protocol)
    assert (version.number, version.status, version.authored_by) == (1, VersionStatus.DRAFT, pharmacist)


# --- Test patients in the admin ----------------------------------------------------------------------


def test_test_patient_form_errors_shown_on_the_bedside_fields(pharmacist):
    draft = _draft("cnh", pharmacist)
    client = logged_in(pharmacist)
    data = patient_form_data(draft, weight_kg="0.5", age_years="41", crs_grade="", prior_tocilizumab_doses="11")

    response = client.post(reverse("admin:protocols_protocoltestpatient_add"), data)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert {
        field: list(errors[field]) for field in ("weight_kg", "age_years", "crs_grade", "prior_tocilizumab_doses")
    } == {
        "weight_kg": ["Must be from 1 to 150 kg."],
        "age_years": ["Must be from 0 to 40 years."],
        "crs_grade": ["Mark at least one toxicity as present, with a grade."],
        "prior_tocilizumab_doses": ["Must be from 0 to 10."],
    }
    assert draft.test_patients.filter(label="20 kg probe").exists() is False


def test_test_patient_form_stores_the_api_fields_and_reads_them_back(pharmacist):
    draft = _draft("cnh", pharmacist)
    client = logged_in(pharmacist)
    data = patient_form_data(
        draft, weight_kg="20.50", icans_grade="4", fever="no", active_infection="yes", creatinine_clearance_ml_min="25"
    )

    response = client.post(reverse("admin:protocols_protocoltestpatient_add"), data)
    stored = draft.test_patients.get(label="20 kg probe")
    page = client.get(reverse("admin:protocols_protocoltestpatient_change", args=[stored.pk]))

    assert response.status_code == 302
    assert response["Location"] == version_change_url(draft.pk)  # back to the draft the patient belongs to
    assert stored.inputs == {
        "weight_kg": Decimal("20.5"),
        "age_years": 8,
        "toxicities": [{"type": "CRS", "grade": 3}, {"type": "ICANS", "grade": 4}],
        "prior_tocilizumab_doses": 1,
        "prior_steroids": True,
        "fever": False,
        "active_infection": True,
        "creatinine_clearance_ml_min": 25,
    }
    form = page.context["adminform"].form
    assert {name: form[name].value() for name in ("weight_kg", "crs_grade", "icans_grade", "fever", "hypotension")} == {
        "weight_kg": Decimal("20.5"),
        "crs_grade": 3,
        "icans_grade": 4,
        "fever": "no",
        "hypotension": None,  # not recorded
    }


def test_published_test_patient_is_read_only_in_the_admin(pharmacist):
    test_patient = _published("cnh").test_patients.get(label__startswith="20 kg, CRS grade 3 after")
    url = reverse("admin:protocols_protocoltestpatient_change", args=[test_patient.pk])
    client = logged_in(pharmacist)

    page = client.get(url)
    response = client.post(url, patient_form_data(test_patient.version, label="changed"))

    assert page.context["has_change_permission"] is False
    assert "20 kg; 8 years; CRS grade 3" in page.content.decode()
    assert response.status_code == 403
    assert ProtocolTestPatient.objects.get(pk=test_patient.pk).label == test_patient.label


def test_test_patient_list_shows_result_on_its_own_version(pharmacist):
    draft = _draft("stjude", pharmacist)
    failing = draft.test_patients.get(label__startswith="38 kg")
    ProtocolTestPatient.objects.filter(pk=failing.pk).update(expected_per_dose_low_mg=95, expected_per_dose_high_mg=95)

    response = logged_in(pharmacist).get(
        reverse("admin:protocols_protocoltestpatient_changelist"),
        {"version__protocol__id__exact": draft.protocol_id},
    )

    assert sorted(
        (tp.version.number, tp.label, tp.own_outcome.passed) for tp in response.context["cl"].result_list
    ) == [
        (1, "20 kg, carHLH grade 2: not rounded, a vial would double the dose", True),
        (1, "38 kg, carHLH grade 3: rounded to the nearest vial", True),
        (1, "40 kg, carHLH grade 3: 100 mg per dose, already a whole vial", True),
        (2, "20 kg, carHLH grade 2: not rounded, a vial would double the dose", True),
        (2, "38 kg, carHLH grade 3: rounded to the nearest vial", False),
        (2, "40 kg, carHLH grade 3: 100 mg per dose, already a whole vial", True),
    ]


# --- Query counts of the list pages ------------------------------------------------------------------
# Each count includes one query for the header's role ("Signed in as <name> (pharmacist)").


@pytest.mark.parametrize(("search", "count"), [("stjude", 1), ("", 6)])
def test_protocol_changelist_query_count(pharmacist, django_assert_num_queries, search, count):
    client = logged_in(pharmacist)
    url = reverse("admin:protocols_protocol_changelist")

    with django_assert_num_queries(10):
        response = client.get(url, {"q": search} if search else {})

    assert len(response.context["cl"].result_list) == count


@pytest.mark.parametrize(("protocol_filter", "count"), [("cnh", 1), ("", 6)])
def test_version_changelist_query_count(pharmacist, django_assert_num_queries, protocol_filter, count):
    client = logged_in(pharmacist)
    params = (
        {"protocol__id__exact": Protocol.objects.get(institution__slug=protocol_filter).pk} if protocol_filter else {}
    )

    with django_assert_num_queries(9):
        response = client.get(CHANGELIST, params)

    assert len(response.context["cl"].result_list) == count


@pytest.mark.parametrize(("slug", "count"), [("chop", 2), ("stjude", 3)])
def test_test_patient_changelist_query_count(pharmacist, django_assert_num_queries, slug, count):
    client = logged_in(pharmacist)
    protocol = Protocol.objects.get(institution__slug=slug)
    published_protocols()  # the published catalog is cached per process: measure with it loaded

    with django_assert_num_queries(10):
        response = client.get(
            reverse("admin:protocols_protocoltestpatient_changelist"),
            {"version__protocol__id__exact": protocol.pk, "version__status__exact": "published"},
        )

    assert len(response.context["cl"].result_list) == count


def test_comparison_amounts_are_edited_on_a_draft_with_history(pharmacist):
    # The usual per-day cap raised to 500 mg/day on a nih draft: saved with its author in the history.
    draft = _draft("nih", pharmacist)
    client = logged_in(pharmacist)
    page = client.get(version_change_url(draft.pk))
    assert "Cross-center comparison amounts and the product label" in page.content.decode()
    data = admin_form_data(page) | {"usual_daily_cap_mg": "500"}

    client.post(version_change_url(draft.pk), data)

    draft.refresh_from_db()
    record = draft.history.order_by("-history_date", "-history_id").first()
    assert (draft.usual_daily_cap_mg, draft.reported_max_mg_per_kg_per_day) == (Decimal("500.0"), Decimal("10.000"))
    assert (record.history_user, record.usual_daily_cap_mg) == (pharmacist, Decimal("500.0"))
    # Half of the pair given is refused on the field, in words.
    broken = admin_form_data(client.get(version_change_url(draft.pk))) | {"reported_max_mg_per_kg_per_day": ""}
    response = client.post(version_change_url(draft.pk), broken)
    assert response.context["adminform"].form.errors["reported_max_mg_per_kg_per_day"] == [
        "Give all four comparison fields (both amounts and what each is), or none."
    ]
