"""The two roles, as groups with permissions. Superusers administer everything else."""

CLINICIAN = "clinician"
PHARMACIST = "pharmacist"

# (app_label, codename) pairs per role.
ROLE_PERMISSIONS: dict[str, list[tuple[str, str]]] = {
    CLINICIAN: [
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
    PHARMACIST: [
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
