from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.services import api_token_create


class Command(BaseCommand):
    help = "Make an API token for a user. The key is printed once and not stored."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="API client", help="What the token is for.")

    def handle(self, *args, **options):
        user = get_user_model().objects.filter(username=options["username"], is_active=True).first()
        if user is None:
            raise CommandError(f"No active user named {options['username']!r}.")
        token, key = api_token_create(user=user, name=options["name"])
        self.stdout.write(f"Token for {user.get_username()} ({token.name}). Keep it now; it is not shown again:")
        self.stdout.write(key)
