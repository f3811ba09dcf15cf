"""Request bodies sent without a Content-Length (`Transfer-Encoding: chunked`), for the WSGI entry point.

Django reads CONTENT_LENGTH bytes of a body, so a chunked body (no Content-Length) reads as empty: a JSON
POST would be refused as malformed, a form as blank. When the server has decoded the chunks and ends the
input itself (`wsgi.input_terminated`, as gunicorn does), the body is read here, at most
DATA_UPLOAD_MAX_MEMORY_SIZE + 1 bytes, and handed on with its length, so everything after this sees an
ordinary request. A body over the limit is declared with the length read so far (over the limit), and
ServiceErrorsMiddleware answers it with the usual 413 before anything reads it. A server that does not end
the input (Django's runserver) cannot give the body safely: the request is marked, and answered 411.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings

LENGTH_REQUIRED = "anakinra.length_required"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _chunked_without_length(environ: dict[str, Any]) -> bool:
    if environ.get("CONTENT_LENGTH"):
        return False
    codings = [c.strip().lower() for c in environ.get("HTTP_TRANSFER_ENCODING", "").split(",")]
    return "chunked" in codings


def read_chunked_body(environ: dict[str, Any]) -> None:
    """Give a chunked request's body a length (in place), or mark it for a 411."""
    if not _chunked_without_length(environ):
        return
    if not environ.get("wsgi.input_terminated"):
        environ[LENGTH_REQUIRED] = True
        return
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    body = environ["wsgi.input"].read() if limit is None else environ["wsgi.input"].read(limit + 1)
    # Over the limit: only the length is passed on (the 413 is decided by it); the rest is never read here.
    environ["wsgi.input"] = io.BytesIO(b"" if limit is not None and len(body) > limit else body)
    environ["CONTENT_LENGTH"] = str(len(body))


def chunked_bodies(application: WsgiApp) -> WsgiApp:
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        read_chunked_body(environ)
        return application(environ, start_response)

    return wrapped
