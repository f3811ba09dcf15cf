"""Deployment checks (`manage.py check --deploy`)."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def quick_start_database_in_production(app_configs, **kwargs):
    if settings.DATABASE_URL_SET:
        return []
    return [
        Warning(
            "DATABASE_URL is not set: the app runs on the SQLite quick-start file beside manage.py.",
            hint="Set DATABASE_URL to the production PostgreSQL database.",
            id="site.W001",
        )
    ]
