from django.core.management.base import BaseCommand, CommandError

from accounts.services import NotADemoAccount, demo_account_password_reset, demo_accounts_create


class Command(BaseCommand):
    help = (
        "Create local demo accounts (one clinician, two pharmacists) with generated passwords; "
        "--reset <username> gives one of them a new generated password (a lost one cannot be shown again)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--reset", metavar="USERNAME", help="give this demo account a new password")

    def handle(self, *args, **options):
        if options["reset"]:
            try:
                password = demo_account_password_reset(username=options["reset"])
            except NotADemoAccount as error:
                raise CommandError(str(error)) from None
            self.stdout.write(f"  {options['reset']:<12} new password: {password}")
            return
        for username, password in demo_accounts_create():
            if password is None:
                self.stdout.write(
                    f"  {username:<12} exists (its password was shown when it was made; "
                    f"`make reset-password ACCOUNT={username}` sets a new one)"
                )
            else:
                self.stdout.write(f"  {username:<12} password: {password}")
