from django.core.management.base import BaseCommand, CommandError

from kequn.security.actors import add_operator_argument, get_operator


class Command(BaseCommand):
    help = (
        "Compute customer scores on the store (RFM, lifecycle stage, CLV, churn risk), "
        "then refresh the segments and the dashboard built on them."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        refresh = sub.add_parser("refresh", help="recompute every customer's scores now")
        refresh.add_argument("--quiet", action="store_true", help="no progress bars")
        refresh.add_argument(
            "--with-recommendations", action="store_true", help="retrain recommendations too"
        )
        add_operator_argument(refresh)

    def handle(self, *args, action: str, quiet: bool = False, **options):
        from kequn.analytics.errors import AnalyticsInputError
        from kequn.jobs.pipelines import refresh_analytics

        by = get_operator(options.get("by"))
        try:
            result = refresh_analytics(
                progress=not quiet,
                recommendations=options.get("with_recommendations", False),
                by=by,
            )
        except AnalyticsInputError as exc:
            raise CommandError(str(exc)) from None
        steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result.steps.items())
        notes = f" ({'; '.join(result.notes)})" if result.notes else ""
        self.stdout.write(f"Scored {result.customers:,} customers: {steps}{notes}")
