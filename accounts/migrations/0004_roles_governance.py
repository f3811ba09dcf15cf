"""Refine the roles for protocol governance: step citations, test patients, audit events,
adding institutions, protocols and references. A frozen copy of accounts.roles at this point."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROWS = ("protocolversion", "indicationrule", "dosingstep", "protocolcitation", "stepcitation")

ROLE_PERMISSIONS = {
    "clinician": [
        ("protocols", "view_institution"),
        ("protocols", "view_protocol"),
        *(("protocols", f"view_{model}") for model in ROWS),
        ("evidence", "view_reference"),
        ("evidence", "view_study"),
        ("assessments", "add_assessment"),
        ("assessments", "view_assessment"),
    ],
    "pharmacist": [
        ("protocols", "view_institution"),
        ("protocols", "add_institution"),
        ("protocols", "view_protocol"),
        ("protocols", "add_protocol"),
        *(("protocols", f"{action}_{model}") for model in ROWS for action in ("view", "add", "change", "delete")),
        ("protocols", "approve_protocolversion"),
        *(("protocols", f"{action}_protocoltestpatient") for action in ("view", "add", "change", "delete")),
        ("evidence", "view_reference"),
        ("evidence", "add_reference"),
        ("evidence", "view_study"),
        ("assessments", "add_assessment"),
        ("assessments", "view_assessment"),
        ("audit", "view_auditevent"),
    ],
}


def roles_refine(apps, schema_editor):
    # Permissions of models made since 0002 do not exist until post_migrate; make them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, pairs in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(
            [Permission.objects.get(content_type__app_label=app, codename=codename) for app, codename in pairs]
        )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_login_failure"),
        ("accounts", "0002_roles"),
        ("protocols", "0002_governance_drafts_test_patients"),
        ("audit", "0001_initial"),
    ]

    # Going back leaves the refined groups in place: 0002's reverse removes the groups entirely.
    operations = [migrations.RunPython(roles_refine, migrations.RunPython.noop)]
