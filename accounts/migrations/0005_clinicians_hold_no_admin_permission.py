"""Clinicians hold no admin permission and are not staff.

0002/0004 gave the clinician group view permissions on protocols and evidence. Clinicians read
those through the bedside pages (which need a log-in, not a model permission), so the view
permissions only widened what the admin would show a clinician made staff by mistake. Dropped
here, and any clinician who is neither a pharmacist nor a superuser loses staff status. The
pharmacist group is unchanged (checked by tests/accounts/test_permission_matrix.py).
"""

from django.db import migrations

# Frozen copy of the clinician role at this point (accounts.roles).
CLINICIAN = [("assessments", "add_assessment"), ("assessments", "view_assessment")]
# As 0004 left it, for going back.
CLINICIAN_0004 = [
    ("protocols", "view_institution"),
    ("protocols", "view_protocol"),
    *(
        ("protocols", f"view_{model}")
        for model in ("protocolversion", "indicationrule", "dosingstep", "protocolcitation", "stepcitation")
    ),
    ("evidence", "view_reference"),
    ("evidence", "view_study"),
    *CLINICIAN,
]


def _set_clinician_permissions(apps, pairs) -> None:
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="clinician")
    group.permissions.set(
        [Permission.objects.get(content_type__app_label=app, codename=codename) for app, codename in pairs]
    )


def clinicians_narrow(apps, schema_editor):
    _set_clinician_permissions(apps, CLINICIAN)
    User = apps.get_model("auth", "User")
    User.objects.filter(groups__name="clinician", is_staff=True, is_superuser=False).exclude(
        groups__name="pharmacist"
    ).update(is_staff=False)


def clinicians_widen(apps, schema_editor):
    _set_clinician_permissions(apps, CLINICIAN_0004)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_roles_governance")]

    operations = [migrations.RunPython(clinicians_narrow, clinicians_widen)]
