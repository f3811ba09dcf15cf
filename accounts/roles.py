"""The two roles, as groups with permissions. Superusers administer everything else.

Clinicians use the bedside pages and read protocols and evidence there; they are not staff and hold
no admin permission (0005 dropped the view permissions 0002/0004 gave them). Pharmacists are staff:
they keep test patients, start and edit drafts, and approve other pharmacists' drafts
(`approve_protocolversion`; the two-person rule itself is enforced in `protocols.services`). They
may add institutions, protocols and references (nothing new reaches a clinician until a version
citing it is approved) but not change published ones.

The groups are made by data migrations (0002, then 0004 for the governance refinement, then 0005),
each with a frozen copy of its list. Changing this list needs a new data migration; a test checks that
the migrated groups equal it.
"""

CLINICIAN = "clinician"
PHARMACIST = "pharmacist"

_PROTOCOL_ROWS = ("protocolversion", "indicationrule", "dosingstep", "protocolcitation", "stepcitation")

# (app_label, codename) pairs per role.
ROLE_PERMISSIONS: dict[str, list[tuple[str, str]]] = {
    # No admin permission: clinicians read protocols and evidence on the bedside pages only.
    CLINICIAN: [
        ("assessments", "add_assessment"),
        ("assessments", "view_assessment"),
    ],
    PHARMACIST: [
        ("protocols", "view_institution"),
        ("protocols", "add_institution"),
        ("protocols", "view_protocol"),
        ("protocols", "add_protocol"),
        *(
            ("protocols", f"{action}_{model}")
            for model in _PROTOCOL_ROWS
            for action in ("view", "add", "change", "delete")
        ),
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
