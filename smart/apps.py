from django.apps import AppConfig


class SmartConfig(AppConfig):
    name = "smart"
    verbose_name = "SMART App Launch"

    def ready(self) -> None:
        from smart import receivers  # noqa: F401  (drops the EHR patient context with the wizard's patient)
