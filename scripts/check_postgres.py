"""Before the tests: make sure PostgreSQL answers at DATABASE_URL, and that its role and database exist.

Prints one line and exits 1 when the server cannot be reached; creates a missing role or database
when a superuser connection (trust auth as `postgres`, as on a development machine) allows it.
"""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

DEFAULT_URL = "postgres://anakinra@127.0.0.1:5432/anakinra"


def main() -> int:
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        print(f"DATABASE_URL must be a postgres:// URL for the tests (got scheme {parts.scheme!r}).")
        return 1
    host, port = parts.hostname or "127.0.0.1", parts.port or 5432
    role, database = parts.username or "postgres", (parts.path or "/").lstrip("/") or "postgres"
    password = parts.password
    try:
        with psycopg.connect(host=host, port=port, user=role, password=password, dbname=database, connect_timeout=5):
            return 0
    except psycopg.OperationalError as error:
        message = str(error)
    if "Connection refused" in message or ("could not connect" in message and "does not exist" not in message):
        print(
            f"PostgreSQL is not reachable at {host}:{port}: start it with "
            "`pg_ctlcluster 15 main start` (or set DATABASE_URL to a running server)."
        )
        return 1
    # The server answers but the role or database is missing: create them as the superuser.
    try:
        with psycopg.connect(
            host=host, port=port, user="postgres", dbname="postgres", autocommit=True, connect_timeout=5
        ) as admin:
            exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            if not exists:
                admin.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB").format(sql.Identifier(role)))
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
            if not exists:
                admin.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(role))
                )
    except psycopg.OperationalError as error:
        print(f"PostgreSQL at {host}:{port} refused {role}@{database} and could not create them: {error}".strip())
        return 1
    print(f"Created PostgreSQL role/database {role}@{database} on {host}:{port}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
