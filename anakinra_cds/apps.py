from django.apps import AppConfig


class SiteConfig(AppConfig):
    """The project package as an app, for its system checks."""

    name = "anakinra_cds"
    label = "site"

    def ready(self) -> None:
        from anakinra_cds import checks  # noqa: F401  (registers the checks)
