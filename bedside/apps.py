from django.apps import AppConfig


class BedsideConfig(AppConfig):
    name = "bedside"
    verbose_name = "Bedside wizard and reading pages"
