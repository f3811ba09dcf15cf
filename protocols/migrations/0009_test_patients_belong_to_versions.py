"""Test patients move from the protocol to its versions (the test patients are part of the reviewed change).

Each test patient goes to its protocol's published version (the newest version when none is published),
and a copy goes into the protocol's draft or submitted version, if any, so that version keeps the patients
it was checked with. History rows point at the version their patient now belongs to. A protocol with no
version at all has nothing to check its test patients against; such patients (if any) are deleted, and
their history rows stay.
"""

import django.db.models.deletion
from django.db import migrations, models

OPEN = ("draft", "submitted")


def versions_assign(apps, schema_editor):
    ProtocolVersion = apps.get_model("protocols", "ProtocolVersion")
    TestPatient = apps.get_model("protocols", "ProtocolTestPatient")
    HistoricalTestPatient = apps.get_model("protocols", "HistoricalProtocolTestPatient")
    home: dict[int, int] = {}
    open_versions: dict[int, list[int]] = {}
    for version in ProtocolVersion.objects.filter(status__in=OPEN).order_by("number"):
        open_versions.setdefault(version.protocol_id, []).append(version.pk)
    for protocol_id in set(ProtocolVersion.objects.values_list("protocol_id", flat=True)):
        versions = ProtocolVersion.objects.filter(protocol_id=protocol_id)
        home[protocol_id] = (versions.filter(status="published").first() or versions.order_by("-number").first()).pk
    for test_patient in TestPatient.objects.order_by("pk"):
        version_id = home.get(test_patient.protocol_id)
        if version_id is None:
            TestPatient.objects.filter(pk=test_patient.pk).delete()
            continue
        TestPatient.objects.filter(pk=test_patient.pk).update(version_id=version_id)
        for open_id in open_versions.get(test_patient.protocol_id, []):
            if open_id == version_id:
                continue
            test_patient.pk = test_patient.id = None
            test_patient.version_id = open_id
            test_patient.save(force_insert=True)
    for protocol_id, version_id in home.items():
        HistoricalTestPatient.objects.filter(protocol_id=protocol_id).update(version_id=version_id)


def versions_unassign(apps, schema_editor):
    TestPatient = apps.get_model("protocols", "ProtocolTestPatient")
    HistoricalTestPatient = apps.get_model("protocols", "HistoricalProtocolTestPatient")
    ProtocolVersion = apps.get_model("protocols", "ProtocolVersion")
    protocol_of = dict(ProtocolVersion.objects.values_list("pk", "protocol_id"))
    kept: set[tuple[int, str]] = set()
    # Back to one patient per protocol and label: the published version's copy wins (it is listed first).
    for test_patient in TestPatient.objects.select_related("version").order_by("-version__status", "pk"):
        key = (protocol_of[test_patient.version_id], test_patient.label)
        if key in kept:
            TestPatient.objects.filter(pk=test_patient.pk).delete()
            continue
        kept.add(key)
        TestPatient.objects.filter(pk=test_patient.pk).update(protocol_id=key[0])
    for version_id, protocol_id in protocol_of.items():
        HistoricalTestPatient.objects.filter(version_id=version_id).update(protocol_id=protocol_id)


class Migration(migrations.Migration):
    dependencies = [("protocols", "0008_row_guard_without_restore_bypass")]

    operations = [
        migrations.AddField(
            model_name="historicalprotocoltestpatient",
            name="version",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="protocols.protocolversion",
            ),
        ),
        migrations.AddField(
            model_name="protocoltestpatient",
            name="version",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="test_patients",
                to="protocols.protocolversion",
            ),
        ),
        migrations.AlterField(
            model_name="protocoltestpatient",
            name="protocol",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="test_patients",
                to="protocols.protocol",
            ),
        ),
        migrations.RemoveConstraint(model_name="protocoltestpatient", name="test_patient_label_unique"),
        migrations.RunPython(versions_assign, versions_unassign),
    ]
