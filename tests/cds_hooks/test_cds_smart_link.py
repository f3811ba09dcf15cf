"""CDS Hooks cards link with `type: smart` when the EHR has a SMART registration: the EHR launches the app on
its patient, and the card's `appContext` (the drafted order) reaches the app through the launch."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.test import Client

from tests.cds_hooks_rules import only_card
from tests.ehr_support import ISSUER, ORDER_SELECT_PATH, allergy_bundle, anakinra_draft, full_prefetch, hook_body
from tests.smart_ehr import start_ehr
from tests.smart_support import CLIENT_ID, authorize, ehr_context, path_and_query, patient_record, registration

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

SMART_LABEL = "Open Anakinra CDS on this patient (enter toxicity and grade there)"
SMART = {
    "client_id": "anakinra-cds",
    "client_type": "public",
    "fhir_servers": ["https://ehr.example.org/fhir/r4"],
    "user_mapping": "create",
}


@pytest.fixture
def smart_registered(ehr, settings):
    settings.CDS_HOOKS_ISSUERS = {ISSUER: {**settings.CDS_HOOKS_ISSUERS[ISSUER], "smart": SMART}}
    return ehr


def test_card_of_an_ehr_with_a_smart_registration_launches_the_app_with_the_draft(smart_registered):
    card = only_card(smart_registered.post(ORDER_SELECT_PATH, hook_body(prefetch=full_prefetch())))

    assert card["links"] == [
        {
            "label": SMART_LABEL,
            "url": "http://testserver/smart/launch",
            "type": "smart",
            "appContext": '{"draftOrder":{"text":"anakinra 100 mg IV every 6 hours","id":"draft-anakinra-1"}}',
        }
    ]


def test_contraindication_card_launches_the_app_without_app_context(smart_registered):
    prefetch = {**full_prefetch(), "allergies": allergy_bundle("anakinra")}

    card = only_card(smart_registered.post(ORDER_SELECT_PATH, hook_body(prefetch=prefetch)))

    assert (card["indicator"], card["links"]) == (
        "critical",
        [{"label": SMART_LABEL, "url": "http://testserver/smart/launch", "type": "smart"}],
    )


def test_card_app_context_reaches_the_wizard_through_the_ehr_launch(smart_registered, settings):
    # The EHR signs the hook call, takes the card's smart link and launches the app with its appContext.
    card = only_card(
        smart_registered.post(ORDER_SELECT_PATH, hook_body(anakinra_draft(Decimal("40")), prefetch=full_prefetch()))
    )
    (link,) = card["links"]
    test_ehr, httpd = start_ehr()
    try:
        test_ehr.patient_add(patient_record())
        test_ehr.client_add(CLIENT_ID, "http://testserver/smart/callback")
        settings.CDS_HOOKS_ISSUERS = registration(test_ehr)
        launch = test_ehr.launch_create(ehr_context(app_context=link["appContext"]))
        browser = Client()
        started = browser.get(
            link["url"].removeprefix("http://testserver"), {"iss": test_ehr.fhir_base, "launch": launch}
        )
        browser.get(path_and_query(authorize(started["Location"])))
        page = browser.get("/").content.decode()
    finally:
        httpd.shutdown()
        httpd.server_close()

    assert json.loads(link["appContext"]) == {
        "draftOrder": {"text": "anakinra 40 mg IV every 6 hours", "id": "draft-anakinra-1"}
    }
    assert "Order drafted in the EHR: <strong>anakinra 40 mg IV every 6 hours</strong>" in page
