"""Bounds on waiting for the database while serving requests (wsgi.py and asgi.py turn them on; the PostgreSQL
backend anakinra_cds/postgresql applies them).

psycopg's `connect_timeout` (DATABASE_CONNECT_TIMEOUT) bounds opening a connection, and the role's
`statement_timeout` bounds a query the server is running. Neither bounds a server that is frozen (its process
stopped, a paused VM) while a request waits on an already open connection: the server's kernel still
acknowledges what is sent, so TCP keepalives and `tcp_user_timeout` see nothing wrong, the server-side timeout
never fires, and the worker's thread waits until gunicorn kills the worker. So, while serving requests:

- every wait for an answer (a query's rows, a commit, the health check's `SELECT 1`) is bounded client-side by
  DATABASE_WAIT_TIMEOUT_SECONDS: past it the connection is closed (its state is unknown) and the wait raises
  psycopg's OperationalError, which Django reports as its own, so the request gets the 503 of
  anakinra_cds/service_errors.py;
- once the database has failed a request (a connection attempt failed, or a wait ran out), the rest of that
  request does not try it again: each further attempt (the session, the user, a middleware's own read) would
  wait out DATABASE_CONNECT_TIMEOUT once more. The next request tries again, so recovery stays automatic.

So a request meets at most one wait timeout and one connection timeout. Management commands (migrate,
load_clinical_data) are not bounded: they may rightly wait longer.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg
from django.core.signals import request_started
from psycopg import errors as psycopg_errors

_on = False
_request = threading.local()  # .failure: the first database failure of the request this thread serves


class BoundedWaitConnection(psycopg.Connection):
    """psycopg's Connection, with no wait for the server longer than `wait_timeout_seconds`."""

    wait_timeout_seconds: float = 10.0

    def wait(self, gen: Any, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        bound = self.wait_timeout_seconds
        try:
            return super().wait(gen, *args, timeout=bound if timeout is None else min(timeout, bound), **kwargs)
        except psycopg_errors._WaitTimeout as error:  # psycopg's own timeout of this wait (psycopg >= 3.3)
            if timeout is not None and timeout < bound:
                raise  # a shorter timeout asked by psycopg itself: its own handling
            # The request (or its result) may be half sent or half read: the connection cannot be reused.
            self.close()
            failure = psycopg.OperationalError(
                f"no answer from the database within {bound:g} s (DATABASE_WAIT_TIMEOUT_SECONDS); connection closed"
            )
            note_failure(failure)
            raise failure from error


def bounded(connection: Any) -> Any:
    """A new psycopg connection, its waits bounded when serving requests."""
    if _on and type(connection) is psycopg.Connection:
        # Same object, same state: only `wait` differs (BoundedWaitConnection adds no attributes).
        connection.__class__ = BoundedWaitConnection
    return connection


def note_failure(error: Exception) -> None:
    if _on and getattr(_request, "failure", None) is None:
        _request.failure = error


def refuse_if_failed_in_this_request() -> None:
    failure = getattr(_request, "failure", None) if _on else None
    if failure is not None:
        raise psycopg.OperationalError(f"{failure} (not tried again in this request)")


def _request_started(**kwargs: Any) -> None:
    _request.failure = None


def bound_database_waits(*, seconds: float) -> None:
    """Turn the bounds on for this process (a server): connections opened from now on."""
    global _on
    BoundedWaitConnection.wait_timeout_seconds = seconds
    request_started.connect(_request_started, dispatch_uid="anakinra_cds.db_waits")
    _on = True
