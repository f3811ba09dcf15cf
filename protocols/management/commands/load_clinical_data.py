from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from protocols.seed import SEED_PATH, SeedFileError, clinical_data_load


class Command(BaseCommand):
    help = (
        "Load the six center protocols, the Table 2 studies and the references from the reviewed data file. "
        "Idempotent; never overwrites a protocol edited since it was loaded."
    )

    def add_arguments(self, parser):
        parser.add_argument("--file", type=Path, default=SEED_PATH, help="Data file (default: the reviewed seed).")
        parser.add_argument(
            "--check", action="store_true", help="Validate the file completely, then roll back: nothing is written."
        )

    def handle(self, *args, **options):
        try:
            report = clinical_data_load(path=options["file"], check_only=options["check"])
        except SeedFileError as error:
            raise CommandError(str(error)) from None
        except ValidationError as error:
            raise CommandError(f"{options['file']}: {error}") from None
        for line in report.lines:
            self.stdout.write(f"  {line}")
        if options["check"]:
            self.stdout.write(self.style.SUCCESS(f"{options['file'].name} is valid; nothing was written (--check)."))
        elif report.refused:
            self.stdout.write(
                self.style.WARNING(
                    f"Loaded, except {', '.join(report.refused)}: edited since they were loaded, left as they are."
                )
            )
        else:
            self.stdout.write(
                self.style.SUCCESS("Clinical data loaded." if report.writes else "Clinical data already up to date.")
            )
