"""Field-level history in plain words, for every history page: field labels instead of column names,
names instead of ids, times to the minute, whole values (never "[187 chars]"), and no bookkeeping fields.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import models
from django.utils import timezone
from django.utils.text import capfirst
from simple_history.models import DeletedObject

from engine import notation

# Moved by every save: a change to these alone says nothing a reader needs.
BOOKKEEPING_FIELDS = frozenset({"updated_at", "created_at", "edit_revision"})
NOBODY = "-"


def person_words(user: AbstractBaseUser | None) -> str:
    """Who acted: the full name, else the username; nobody is the data file loader (the system)."""
    if user is None:
        return "the system (data file loader)"
    return user.get_full_name() or user.get_username()


def time_words(value: datetime) -> str:
    return f"{timezone.localtime(value):%Y-%m-%d %H:%M}" if timezone.is_aware(value) else f"{value:%Y-%m-%d %H:%M}"


def value_words(value: Any) -> str:
    if value is None or value == "":
        return NOBODY
    if isinstance(value, DeletedObject):
        return NOBODY if value.pk is None else f"a deleted {value.model._meta.verbose_name}"
    if isinstance(value, AbstractBaseUser):
        return person_words(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return time_words(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return notation.plain_number(value, Decimal("0.001"))
    return str(value)


def field_label(model: type[models.Model], name: str) -> str:
    try:
        return capfirst(str(model._meta.get_field(name).verbose_name))
    except Exception:  # a field since removed from the model: its column name is all there is
        return capfirst(name.replace("_", " "))


def delta_words(model: type[models.Model], delta) -> list[tuple[str, str, str]]:
    """(label, old, new) for each change of a simple_history diff, in the model's field order, bookkeeping
    fields left out."""
    order = {f.name: position for position, f in enumerate(model._meta.fields)}
    changes = sorted(delta.changes, key=lambda change: order.get(change.field, len(order)))
    return [
        (field_label(model, change.field), value_words(change.old), value_words(change.new))
        for change in changes
        if change.field not in BOOKKEEPING_FIELDS
    ]
