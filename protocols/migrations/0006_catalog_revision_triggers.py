"""Keep protocols_catalogrevision.revision changing whenever the published catalog could change.

Triggers on protocol versions, institutions and references set a new revision in the same
transaction as the change, however the change is made (ORM, admin, loader, raw SQL). The new value
never repeats, even across rolled-back transactions (a PostgreSQL sequence is not transactional;
SQLite takes a random 63-bit number), so a cached catalog is never mistaken for a current one.
"""

from django.db import migrations

WATCHED = ("protocols_protocolversion", "protocols_institution", "evidence_reference")

POSTGRES_FORWARD = [
    "CREATE SEQUENCE IF NOT EXISTS protocols_catalog_revision_seq",
    """
    CREATE OR REPLACE FUNCTION protocols_catalog_bump() RETURNS trigger AS $$
    BEGIN
        UPDATE protocols_catalogrevision SET revision = nextval('protocols_catalog_revision_seq') WHERE id = 1;
        RETURN NULL;
    END
    $$ LANGUAGE plpgsql
    """,
    *[
        f"CREATE TRIGGER {table}_catalog_bump AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION protocols_catalog_bump()"
        for table in WATCHED
    ],
]
POSTGRES_BACKWARD = [
    *[f"DROP TRIGGER IF EXISTS {table}_catalog_bump ON {table}" for table in WATCHED],
    "DROP FUNCTION IF EXISTS protocols_catalog_bump()",
    "DROP SEQUENCE IF EXISTS protocols_catalog_revision_seq",
]
SQLITE_FORWARD = [
    f"CREATE TRIGGER {table}_catalog_bump_{event.lower()} AFTER {event} ON {table} BEGIN "
    "UPDATE protocols_catalogrevision SET revision = abs(random()) WHERE id = 1; END"
    for table in WATCHED
    for event in ("INSERT", "UPDATE", "DELETE")
]
SQLITE_BACKWARD = [
    f"DROP TRIGGER IF EXISTS {table}_catalog_bump_{event.lower()}"
    for table in WATCHED
    for event in ("INSERT", "UPDATE", "DELETE")
]


def forward(apps, schema_editor):
    apps.get_model("protocols", "CatalogRevision").objects.get_or_create(id=1, defaults={"revision": 0})
    statements = {"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD}.get(schema_editor.connection.vendor, [])
    for statement in statements:
        schema_editor.execute(statement)


def backward(apps, schema_editor):
    statements = {"postgresql": POSTGRES_BACKWARD, "sqlite": SQLITE_BACKWARD}.get(schema_editor.connection.vendor, [])
    for statement in statements:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("protocols", "0005_catalog_revision"),
        ("evidence", "0001_initial"),
    ]

    operations = [migrations.RunPython(forward, backward)]
