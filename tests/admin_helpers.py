"""Drive Django admin change forms with the test client: read the form a page shows, as a browser
would post it back unchanged, then change what the test needs."""

from __future__ import annotations

from typing import Any

from django.forms import CheckboxInput
from django.test import Client
from django.urls import reverse


def _form_values(form) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for bound in form:
        value = bound.value()
        if isinstance(bound.field.widget, CheckboxInput):
            if value:
                data[bound.html_name] = "on"
            continue
        if value is None:
            data[bound.html_name] = ""
        elif isinstance(value, list | tuple):
            data[bound.html_name] = [str(v) for v in value]
        else:
            data[bound.html_name] = str(value)
    return data


def admin_form_data(response) -> dict[str, Any]:
    """Everything the change page's form (and its inline formsets) would post unchanged."""
    data = _form_values(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        data |= _form_values(formset.management_form)
        for form in formset.forms:
            data |= _form_values(form)
    data["_continue"] = "Save and continue editing"
    return data


def version_change_url(version_id: int) -> str:
    return reverse("admin:protocols_protocolversion_change", args=[version_id])


def step_field(response, step_name: str, field: str) -> str:
    """The posted name of one field of the step called `step_name` on a version's change page."""
    for inline in response.context["inline_admin_formsets"]:
        for form in inline.formset.forms:
            if form.instance.pk and getattr(form.instance, "name", None) == step_name:
                return form[field].html_name
    raise AssertionError(f"no step named {step_name!r} on the page")


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def patient_form_data(version, **overrides) -> dict[str, Any]:
    """A complete test patient form for `version` (admin add page): a 20 kg CRS grade 3 patient after one
    tocilizumab dose and steroids, expecting only "indicated"; `overrides` replace any posted field."""
    data = {
        "version": str(version.pk),
        "label": "20 kg probe",
        "weight_kg": "20",
        "age_years": "8",
        "car_target": "other",
        "days_since_infusion": "",
        "fever": "",
        "hypotension": "",
        "crs_grade": "3",
        "icans_grade": "",
        "carhlh_grade": "",
        "late_onset_isolated": "",
        "prior_tocilizumab_doses": "1",
        "prior_steroids": "yes",
        "thrombocytopenia_or_coagulopathy": "no",
        "concurrent_tnf_blocker": "no",
        "ecoli_protein_hypersensitivity": "no",
        "active_infection": "no",
        "creatinine_clearance_ml_min": "",
        "expected_status": "indicated",
        "expected_step_name": "",
        "expected_per_dose_low_mg": "",
        "expected_per_dose_high_mg": "",
        "expected_per_day_low_mg": "",
        "expected_per_day_high_mg": "",
        "arithmetic": "",
    }
    return data | {key: str(value) for key, value in overrides.items()}
