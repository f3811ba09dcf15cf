"""Who reaches what: every URL in the URLconf, for anonymous users, clinicians, pharmacists and
superusers.

The URLs are enumerated from the URLconf, not listed by hand, so a page added later (bedside or
admin) is checked without touching this file: a bedside page must send anonymous users to log in
and serve every signed-in role; an API endpoint must answer anonymous callers 401; an admin page
must follow the per-model rights below. Only the allow-list is public. A URL with a parameter this
file has no sample for fails with a message saying so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.services import api_token_create
from audit.services import audit_record
from cds_hooks.catalog import SERVICES
from evidence.models import Reference, Study
from protocols.models import Institution, Protocol, ProtocolTestPatient, ProtocolVersion, VersionStatus
from protocols.services import protocol_version_draft_create, protocol_version_submit
from tests import factories

pytestmark = pytest.mark.integration

ROLES = ("anonymous", "clinician", "pharmacist", "superuser")

# Outcomes, by what the response means rather than its exact bytes.
OK, LOGIN, REDIRECT, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, METHOD = (
    "ok",
    "to login",
    "redirect",
    "401",
    "403",
    "404",
    "405",
)

# The public allow-list: everyone reaches these (logout only by POST).
PUBLIC = {
    "login": {role: OK for role in ROLES},
    "logout": {role: METHOD for role in ROLES},
    "api_openapi": {role: OK for role in ROLES},
    "api_not_found": {role: NOT_FOUND for role in ROLES},  # any other path under /api/v1/: a JSON 404
    "cds_not_found": {role: NOT_FOUND for role in ROLES},  # any other path under /cds-services: a JSON 404
    "healthz": {role: OK for role in ROLES},
    "readyz": {role: OK for role in ROLES},
    "admin:login": {"anonymous": OK, "clinician": OK, "pharmacist": REDIRECT, "superuser": REDIRECT},
    # Non-staff visitors are sent to the admin index (and from there to log in); logout is POST only.
    "admin:logout": {"anonymous": REDIRECT, "clinician": REDIRECT, "pharmacist": METHOD, "superuser": METHOD},
}

# SMART launch pages: public (the launch signs the user in); without their parameters, a launch or a callback
# is refused with a page saying why, and the standalone launch lists the registered EHRs.
# Reading the EHR again is a signed-in POST.
SMART_PAGES = {
    "smart_launch": {role: "400" for role in ROLES},
    "smart_standalone": {role: OK for role in ROLES},
    "smart_callback": {role: "400" for role in ROLES},
    "smart_reread": {"anonymous": LOGIN, "clinician": METHOD, "pharmacist": METHOD, "superuser": METHOD},
}

# Bedside pages that do something other than show a page to a signed-in user.
BEDSIDE_SIGNED_IN = {
    "wizard_start": OK,  # GET shows what the link carries; only its POST button fills the wizard
    "wizard_reset": OK,  # GET asks for confirmation; only its POST button clears the answers
    "wizard_step": REDIRECT,  # a later step, with the earlier ones unanswered, goes back to the first of them
    "wizard_change_answers": METHOD,  # the result page's Change answers: a POST only (it fills the wizard)
}

# Bedside-styled pages for pharmacists only (a draft shown as the bedside would show it).
BEDSIDE_STAFF_ONLY = {"protocol_version_preview"}

ALL = frozenset({"view", "add", "change", "delete"})
# What each staff role may do per admin model. Clinicians are not staff: no admin page at all.
RIGHTS = {
    "auth.group": {"pharmacist": set(), "superuser": ALL},
    "auth.user": {"pharmacist": set(), "superuser": ALL},
    "accounts.apitoken": {"pharmacist": set(), "superuser": {"view", "change", "delete"}},
    "audit.auditevent": {"pharmacist": {"view"}, "superuser": {"view"}},
    "evidence.reference": {"pharmacist": {"view", "add"}, "superuser": ALL},
    "evidence.study": {"pharmacist": {"view"}, "superuser": ALL},
    "protocols.institution": {"pharmacist": {"view", "add"}, "superuser": ALL},
    "protocols.protocol": {"pharmacist": {"view", "add", "start_draft"}, "superuser": ALL | {"start_draft"}},
    "protocols.protocoltestpatient": {"pharmacist": ALL, "superuser": ALL},
    "protocols.protocolversion": {"pharmacist": ALL | {"approve"}, "superuser": ALL | {"approve"}},
    "smart.ehruserlink": {"pharmacist": set(), "superuser": {"view", "delete"}},
}

# An admin page (by URL-name suffix) and the right it needs; versions also need a state.
PAGE_NEEDS = {
    "changelist": "view",
    "add": "add",
    "change": "view",
    "history": "view",
    "simple_history": "view",
    "delete": "delete",
    "password_change": "change",
    "start_draft": "start_draft",
    "diff": "view",
    "change_record": "view",
    "submit": "change",
    "approve": "approve",
    "reject": "approve",
}
VERSION_STATE_NEEDED = {
    "delete": VersionStatus.DRAFT,
    "submit": VersionStatus.DRAFT,
    "approve": VersionStatus.SUBMITTED,
    "reject": VersionStatus.SUBMITTED,
}

TEST_PATIENT_STATE_NEEDED = {"delete": VersionStatus.DRAFT}


@dataclass(frozen=True)
class Page:
    url: str
    kind: str  # public, admin-site, admin-model, api, bedside
    key: str  # URL name, or the model label for model pages
    suffix: str = ""
    state: str = ""
    method: str = "get"


def _walk(patterns, route: str = "", namespace: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _walk(pattern.url_patterns, route + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            yield route + str(pattern.pattern), (f"{namespace}{pattern.name}" if pattern.name else None), pattern


def _parameters(pattern: URLPattern) -> list[str]:
    converters = getattr(pattern.pattern, "converters", None)
    if converters is not None:
        return list(converters)
    return list(pattern.pattern.regex.groupindex)


class Samples:
    """Real objects to put in URLs: one per admin model, versions in three states."""

    def __init__(self) -> None:
        author = factories.UserFactory(username="matrix-author", role="pharmacist")
        self.versions = {
            VersionStatus.PUBLISHED: ProtocolVersion.objects.get(
                protocol__institution__slug="cnh", status=VersionStatus.PUBLISHED
            ),
            VersionStatus.DRAFT: protocol_version_draft_create(
                protocol=Protocol.objects.get(institution__slug="nih"), author=author
            ),
        }
        submitted = protocol_version_draft_create(
            protocol=Protocol.objects.get(institution__slug="musc"), author=author
        )
        self.versions[VersionStatus.SUBMITTED] = protocol_version_submit(
            version=submitted, submitted_by=author, change_reason="matrix", expected_revision=None
        )
        token, _ = api_token_create(user=author, name="matrix")
        self.objects = {
            "auth.user": author,
            "auth.group": Group.objects.get(name="clinician"),
            "accounts.apitoken": token,
            "audit.auditevent": audit_record(action="matrix", subject_type="x", subject_id=1, actor=author),
            "evidence.reference": Reference.objects.get(key="diorio-2022"),
            "evidence.study": Study.objects.order_by("table_order").first(),
            "protocols.institution": Institution.objects.get(slug="cnh"),
            "protocols.protocol": Protocol.objects.get(institution__slug="cnh"),
            "smart.ehruserlink": factories.EhrUserLinkFactory(),
        }
        # Test patients belong to a version: deleted only from a draft (its change page is read-only once published).
        self.test_patients = {
            state: ProtocolTestPatient.objects.filter(version=version).order_by("pk").first()
            for state, version in self.versions.items()
            if state in (VersionStatus.DRAFT, VersionStatus.PUBLISHED)
        }
        self.assessment = factories.AssessmentFactory(created_by=author)

    def objects_for(self, label: str) -> list[tuple[str, object]]:
        if label == "protocols.protocolversion":
            return [(str(state), version) for state, version in self.versions.items()]
        if label == "protocols.protocoltestpatient":
            return [(str(state), test_patient) for state, test_patient in self.test_patients.items()]
        return [("", self.objects[label])]

    def bedside_value(self, parameter: str, url_name: str):
        if (url_name, parameter) == ("wizard_step", "slug"):
            return "treatment"  # the first step lives at / (its own path redirects there)
        values = {
            "assessment_id": self.assessment.pk,
            "slug": "cnh",
            "institution_slug": "cnh",
            "institution": "cnh",
            "service_id": next(iter(SERVICES)),
            "version_id": self.versions[VersionStatus.PUBLISHED].pk,  # cnh's, like "slug"
        }
        if parameter not in values:
            pytest.fail(f"No sample value for <{parameter}> in URL {url_name!r}: add one to Samples.bedside_value.")
        return values[parameter]


def _model_label(route: str) -> str | None:
    match = re.match(r"admin/(\w+)/(\w+)/", route)
    if not match:
        return None
    label = f"{match[1]}.{match[2]}"
    registered = {m._meta.label_lower for m in admin.site._registry}
    return label if label in registered else None


def _admin_model_pages(route, name, pattern, label, samples: Samples) -> list[Page]:
    app_label, model_name = label.split(".")
    suffix = name.removeprefix(f"admin:{app_label}_{model_name}_") if name else "redirect"
    parameters = _parameters(pattern)
    if not parameters and not pattern.pattern.regex.groups:
        return [Page(reverse(name), "admin-model", label, suffix)]
    pages = []
    for state, obj in samples.objects_for(label):
        if suffix == "simple_history":
            record = type(obj).history.filter(id=obj.pk).order_by("history_id").first()
            url = reverse(name, args=[obj.pk, record.history_id])
        elif name is None:  # the old "<id>/" change URL, now a redirect
            url = "/" + route.replace("<path:object_id>", str(obj.pk))
        else:
            url = reverse(name, kwargs={parameters[0]: obj.pk})
        pages.append(Page(url, "admin-model", label, suffix, state))
    return pages


def _admin_site_pages(route, name, pattern, samples: Samples) -> list[Page]:
    if name is None:  # the catch-all
        return [Page("/admin/no-such-page/", "admin-site", "catch_all")]
    if name == "admin:app_list":
        labels = sorted({m._meta.app_label for m in admin.site._registry})
        return [Page(reverse(name, kwargs={"app_label": a}), "admin-site", f"app_list:{a}") for a in labels]
    if name == "admin:view_on_site":
        institution = samples.objects["protocols.institution"]
        content_type = ContentType.objects.get_for_model(Institution)
        return [Page(reverse(name, args=[content_type.pk, institution.pk]), "admin-site", name)]
    return [Page(reverse(name), "admin-site", name)]


def pages(samples: Samples) -> list[Page]:
    found: list[Page] = []
    for route, name, pattern in _walk(get_resolver().url_patterns):
        if name in PUBLIC:
            found.append(Page(reverse(name), "public", name))
        elif route.startswith("admin/"):
            label = _model_label(route)
            if label:
                found += _admin_model_pages(route, name, pattern, label, samples)
            else:
                found += _admin_site_pages(route, name, pattern, samples)
        else:
            kwargs = {p: samples.bedside_value(p, name or route) for p in _parameters(pattern)}
            url = reverse(name, kwargs=kwargs) if name else "/" + route
            if route.startswith("cds-services"):
                # EHR endpoints: a signed JWT or nothing; a browser session is no credential here.
                method = "get" if name == "cds_discovery" else "post"
                found.append(Page(url, "cds", name, method=method))
            elif route.startswith("smart/"):
                found.append(Page(url, "smart", name))
            elif route.startswith("api/"):
                method = "post" if name == "api_recommendations" else "get"
                found.append(Page(url, "api", name or route, method=method))
            else:
                found.append(Page(url, "bedside", name or route))
    return found


def expected(page: Page, role: str) -> str:
    if page.kind == "public":
        return PUBLIC[page.key][role]
    if page.kind == "cds":
        return UNAUTHORIZED
    if page.kind == "smart":
        return SMART_PAGES[page.key][role]
    if page.kind == "api":
        if role == "anonymous":
            return UNAUTHORIZED
        return "400" if page.method == "post" else OK  # an empty POST body is a validation error
    if page.kind == "bedside":
        if role == "anonymous":
            return LOGIN
        if page.key in BEDSIDE_STAFF_ONLY:
            return OK if role in ("pharmacist", "superuser") else FORBIDDEN
        return BEDSIDE_SIGNED_IN.get(page.key, OK)
    if role in ("anonymous", "clinician"):
        return LOGIN  # the admin is for staff only
    if page.kind == "admin-site":
        return _expected_admin_site(page, role)
    if page.suffix == "redirect":
        return REDIRECT
    rights = RIGHTS[page.key][role]
    allowed = PAGE_NEEDS[page.suffix] in rights
    state_needed = (
        VERSION_STATE_NEEDED.get(page.suffix)
        if page.key == "protocols.protocolversion"
        else TEST_PATIENT_STATE_NEEDED.get(page.suffix)
        if page.key == "protocols.protocoltestpatient"
        else None
    )
    if state_needed and page.state != state_needed:
        allowed = False
    return OK if allowed else FORBIDDEN


def _expected_admin_site(page: Page, role: str) -> str:
    if page.key.startswith("app_list:"):
        app = page.key.split(":")[1]
        visible = any(label.startswith(f"{app}.") and RIGHTS[label][role] for label in RIGHTS)
        return OK if visible else NOT_FOUND
    return {
        "admin:index": OK,
        "admin:password_change": OK,
        "admin:password_change_done": OK,
        "admin:jsi18n": OK,
        "admin:autocomplete": FORBIDDEN,  # no field asked for
        "admin:view_on_site": NOT_FOUND,  # no model here has a public page
        "catch_all": NOT_FOUND,
    }[page.key]


def outcome(response) -> str:
    if response.status_code in (301, 302):
        location = response["Location"]
        login_urls = (reverse("admin:login"), reverse(settings.LOGIN_URL))
        return LOGIN if location.split("?")[0] in login_urls else REDIRECT
    if 200 <= response.status_code < 300:
        return OK
    return str(response.status_code)


@pytest.fixture
def clients(clinician, pharmacist, admin_user) -> dict[str, Client]:
    made = {"anonymous": Client()}
    for role, user in (("clinician", clinician), ("pharmacist", pharmacist), ("superuser", admin_user)):
        made[role] = Client()
        made[role].force_login(user)
    return made


def test_every_url_answers_each_role_as_expected(clients):
    samples = Samples()
    all_pages = pages(samples)
    actual, wanted = {}, {}

    for page in all_pages:
        for role, client in clients.items():
            if page.method == "post":
                response = client.post(page.url, data="{}", content_type="application/json")
            else:
                response = client.get(page.url)
            actual[(page.url, role)] = outcome(response)
            wanted[(page.url, role)] = expected(page, role)

    mismatches = {key: (actual[key], wanted[key]) for key in actual if actual[key] != wanted[key]}
    assert mismatches == {}
    # The enumeration really covered the admin and the bedside (not an empty loop).
    kinds = {page.kind for page in all_pages}
    assert kinds == {"public", "admin-site", "admin-model", "api", "bedside", "cds", "smart"}
    assert len({page.key for page in all_pages if page.kind == "admin-model"}) == len(RIGHTS)


def test_static_files_are_public():
    response = Client().get("/static/css/app.css")

    assert response.status_code == 200


# --- What the groups themselves grant -------------------------------------------------------------


def _admin_permissions() -> set[str]:
    """Every model permission the admin could act on: registered models and their history tables."""
    codenames = set()
    for model in admin.site._registry:
        models_ = [model] + ([model.history.model] if hasattr(model, "history") else [])
        for each in models_:
            opts = each._meta
            codenames |= {f"{opts.app_label}.{action}_{opts.model_name}" for action in ALL}
            codenames |= {f"{opts.app_label}.{codename}" for codename, _ in opts.permissions}
    return codenames


def test_clinician_holds_no_admin_permission_and_is_not_staff(clinician):
    held = {p for p in _admin_permissions() if clinician.has_perm(p)}

    assert (held, clinician.is_staff) == (set(), False)
    assert clinician.get_all_permissions() == {"assessments.add_assessment", "assessments.view_assessment"}


def test_pharmacist_cannot_delete_audit_or_history_nor_manage_accounts(pharmacist):
    forbidden = {
        "audit.add_auditevent",
        "audit.change_auditevent",
        "audit.delete_auditevent",
        *(f"auth.{action}_{model}" for action in ALL for model in ("user", "group", "permission")),
        *(
            f"{m.history.model._meta.app_label}.{action}_{m.history.model._meta.model_name}"
            for m in admin.site._registry
            if hasattr(m, "history")
            for action in ("add", "change", "delete")
        ),
        "accounts.view_apitoken",
        "accounts.delete_apitoken",
    }

    assert {p for p in forbidden if pharmacist.has_perm(p)} == set()


def test_pharmacist_posts_to_delete_published_version_or_audit_event_are_refused(pharmacist):
    published = ProtocolVersion.objects.get(protocol__institution__slug="cnh", status=VersionStatus.PUBLISHED)
    event = audit_record(action="matrix", subject_type="x", subject_id=1, actor=pharmacist)
    client = Client()
    client.force_login(pharmacist)

    version_answer = client.post(
        reverse("admin:protocols_protocolversion_delete", args=[published.pk]), {"post": "yes"}
    )
    event_answer = client.post(reverse("admin:audit_auditevent_delete", args=[event.pk]), {"post": "yes"})
    group_answer = client.post(reverse("admin:auth_group_delete", args=[Group.objects.get(name="clinician").pk]))

    assert (version_answer.status_code, event_answer.status_code, group_answer.status_code) == (403, 403, 403)
    assert ProtocolVersion.objects.filter(pk=published.pk, status=VersionStatus.PUBLISHED).exists()
    assert type(event).objects.filter(pk=event.pk).exists()


def test_roles_migration_takes_staff_from_clinicians_only(db, pharmacist):
    from importlib import import_module

    from django.apps import apps

    migration = import_module("accounts.migrations.0005_clinicians_hold_no_admin_permission")
    staff_clinician = factories.UserFactory(username="staff-clinician", role="clinician", is_staff=True)
    both = factories.UserFactory(username="both-roles", role="clinician", is_staff=True)
    both.groups.add(Group.objects.get(name="pharmacist"))

    migration.clinicians_narrow(apps, None)

    staff = {u.username: u.is_staff for u in type(pharmacist).objects.filter(pk__in=[staff_clinician.pk, both.pk])}
    assert staff == {"staff-clinician": False, "both-roles": True}
    assert pharmacist.__class__.objects.get(pk=pharmacist.pk).is_staff is True
