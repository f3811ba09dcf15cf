"""Refuse to start with a malformed CDS Hooks issuer configuration (manage.py check, migrate, runserver)."""

from __future__ import annotations

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from cds_hooks.config import issuers


@checks.register()
def issuers_configured(app_configs, **kwargs) -> list[checks.CheckMessage]:
    try:
        issuers()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="cds_hooks.E001")]
    return []
