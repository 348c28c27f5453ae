import argparse

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from kequn.conf import get_data_dir
from kequn.security.actors import Actor, add_operator_argument, get_operator
from kequn.security.keys import describe_key_custody


def positive_int(text: str) -> int:
    """Parse a whole number greater than zero."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than zero, got {value}")
    return value


class Command(BaseCommand):
    help = (
        "Set up Kequn in one go: migrate, create an admin account (password printed once), "
        "generate demo data, compute the analytics and serve the UI."
    )

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=positive_int, default=5000, help="[5000]")
        parser.add_argument("--seed", type=int, default=42, help="random seed [42]")
        parser.add_argument("--no-serve", action="store_true", help="stop after loading data")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--quiet", action="store_true", help="no progress bars")
        add_operator_argument(parser)

    def handle(self, *args, **opts):
        # Loaded when the command runs: the generator, DuckDB and the server are heavy.
        from kequn.dashboard.reports import list_reports
        from kequn.dashboard.tasks import write_weekly_report_task
        from kequn.demo.generator import has_demo_data
        from kequn.demo.services import (
            create_sample_segments,
            ensure_admin,
            load_demo_data,
            migrate_database,
        )
        from kequn.serving import check_port_free, serve

        if not opts["no_serve"]:
            # Fail before spending minutes on data if the port is taken.
            check_port_free(opts["host"], opts["port"])
        self.stderr.write(f"Data directory: {get_data_dir()}")
        migrate_database()
        by = get_operator(opts["by"])
        password = ensure_admin(by=by)
        if has_demo_data():
            self.stderr.write("Demo data is already loaded; keeping it.")
        else:
            summary = load_demo_data(
                opts["customers"], seed=opts["seed"], progress=not opts["quiet"], by=by
            )
            self.stderr.write(
                f"Generated {summary.customers:,} customers, {summary.orders:,} orders, "
                f"{summary.events:,} events in {summary.seconds:.1f} s."
            )
        admin_user = get_user_model().objects.filter(is_superuser=True).order_by("pk").first()
        segments = create_sample_segments(by=admin_user)
        if segments:
            self.stderr.write(f"Created {len(segments)} sample segments.")
        from kequn.demo.sales import create_b2b_slice

        self.stderr.write(create_b2b_slice(by=by))
        from kequn.demo.feedback import create_demo_feedback

        self.stderr.write(create_demo_feedback(by=by))
        from kequn.demo.loyalty import create_demo_loyalty

        self.stderr.write(create_demo_loyalty(by=by, seed=opts["seed"]))
        self.refresh_analytics(opts["quiet"], by=by)
        from kequn.demo.engage import create_demo_campaigns  # needs the refreshed segments

        self.stderr.write(create_demo_campaigns(by=by))
        from kequn.demo.journeys import create_demo_journeys  # needs the stage changes

        self.stderr.write(create_demo_journeys(by=by))
        # The reports page lists the weekly report: queue a first one for `kequn worker`
        # (writing it here would add ~10 s to the demo).
        if not list_reports():
            write_weekly_report_task.enqueue()
        if password:
            self.stdout.write(
                "Administrator account created — user: admin  password: "
                f"{password}\n(shown only once: write it down)"
            )
        else:
            self.stderr.write("An administrator account already exists.")
        # The demo keeps its key beside the database; a real installation should not.
        self.stderr.write(describe_key_custody())
        if opts["no_serve"]:
            return
        self.stderr.write(f"Open http://{opts['host']}:{opts['port']}/ and sign in.")
        serve(opts["host"], opts["port"])

    def refresh_analytics(self, quiet: bool, *, by: Actor) -> None:
        from kequn.jobs.pipelines import refresh_analytics

        result = refresh_analytics(progress=not quiet, recommendations=True, by=by)
        steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result.steps.items())
        self.stderr.write(f"Analytics: {result.customers:,} customers scored ({steps}).")
