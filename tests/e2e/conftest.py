"""Browser tests: Playwright driving Debian's Chromium against Django's live server.

Every page a test opens is watched: any console error, uncaught exception or CSP violation fails
the test. `axe_violations(page)` runs the vendored axe-core. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, Permission

from accounts.roles import ROLE_PERMISSIONS
from protocols.models import CatalogRevision
from protocols.seed import clinical_data_load

ROOT = Path(__file__).resolve().parents[2]
AXE_SOURCE = (Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js").read_text(encoding="utf-8")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
# The live server shares the test database, so browser tests commit; Django empties every table after each one.
e2e_db = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def seeded_database(transactional_db):
    """Each browser test starts from what `migrate` and `load_clinical_data` leave, made again the normal way
    after the previous test's flush: the role groups, the catalog revision row, and the clinical data loaded
    by the loader (its own checks included). Nothing writes into a published version from outside the loader."""
    for role, pairs in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(
            [Permission.objects.get(content_type__app_label=app, codename=codename) for app, codename in pairs]
        )
    CatalogRevision.objects.get_or_create(id=1)
    clinical_data_load()


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
