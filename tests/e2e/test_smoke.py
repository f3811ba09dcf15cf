import pytest

from tests.e2e.conftest import axe_violations, e2e_db, login, screenshot
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, e2e_db]


def test_login_page_accessible_without_browser_errors(watched_page, live_server, request):
    watched_page.goto(f"{live_server.url}/accounts/login/")
    screenshot(watched_page, request, "login")
    assert axe_violations(watched_page) == []


def test_login_reaches_home_with_seed_data_present(watched_page, live_server):
    from protocols.models import ProtocolVersion

    UserFactory(username="e2e-clin", role="clinician")
    login(watched_page, live_server, username="e2e-clin")
    assert watched_page.url == f"{live_server.url}/"
    assert ProtocolVersion.objects.filter(status="published").count() == 6
