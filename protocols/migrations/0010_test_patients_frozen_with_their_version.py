"""Every test patient belongs to a version, and a published version's test patients are frozen like its steps:
the row guard of 0003/0007/0008 refuses UPDATE, DELETE and INSERT on them (PostgreSQL), whatever the path."""

import django.db.models.deletion
from django.db import migrations, models

TABLE = "protocols_protocoltestpatient"


def triggers_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE TRIGGER {TABLE}_frozen_guard BEFORE UPDATE OR DELETE ON {TABLE} "
        "FOR EACH ROW EXECUTE FUNCTION protocols_version_row_guard()"
    )
    schema_editor.execute(
        f"CREATE TRIGGER {TABLE}_insert_guard BEFORE INSERT ON {TABLE} "
        "FOR EACH ROW EXECUTE FUNCTION protocols_version_row_guard()"
    )


def triggers_drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_insert_guard ON {TABLE}")
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_frozen_guard ON {TABLE}")


class Migration(migrations.Migration):
    dependencies = [("protocols", "0009_test_patients_belong_to_versions")]

    operations = [
        migrations.RemoveField(model_name="historicalprotocoltestpatient", name="protocol"),
        migrations.RemoveField(model_name="protocoltestpatient", name="protocol"),
        migrations.AlterField(
            model_name="protocoltestpatient",
            name="version",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="test_patients",
                to="protocols.protocolversion",
            ),
        ),
        migrations.AlterModelOptions(name="protocoltestpatient", options={"ordering": ["label", "id"]}),
        migrations.AddConstraint(
            model_name="protocoltestpatient",
            constraint=models.UniqueConstraint(
                fields=("version", "label"), name="test_patient_label_unique_in_version"
            ),
        ),
        migrations.RunPython(triggers_create, triggers_drop),
    ]
