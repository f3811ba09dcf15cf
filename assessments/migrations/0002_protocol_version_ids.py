"""The versions an assessment used move from a through table to a list on the assessment row
(one INSERT per assessment). Existing rows keep their versions: they are copied before the table goes."""

from django.db import migrations, models


def versions_copy(apps, schema_editor):
    Assessment = apps.get_model("assessments", "Assessment")
    Link = apps.get_model("assessments", "AssessmentProtocolVersion")
    used: dict = {}
    for assessment_id, version_id in Link.objects.order_by("version_id").values_list("assessment_id", "version_id"):
        used.setdefault(assessment_id, []).append(version_id)
    for assessment_id, version_ids in used.items():
        Assessment.objects.filter(pk=assessment_id).update(protocol_version_ids=version_ids)


def versions_restore(apps, schema_editor):
    Assessment = apps.get_model("assessments", "Assessment")
    Link = apps.get_model("assessments", "AssessmentProtocolVersion")
    Link.objects.bulk_create(
        Link(assessment_id=pk, version_id=version_id)
        for pk, ids in Assessment.objects.values_list("pk", "protocol_version_ids")
        for version_id in ids
    )


class Migration(migrations.Migration):
    dependencies = [
        ("assessments", "0001_initial"),
        ("protocols", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="assessment",
            name="protocol_version_ids",
            field=models.JSONField(default=list),
        ),
        migrations.RunPython(versions_copy, versions_restore),
        migrations.RemoveConstraint(
            model_name="assessmentprotocolversion",
            name="assessment_version_once",
        ),
        migrations.RemoveField(
            model_name="assessment",
            name="protocol_versions",
        ),
        migrations.DeleteModel(
            name="AssessmentProtocolVersion",
        ),
    ]
