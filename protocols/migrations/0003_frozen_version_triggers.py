"""PostgreSQL triggers: published and retired versions and their rows cannot be changed or deleted,
whatever the path (raw SQL, a fixture loaded over them, a bug that skips the model guards).

Allowed: re-saving a row exactly as it is (test-data restores and `loaddata` of identical rows;
Django's JSON serializer keeps timestamps to the millisecond, so a difference below a millisecond
is not a change), and retiring a published version (status and retired_at only). Inserts are not checked: restores
re-insert the rows of published versions after a flush (TRUNCATE, which fires no row trigger).
The model and queryset guards in protocols.models stay the first line; other databases (the
SQLite quick start) rely on them alone.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION protocols_version_guard() RETURNS trigger AS $$
DECLARE
    unchanged protocols_protocolversion;
BEGIN
    IF OLD.status IN ('published', 'retired') THEN
        IF TG_OP = 'DELETE' THEN
            RAISE EXCEPTION 'protocol version % is % and cannot be deleted', OLD.id, OLD.status
                USING ERRCODE = 'restrict_violation';
        END IF;
        -- Same to the millisecond is the same time (serialized restores keep only milliseconds):
        -- keep the stored value.
        IF date_trunc('milliseconds', NEW.created_at) = date_trunc('milliseconds', OLD.created_at) THEN
            NEW.created_at := OLD.created_at;
        END IF;
        IF date_trunc('milliseconds', NEW.updated_at) = date_trunc('milliseconds', OLD.updated_at) THEN
            NEW.updated_at := OLD.updated_at;
        END IF;
        IF date_trunc('milliseconds', NEW.published_at) = date_trunc('milliseconds', OLD.published_at) THEN
            NEW.published_at := OLD.published_at;
        END IF;
        IF date_trunc('milliseconds', NEW.submitted_at) = date_trunc('milliseconds', OLD.submitted_at) THEN
            NEW.submitted_at := OLD.submitted_at;
        END IF;
        IF date_trunc('milliseconds', NEW.retired_at) = date_trunc('milliseconds', OLD.retired_at) THEN
            NEW.retired_at := OLD.retired_at;
        END IF;
        unchanged := NEW;
        unchanged.status := OLD.status;
        unchanged.retired_at := OLD.retired_at;
        IF unchanged IS DISTINCT FROM OLD
           OR (NEW.status = OLD.status AND NEW.retired_at IS DISTINCT FROM OLD.retired_at)
           OR (NEW.status <> OLD.status AND NOT (OLD.status = 'published' AND NEW.status = 'retired')) THEN
            RAISE EXCEPTION 'protocol version % is % and cannot be changed', OLD.id, OLD.status
                USING ERRCODE = 'restrict_violation';
        END IF;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

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

CREATE TRIGGER protocols_version_guard BEFORE UPDATE OR DELETE ON protocols_protocolversion
    FOR EACH ROW EXECUTE FUNCTION protocols_version_guard();
"""

ROW_TABLES = (
    "protocols_indicationrule",
    "protocols_dosingstep",
    "protocols_protocolcitation",
    "protocols_stepcitation",
)

BACKWARD = """
DROP TRIGGER IF EXISTS protocols_version_guard ON protocols_protocolversion;
DROP FUNCTION IF EXISTS protocols_version_guard();
DROP FUNCTION IF EXISTS protocols_version_row_guard() CASCADE;
"""


def triggers_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FORWARD, params=None)
    for table in ROW_TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_frozen_guard BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION protocols_version_row_guard();"
        )


def triggers_drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in ROW_TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_frozen_guard ON {table};")
    schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("protocols", "0002_governance_drafts_test_patients")]

    operations = [migrations.RunPython(triggers_create, triggers_drop)]
