"""Remove the test-only bypass from the row guard of 0007.

0007 let a session that set `protocols.restore` insert rows into a published version; only the browser
tests' restore of the seeded database used it. Those tests now load the seed data again through the
loader after each flush (`tests/e2e/conftest.py`), so nothing may write into a published version,
whatever it sets.
"""

import importlib

from django.db import migrations

# 0007's function, with the bypass, for going back.
previous = importlib.import_module("protocols.migrations.0007_frozen_inserts_and_catalog_tables")

ROW_GUARD = """
CREATE OR REPLACE FUNCTION protocols_version_row_guard() RETURNS trigger AS $$
DECLARE
    version_ids bigint[];
BEGIN
    IF TG_OP = 'UPDATE' AND NEW IS NOT DISTINCT FROM OLD THEN
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


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ROW_GUARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(previous.ROW_GUARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("protocols", "0007_frozen_inserts_and_catalog_tables")]

    operations = [migrations.RunPython(forward, backward)]
