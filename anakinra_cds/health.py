"""Is the database there? One bounded check, for the readiness probe (/readyz).

Bounded on both sides: a fresh connection, so psycopg's connect_timeout (DATABASE_CONNECT_TIMEOUT) covers a
database that accepts and never answers, and a statement_timeout set with SET LOCAL (set_config(..., true))
for a database that answers too slowly. SET LOCAL lasts one transaction, so it holds behind PgBouncer in
transaction mode too, where a libpq startup option would not.
"""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, connections


def database_check(*, statement_timeout_ms: int) -> None:
    """Raise django.db.Error unless the database answers a query within the bounds."""
    connection = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                connection.set_autocommit(False)
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", [f"{statement_timeout_ms}ms"])
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connection.close()
