from django.core.management.base import BaseCommand

from accounts.services import demo_accounts_create


class Command(BaseCommand):
    help = "Create local demo accounts (one clinician, two pharmacists) with generated passwords."

    def handle(self, *args, **options):
        for username, password in demo_accounts_create():
            if password is None:
                self.stdout.write(f"  {username:<12} exists (its password was shown when it was made)")
            else:
                self.stdout.write(f"  {username:<12} password: {password}")
