from django.core.management.base import BaseCommand

from accounts.services import login_failures_clear


class Command(BaseCommand):
    help = "Lift the failed-log-in pause on a username now (instead of waiting for the window to pass)."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, **options):
        cleared = login_failures_clear(username=options["username"])
        self.stdout.write(f"Cleared {cleared} failed log-in record(s) for {options['username']!r}.")
