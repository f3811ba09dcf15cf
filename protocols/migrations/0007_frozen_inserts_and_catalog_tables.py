"""Close two gaps in the PostgreSQL triggers of 0003 and 0006.

1. A published or retired version's rows refused UPDATE and DELETE but not INSERT: a new rule,
   step or citation could still be added to a live version by raw SQL or a loaded fixture. The
   row guard now refuses INSERT too. The one exception is a test-database restore (pytest's
   serialized rollback re-inserts the seeded rows after a flush), which sets
   `SET LOCAL protocols.restore = 'on'` inside its own transaction: the setting ends with it.
2. The catalog revision moved only for versions, institutions and references, while the engine
   catalog also reads protocols, rules, steps, both citation tables and the approver's name.
   Every one of those now moves it too (users only when a name changes, not on each log-in).
"""

from django.db import migrations

ROW_TABLES = (
    "protocols_indicationrule",
    "protocols_dosingstep",
    "protocols_protocolcitation",
    "protocols_stepcitation",
)

ROW_GUARD = """
CREATE OR REPLACE FUNCTION protocols_version_row_guard() RETURNS trigger AS $$
DECLARE
    version_ids bigint[];
BEGIN
    IF TG_OP = 'UPDATE' AND NEW IS NOT DISTINCT FROM OLD THEN
        RETURN NEW;
    END IF;
    -- Test-database restores only: set with SET LOCAL inside the restoring transaction.
    IF TG_OP = 'INSERT' AND current_setting('protocols.restore', true) = 'on' THEN
        RETURN NEW;
    END IF;
    IF TG_TABLE_NAME = 'protocols_stepcitation' THEN
        IF TG_OP = 'INSERT' THEN
            SELECT array_agg(s.version_id) INTO version_ids FROM protocols_dosingstep s WHERE s.id = NEW.step_id;
        ELSIF TG_OP = 'UPDATE' THEN
            SELECT array_agg(s.version_id) INTO version_ids FROM protocols_dosingstep s
            WHERE s.id = OLD.step_id OR s.id = NEW.step_id;
        ELSE
            SELECT array_agg(s.version_id) INTO version_ids FROM protocols_dosingstep s WHERE s.id = OLD.step_id;
        END IF;
    ELSIF TG_OP = 'INSERT' THEN
        version_ids := ARRAY[NEW.version_id];
    ELSIF TG_OP = 'UPDATE' THEN
        version_ids := ARRAY[OLD.version_id, NEW.version_id];
    ELSE
        version_ids := ARRAY[OLD.version_id];
    END IF;
    IF EXISTS (
        SELECT 1 FROM protocols_protocolversion v
        WHERE v.id = ANY(version_ids) AND v.status IN ('published', 'retired')
    ) THEN
        IF TG_OP = 'INSERT' THEN
            RAISE EXCEPTION 'rows cannot be added to a published protocol version (%)', TG_TABLE_NAME
                USING ERRCODE = 'restrict_violation';
        END IF;
        RAISE EXCEPTION 'rows of a published protocol version cannot be changed or deleted (%)', TG_TABLE_NAME
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
"""

# As 0003 left it (no INSERT case), for going back.
ROW_GUARD_0003 = """
CREATE OR REPLACE FUNCTION protocols_version_row_guard() RETURNS trigger AS $$
DECLARE
    version_ids bigint[];
BEGIN
    IF TG_OP = 'UPDATE' AND NEW IS NOT DISTINCT FROM OLD THEN
        RETURN NEW;
    END IF;
    IF TG_TABLE_NAME = 'protocols_stepcitation' THEN
        SELECT array_agg(s.version_id) INTO version_ids FROM protocols_dosingstep s
        WHERE s.id = OLD.step_id OR (TG_OP = 'UPDATE' AND s.id = NEW.step_id);
    ELSIF TG_OP = 'UPDATE' THEN
        version_ids := ARRAY[OLD.version_id, NEW.version_id];
    ELSE
        version_ids := ARRAY[OLD.version_id];
    END IF;
    IF EXISTS (
        SELECT 1 FROM protocols_protocolversion v
        WHERE v.id = ANY(version_ids) AND v.status IN ('published', 'retired')
    ) THEN
        RAISE EXCEPTION 'rows of a published protocol version cannot be changed or deleted (%)', TG_TABLE_NAME
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
"""

# Tables the engine catalog reads (protocols.selectors.versions_with_content) beyond 0006's three.
CATALOG_TABLES = ("protocols_protocol", *ROW_TABLES)
USER_NAME_COLUMNS = "first_name, last_name, username"

POSTGRES_FORWARD = [
    *[
        f"CREATE TRIGGER {table}_insert_guard BEFORE INSERT ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION protocols_version_row_guard()"
        for table in ROW_TABLES
    ],
    *[
        f"CREATE TRIGGER {table}_catalog_bump AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION protocols_catalog_bump()"
        for table in CATALOG_TABLES
    ],
    f"CREATE TRIGGER auth_user_catalog_bump AFTER UPDATE OF {USER_NAME_COLUMNS} ON auth_user "
    "FOR EACH STATEMENT EXECUTE FUNCTION protocols_catalog_bump()",
]
POSTGRES_BACKWARD = [
    "DROP TRIGGER IF EXISTS auth_user_catalog_bump ON auth_user",
    *[f"DROP TRIGGER IF EXISTS {table}_catalog_bump ON {table}" for table in CATALOG_TABLES],
    *[f"DROP TRIGGER IF EXISTS {table}_insert_guard ON {table}" for table in ROW_TABLES],
]
SQLITE_BUMP = "UPDATE protocols_catalogrevision SET revision = abs(random()) WHERE id = 1;"
SQLITE_FORWARD = [
    *[
        f"CREATE TRIGGER {table}_catalog_bump_{event.lower()} AFTER {event} ON {table} BEGIN {SQLITE_BUMP} END"
        for table in CATALOG_TABLES
        for event in ("INSERT", "UPDATE", "DELETE")
    ],
    f"CREATE TRIGGER auth_user_catalog_bump_update AFTER UPDATE OF {USER_NAME_COLUMNS} ON auth_user "
    f"BEGIN {SQLITE_BUMP} END",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS auth_user_catalog_bump_update",
    *[
        f"DROP TRIGGER IF EXISTS {table}_catalog_bump_{event.lower()}"
        for table in CATALOG_TABLES
        for event in ("INSERT", "UPDATE", "DELETE")
    ],
]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(ROW_GUARD, params=None)
    for statement in {"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD}.get(vendor, []):
        schema_editor.execute(statement)


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for statement in {"postgresql": POSTGRES_BACKWARD, "sqlite": SQLITE_BACKWARD}.get(vendor, []):
        schema_editor.execute(statement)
    if vendor == "postgresql":
        schema_editor.execute(ROW_GUARD_0003, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("protocols", "0006_catalog_revision_triggers"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(forward, backward)]
