"""Browser tests: Playwright driving Debian's Chromium against Django's live server.

Every page a test opens is watched: any console error, uncaught exception or CSP violation fails
the test. `axe_violations(page)` runs the vendored axe-core. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.db import connections, transaction

ROOT = Path(__file__).resolve().parents[2]
AXE_SOURCE = (Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js").read_text(encoding="utf-8")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
# The live server shares the test database; seed data and groups are restored for each test.
e2e_db = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    # The root conftest has loaded the clinical data; serialize it so that each transactional
    # (browser) test starts from it again after the previous test's flush.
    # pytest-django has already serialized the database as it was before the seed was loaded, onto this
    # connection object; replace that copy, and put the seeded one on the connection class too, because
    # Playwright's event loop gives browser tests a different connection object than this fixture sees.
    with django_db_blocker.unblock():
        connection = connections["default"]
        seeded = connection.creation.serialize_db_to_string()
        connection._test_serialized_contents = seeded
        type(connection)._test_serialized_contents = seeded


@pytest.fixture(scope="session", autouse=True)
def restore_may_refill_published_versions():
    """The restore re-inserts the seeded published versions' rows, which the database refuses for
    anyone else (protocols migration 0007): lift that for the restoring transaction only."""
    creation_class = type(connections["default"].creation)
    original = creation_class.deserialize_db_from_string

    def deserialize_db_from_string(self, data):
        with transaction.atomic(using=self.connection.alias):
            with self.connection.cursor() as cursor:
                cursor.execute("SET LOCAL protocols.restore = 'on'")
            original(self, data)

    creation_class.deserialize_db_from_string = deserialize_db_from_string
    yield
    creation_class.deserialize_db_from_string = original


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install chromium`; .ci/run does).")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture
def browser_errors(page):
    """Console errors, page errors and CSP violations seen during the test; must end empty."""
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => "
        "console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));"
    )
    yield errors
    assert errors == [], "The browser reported errors:\n" + "\n".join(errors)


@pytest.fixture
def watched_page(page, browser_errors):
    return page


def login(page, live_server, *, username: str, password: str = "a-long-test-password") -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def axe_violations(page, *, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict]:
    """axe-core violations of the given impacts on the current page (evaluated over DevTools, not subject to CSP)."""
    page.evaluate(AXE_SOURCE)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
        if v["impact"] in impacts
    ]


def screenshot(page, request, name: str) -> Path:
    ARTIFACTS.joinpath("screenshots").mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{request.node.name}-{name}")
    path = ARTIFACTS / "screenshots" / f"{safe}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
