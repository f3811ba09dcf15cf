"""The groups made by the data migrations hold exactly the permissions accounts.roles lists."""

import pytest
from django.contrib.auth.models import Group

from accounts.roles import ROLE_PERMISSIONS

pytestmark = pytest.mark.integration


def test_migrated_groups_equal_the_roles_module(db):
    stored = {
        group.name: sorted(group.permissions.values_list("content_type__app_label", "codename"))
        for group in Group.objects.filter(name__in=ROLE_PERMISSIONS)
    }

    assert stored == {role: sorted(pairs) for role, pairs in ROLE_PERMISSIONS.items()}


def test_clinicians_cannot_change_protocols_and_pharmacists_cannot_manage_users(clinician, pharmacist):
    assert (clinician.is_staff, clinician.has_perm("protocols.change_dosingstep")) == (False, False)
    assert (pharmacist.is_staff, pharmacist.has_perm("protocols.approve_protocolversion")) == (True, True)
    assert (pharmacist.has_perm("auth.change_user"), pharmacist.has_perm("evidence.change_reference")) == (False, False)
