"""What a person sent, carried back in an error page so nothing typed is lost: the page shows it again as
hidden fields under a button that sends it once more (the 503 page while the database is away, the CSRF
failure page when a form has expired)."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, UnreadablePostError

# Never written back into a page: a password is typed again.
NOT_CARRIED = ("password",)
CSRF_FIELD = "csrfmiddlewaretoken"


@dataclass(frozen=True, slots=True)
class Carried:
    action: str  # the address the form was sent to (this site's own path and query)
    fields: list[tuple[str, str]]  # every value sent, in order, repeated names kept
    left_out: bool  # a password was not carried


def same_site_path(request: HttpRequest) -> str:
    """The request's path and query, as an address on this site only ("//host/..." would leave it)."""
    return "/" + request.get_full_path().lstrip("/\\")


def carried_post(request: HttpRequest, *, keep_csrf_token: bool = True) -> Carried | None:
    """The fields of a form POST (None for anything else, or a body that cannot be read). Uploaded files are
    not carried (the app takes none)."""
    if request.method != "POST":
        return None
    try:
        items = [(name, value) for name, values in request.POST.lists() for value in values]
    except (BadRequest, RequestDataTooBig, SuspiciousOperation, UnreadablePostError):
        return None
    fields, left_out = [], False
    for name, value in items:
        if any(word in name.lower() for word in NOT_CARRIED):
            left_out = True
        elif name != CSRF_FIELD or keep_csrf_token:
            fields.append((name, value))
    return Carried(action=same_site_path(request), fields=fields, left_out=left_out)
