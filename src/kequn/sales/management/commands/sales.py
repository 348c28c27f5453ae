"""`kequn sales ...`: pool returns, reminders, forecast snapshots, the win model, imports."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from kequn.sales import services
from kequn.security.actors import add_operator_argument, get_operator


def parse_moment(text: str) -> datetime:
    """Return the start of a local day (YYYY-MM-DD) or a local date-time (ISO)."""
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), time(0))
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--now {text!r}: give a date as YYYY-MM-DD") from None
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


class Command(BaseCommand):
    help = "Sales: return idle accounts to the pool, send reminders, snapshot the forecast, train."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        reclaim = sub.add_parser(
            "reclaim", help="warn owners, then return accounts idle too long to the lead pool"
        )
        reclaim.add_argument("--now", help="act as on this day (YYYY-MM-DD) [default: now]")
        add_operator_argument(reclaim)
        remind = sub.add_parser("remind", help="email the task reminders that are due")
        add_operator_argument(remind)
        snapshot = sub.add_parser("snapshot", help="keep today's forecast of the coming months")
        snapshot.add_argument("--months", type=int, default=3)
        train = sub.add_parser(
            "train", help="train the win-probability model and compare it with the stage baseline"
        )
        add_operator_argument(train)
        load = sub.add_parser(
            "import", help="import deals or activities from a CRM export (Salesforce, HubSpot…)"
        )
        load.add_argument("kind", choices=["deals", "activities"])
        load.add_argument("file")
        load.add_argument(
            "--preset", choices=["salesforce", "hubspot", "zoho", "fxiaoke", "kequn"], default=None
        )
        load.add_argument("--pipeline", help="pipeline name for deals [default: the first]")
        add_operator_argument(load)

    def handle(self, *args, action: str, **options):
        try:
            getattr(self, f"do_{action}")(options)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None

    def do_reclaim(self, options):
        now = parse_moment(options["now"]) if options.get("now") else None
        result = services.reclaim_idle_accounts(by=get_operator(options["by"]), now=now)
        self.stdout.write(
            f"warned {len(result.warned)} owners, returned {len(result.returned)} accounts to the pool"
        )

    def do_remind(self, options):
        sent = services.send_due_reminders(by=get_operator(options["by"]))
        self.stdout.write(f"sent {sent} reminders")

    def do_snapshot(self, options):
        from kequn.sales.forecasting import take_forecast_snapshots

        count = take_forecast_snapshots(months=options["months"])
        self.stdout.write(f"kept {count} forecast rows")

    def do_train(self, options):
        from kequn.sales.winmodel import format_comparison, train_win_model

        model = train_win_model(by=get_operator(options["by"]))
        for line in format_comparison(model.metrics, model.is_used):
            self.stdout.write(line)

    def do_import(self, options):
        from kequn.sales.importing import import_crm_file

        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        summary = import_crm_file(
            path,
            options["kind"],
            preset=options["preset"],
            pipeline_name=options.get("pipeline"),
            by=get_operator(options["by"]),
        )
        self.stdout.write(
            f"{summary.imported} imported, {summary.updated} updated, {len(summary.errors)} refused"
        )
        for line in summary.errors[:50]:
            self.stderr.write(line)
