"""Refuse to start with a malformed CDS Hooks configuration (manage.py check, migrate, runserver; the
container runs migrate before gunicorn, so a bad value stops the deployment)."""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from cds_hooks.config import issuers, site_url_problem


@checks.register()
def issuers_configured(app_configs, **kwargs) -> list[checks.CheckMessage]:
    try:
        issuers()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="cds_hooks.E001")]
    return []


@checks.register()
def site_url_configured(app_configs, **kwargs) -> list[checks.CheckMessage]:
    problem = site_url_problem(settings.SITE_URL, debug=settings.DEBUG)
    return [checks.Error(problem, id="cds_hooks.E002")] if problem else []
