"""Create the clinician and pharmacist groups with their permissions."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

# Frozen copy of the roles as this migration made them (accounts.roles has moved on since: 0004).
ROLE_PERMISSIONS = {
    "clinician": [
        ("protocols", "view_institution"),
        ("protocols", "view_protocol"),
        ("protocols", "view_protocolversion"),
        ("protocols", "view_indicationrule"),
        ("protocols", "view_dosingstep"),
        ("protocols", "view_protocolcitation"),
        ("evidence", "view_reference"),
        ("evidence", "view_study"),
        ("assessments", "add_assessment"),
        ("assessments", "view_assessment"),
    ],
    "pharmacist": [
        ("protocols", "view_institution"),
        ("protocols", "view_protocol"),
        ("protocols", "view_protocolversion"),
        ("protocols", "add_protocolversion"),
        ("protocols", "change_protocolversion"),
        ("protocols", "delete_protocolversion"),
        ("protocols", "approve_protocolversion"),
        ("protocols", "view_indicationrule"),
        ("protocols", "add_indicationrule"),
        ("protocols", "change_indicationrule"),
        ("protocols", "delete_indicationrule"),
        ("protocols", "view_dosingstep"),
        ("protocols", "add_dosingstep"),
        ("protocols", "change_dosingstep"),
        ("protocols", "delete_dosingstep"),
        ("protocols", "view_protocolcitation"),
        ("protocols", "add_protocolcitation"),
        ("protocols", "change_protocolcitation"),
        ("protocols", "delete_protocolcitation"),
        ("evidence", "view_reference"),
        ("evidence", "view_study"),
        ("assessments", "add_assessment"),
        ("assessments", "view_assessment"),
    ],
}


def roles_create(apps, schema_editor):
    # Permissions are normally made after migrate; make them now so the groups can hold them.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, pairs in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        permissions = [
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
            for app_label, codename in pairs
        ]
        group.permissions.set(permissions)


def roles_delete(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLE_PERMISSIONS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("protocols", "0001_initial"),
        ("evidence", "0001_initial"),
        ("assessments", "0001_initial"),
    ]

    operations = [migrations.RunPython(roles_create, roles_delete)]
