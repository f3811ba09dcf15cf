"""Concurrent governance steps: every step locks its protocol, then the version (one order, so no
deadlock), and a step overtaken by another pharmacist is refused with a message, never a 500."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from protocols.models import Protocol, ProtocolVersion, VersionStatus
from protocols.services import (
    AlreadyPublished,
    GovernanceError,
    protocol_version_approve,
    protocol_version_draft_create,
    protocol_version_draft_delete,
    protocol_version_publish,
    protocol_version_reject,
    protocol_version_submit,
)
from tests import factories
from tests.admin_helpers import logged_in

pytestmark = pytest.mark.integration

PROTOCOL, VERSION = "protocols_protocol", "protocols_protocolversion"


def _locks(queries) -> list[str]:
    """The tables locked by SELECT ... FOR UPDATE, in order."""
    return [re.search(r'FROM "(\w+)"', q["sql"])[1] for q in queries if "FOR UPDATE" in q["sql"]]


def _draft(author) -> ProtocolVersion:
    return protocol_version_draft_create(protocol=Protocol.objects.get(institution__slug="cnh"), author=author)


def _submitted(author) -> ProtocolVersion:
    draft = _draft(author)
    return protocol_version_submit(version=draft, submitted_by=author, change_reason="Wording.", expected_revision=None)


def _approve(version, user, password=factories.PASSWORD):
    return protocol_version_approve(
        version=version,
        approved_by=user,
        password=password,
        approval_note="Checked.",
        next_review=timezone.localdate() + timedelta(days=365),
        expected_revision=None,
    )


def test_draft_start_locks_the_protocol_first(pharmacist):
    with CaptureQueriesContext(connection) as queries:
        _draft(pharmacist)

    assert _locks(queries) == [PROTOCOL]


def test_submit_reject_and_delete_lock_protocol_then_version(pharmacist, second_pharmacist):
    draft = _draft(pharmacist)
    with CaptureQueriesContext(connection) as submitting:
        protocol_version_submit(version=draft, submitted_by=pharmacist, change_reason="x", expected_revision=None)
    with CaptureQueriesContext(connection) as rejecting:
        protocol_version_reject(version=draft, rejected_by=second_pharmacist, reason="no", expected_revision=None)
    with CaptureQueriesContext(connection) as deleting:
        protocol_version_draft_delete(version=draft, deleted_by=pharmacist, reason="Not needed.")

    assert (_locks(submitting), _locks(rejecting), _locks(deleting)) == ([PROTOCOL, VERSION],) * 3


def test_approve_locks_protocol_then_version_throughout(pharmacist, second_pharmacist):
    submitted = _submitted(pharmacist)

    with CaptureQueriesContext(connection) as queries:
        _approve(submitted, second_pharmacist)

    assert _locks(queries) == [PROTOCOL, VERSION, PROTOCOL, VERSION]  # approve, then its publish


def test_second_draft_start_is_refused_naming_the_first(pharmacist, second_pharmacist):
    first = _draft(pharmacist)

    with pytest.raises(GovernanceError, match=rf"already has .* v{first.number} \(draft\) \(authored by"):
        _draft(second_pharmacist)

    assert ProtocolVersion.objects.filter(protocol=first.protocol, status=VersionStatus.DRAFT).count() == 1


def test_second_draft_start_through_the_admin_shows_the_message(pharmacist, second_pharmacist):
    first = _draft(pharmacist)
    url = reverse("admin:protocols_protocol_start_draft", args=[first.protocol_id])

    response = logged_in(second_pharmacist).post(url, {"reason": "same time"})

    assert response.status_code == 200
    assert "already has" in response.content.decode() and pharmacist.get_full_name() in response.content.decode()
    assert ProtocolVersion.objects.filter(protocol=first.protocol).count() == 2  # v1 and the one draft


def test_publish_of_a_published_version_is_refused_with_a_message(pharmacist, second_pharmacist):
    version = _approve(_submitted(pharmacist), second_pharmacist)

    with pytest.raises(AlreadyPublished, match=rf"v{version.number} \(published\) has already been published"):
        protocol_version_publish(version=version, approved_by=second_pharmacist)
    with pytest.raises(GovernanceError, match="it is published, not submitted"):
        _approve(version, second_pharmacist)

    assert ProtocolVersion.objects.filter(protocol=version.protocol, status=VersionStatus.PUBLISHED).get() == version


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_review_posted_after_another_pharmacist_acted_is_refused_with_a_message(
    pharmacist, second_pharmacist, admin_user, action
):
    submitted = _submitted(pharmacist)
    url = reverse(f"admin:protocols_protocolversion_{action}", args=[submitted.pk])
    client = logged_in(second_pharmacist)
    page = client.get(url)  # loaded while still awaiting approval
    _approve(submitted, admin_user, password="password")  # someone else is faster (pytest-django's admin)

    response = client.post(
        url,
        {
            "revision": page.context["form"].initial["revision"],
            "approval_note": "Checked.",
            "password": factories.PASSWORD,
            "reason": "No.",
            "next_review": (timezone.localdate() + timedelta(days=30)).isoformat(),
        },
        follow=True,
    )

    assert response.status_code == 200
    assert "is published now, no longer awaiting approval" in response.content.decode()
    assert ProtocolVersion.objects.get(pk=submitted.pk).approved_by == admin_user
