"""Fixtures for the SMART launch tests: the test EHR (authorization server and FHIR endpoint, on authlib)
on a port of its own, holding one patient, and this app registered with it."""

from __future__ import annotations

import pytest

from tests.smart_ehr import start_ehr
from tests.smart_support import CLIENT_ID, patient_record, registration

CALLBACK = "http://testserver/smart/callback"


@pytest.fixture
def smart_ehr(settings):
    ehr, httpd = start_ehr()
    ehr.patient_add(patient_record())
    ehr.client_add(CLIENT_ID, CALLBACK)
    settings.SITE_URL = ""
    settings.CDS_HOOKS_ISSUERS = registration(ehr)
    yield ehr
    httpd.shutdown()
    httpd.server_close()
