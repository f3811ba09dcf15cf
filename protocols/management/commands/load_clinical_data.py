from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from protocols.seed import SEED_PATH, SeedFileError, clinical_data_load


class Command(BaseCommand):
    help = (
        "Load the six center protocols, the Table 2 studies and the references from the reviewed data file. "
        "Idempotent; never overwrites a record (protocol, institution, reference, study, test patient) edited "
        "since it was loaded: it reports it instead."
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
            # Still exit 0: keeping an edit is the intended outcome, and deployments load on every start.
            self.stdout.write(
                self.style.WARNING(
                    f"Loaded, except {len(report.refused)} record(s) edited since they were loaded, left as they "
                    f"are (NOT overwritten): {', '.join(report.refused)}."
                )
            )
        else:
            self.stdout.write(
                self.style.SUCCESS("Clinical data loaded." if report.writes else "Clinical data already up to date.")
            )
