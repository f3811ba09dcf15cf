from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("assessments", "0003_recommendations_lz4")]

    operations = [
        # Answers stored before this field existed were computed under the engine's clinical rules revision 1
        # (engine.revisions); every new one records the revision it was computed under.
        migrations.AddField(
            model_name="assessment",
            name="rules_revision",
            field=models.PositiveSmallIntegerField(default=1),
            preserve_default=False,
        ),
    ]
