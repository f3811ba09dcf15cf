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
