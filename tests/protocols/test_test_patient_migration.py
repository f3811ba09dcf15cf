"""Migrations 0009-0010 move test patients from the protocol onto its versions (existing databases)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.integration

BEFORE = [("protocols", "0008_row_guard_without_restore_bypass")]
AFTER = [("protocols", "0010_test_patients_frozen_with_their_version")]


def _migrate(targets):
    # Each migration commits on its own in a deployment; inside the test's one transaction, check foreign
    # keys at once so that no deferred check is pending when the next migration alters the table.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_test_patients_move_to_the_published_version_and_into_an_open_draft(db):
    apps = _migrate(BEFORE)
    Version = apps.get_model("protocols", "ProtocolVersion")
    TestPatient = apps.get_model("protocols", "ProtocolTestPatient")
    cnh = Version.objects.get(protocol__institution__slug="cnh", status="published")
    draft = Version.objects.create(
        protocol_id=cnh.protocol_id, number=2, status="draft", utilization="x", indications_summary="y"
    )
    labels = sorted(TestPatient.objects.filter(protocol_id=cnh.protocol_id).values_list("label", flat=True))

    apps = _migrate(AFTER)

    TestPatient = apps.get_model("protocols", "ProtocolTestPatient")
    on = {
        version_id: sorted(TestPatient.objects.filter(version_id=version_id).values_list("label", flat=True))
        for version_id in (cnh.pk, draft.pk)
    }
    assert len(labels) == 4  # cnh's four seeded test patients
    assert on == {cnh.pk: labels, draft.pk: labels}
    assert TestPatient.objects.count() == 18 + 4
