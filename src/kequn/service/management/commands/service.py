"""kequn service fetch-mail | sla-check | recompute | holidays | report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation

from kequn.security.actors import add_operator_argument, get_operator
from kequn.service import selectors, services
from kequn.service.calendar import CalendarError
from kequn.service.models import BusinessCalendar


class Command(BaseCommand):
    help = "Service: poll the inbound mailbox, check SLAs, load holidays, print the SLA report."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        fetch = sub.add_parser("fetch-mail", help="file the unread messages of the inbound mailbox")
        fetch.add_argument(
            "--url", help="imap(s)://user:password@host/INBOX [KEQUN_SERVICE_IMAP_URL]"
        )
        add_operator_argument(fetch)
        check = sub.add_parser("sla-check", help="record SLA warnings and breaches, escalate")
        add_operator_argument(check)
        recompute = sub.add_parser(
            "recompute", help="recompute the deadlines of open tickets (after a policy change)"
        )
        add_operator_argument(recompute)
        holidays = sub.add_parser(
            "holidays",
            help="load the operator's holidays and make-up workdays from a CSV "
            "(columns date, workday 0/1, name, hours like '09:00-12:00 13:00-18:00')",
        )
        holidays.add_argument("file")
        holidays.add_argument("--calendar", required=True, help="business calendar name")
        add_operator_argument(holidays)
        sub.add_parser("report", help="SLA compliance and response times (JSON)")

    def handle(self, *args, action: str, **options):
        try:
            with translation.override("en"):  # the command line speaks English
                getattr(self, "do_" + action.replace("-", "_"))(options)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        except CalendarError as exc:
            raise CommandError(str(exc)) from None

    def do_fetch_mail(self, options):
        from tqdm import tqdm

        from kequn.service.mailbox import MailboxError, fetch_mail, is_configured

        if not options["url"] and not is_configured():
            raise CommandError("no inbound mailbox: set KEQUN_SERVICE_IMAP_URL or pass --url")
        try:
            with tqdm(unit="message", disable=None) as progress:
                counts = fetch_mail(
                    by=get_operator(options["by"]), url=options["url"], progress=progress
                )
        except MailboxError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(", ".join(f"{k}: {v}" for k, v in counts.items()))

    def do_sla_check(self, options):
        counts = services.check_slas(by=get_operator(options["by"]))
        self.stdout.write(", ".join(f"{k}: {v}" for k, v in counts.items()))

    def do_recompute(self, options):
        done = services.recompute_deadlines(by=get_operator(options["by"]))
        self.stdout.write(f"recomputed the deadlines of {done} open tickets")

    def do_holidays(self, options):
        calendar = BusinessCalendar.objects.filter(name=options["calendar"]).first()
        if calendar is None:
            names = ", ".join(BusinessCalendar.objects.values_list("name", flat=True)) or "none yet"
            raise CommandError(f"no business calendar {options['calendar']!r} (have: {names})")
        path = Path(options["file"])
        try:
            with path.open(encoding="utf-8-sig", newline="") as handle:
                rows = list(csv.DictReader(handle))
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {path}: {exc}") from None
        if rows and "date" not in rows[0]:
            raise CommandError(
                f"{path}: the first line must name the columns date,workday,name,hours"
            )
        try:
            count = services.load_holidays(
                calendar=calendar, rows=rows, by=get_operator(options["by"])
            )
        except ValidationError as exc:
            raise CommandError(f"{path}: " + "; ".join(exc.messages)) from None
        self.stdout.write(f"loaded {count} days into {calendar.name}")

    def do_report(self, options):
        report = selectors.compute_sla_report()
        data = {
            **report.__dict__,
            "first_response_rate": report.first_response_rate,
            "resolution_rate": report.resolution_rate,
        }
        self.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str))
