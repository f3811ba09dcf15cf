from django.apps import AppConfig


class CdsHooksConfig(AppConfig):
    name = "cds_hooks"
    verbose_name = "CDS Hooks"

    def ready(self) -> None:
        from cds_hooks import checks  # noqa: F401  (registers the configuration check)
