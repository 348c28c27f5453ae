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
        refresh.add_argument(
            "--engine",
            choices=["duckdb", "spark"],
            default="duckdb",
            help="where the scores are computed: DuckDB in this process, or Spark (PySpark)",
        )
        refresh.add_argument(
            "--spark-master", help="Spark master URL [KEQUN_SPARK_MASTER, else local[2]]"
        )
        refresh.add_argument(
            "--orders-parquet",
            help="with --engine spark: read the orders from these Parquet files, not the store",
        )
        refresh.add_argument(
            "--full",
            action="store_true",
            help="recompute every customer's purchase summary from all orders, "
            "not only those of customers whose orders changed",
        )
        add_operator_argument(refresh)

    def handle(self, *args, action: str, quiet: bool = False, **options):
        from kequn.analytics.errors import AnalyticsInputError
        from kequn.analytics.spark import SparkUnavailableError
        from kequn.jobs.pipelines import refresh_analytics

        by = get_operator(options.get("by"))
        try:
            result = refresh_analytics(
                progress=not quiet,
                recommendations=options.get("with_recommendations", False),
                engine=options.get("engine", "duckdb"),
                spark_master=options.get("spark_master"),
                full=options.get("full", False),
                orders_parquet=options.get("orders_parquet"),
                by=by,
            )
        except SparkUnavailableError as exc:
            raise CommandError(str(exc), returncode=2) from None
        except AnalyticsInputError as exc:
            raise CommandError(str(exc)) from None
        steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result.steps.items())
        notes = f" ({'; '.join(result.notes)})" if result.notes else ""
        self.stdout.write(f"Scored {result.customers:,} customers: {steps}{notes}")
