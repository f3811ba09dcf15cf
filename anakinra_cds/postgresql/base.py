"""Django's PostgreSQL DatabaseWrapper, unchanged unless the process serves requests (wsgi.py, asgi.py):
then each new connection's waits are bounded and a request does not retry a database that has just failed it
(anakinra_cds/db_waits.py)."""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base

from anakinra_cds import db_waits


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        db_waits.refuse_if_failed_in_this_request()
        try:
            connection = super().get_new_connection(conn_params)
        except base.Database.OperationalError as error:
            db_waits.note_failure(error)
            raise
        return db_waits.bounded(connection)
