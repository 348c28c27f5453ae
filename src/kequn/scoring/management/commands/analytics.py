from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Compute customer scores on the store: RFM, lifecycle stage, CLV, churn risk."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        refresh = sub.add_parser("refresh", help="recompute every customer's scores now")
        refresh.add_argument("--quiet", action="store_true", help="no progress bars")

    def handle(self, *args, action: str, quiet: bool = False, **options):
        from kequn.analytics.errors import AnalyticsInputError
        from kequn.scoring.services import refresh_scores

        try:
            result = refresh_scores(progress=not quiet)
        except AnalyticsInputError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Scored {result.customers:,} customers in {result.seconds:.1f} s"
            + (f" ({result.message})" if result.message else "")
        )
