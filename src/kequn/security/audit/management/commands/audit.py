"""kequn audit verify | list: check the HMAC chain of the audit trail, or read it in the terminal."""

from __future__ import annotations

import json
import sys
from datetime import datetime, time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from tqdm import tqdm

from kequn.conf import ConfigError
from kequn.security.audit import head, services
from kequn.security.audit.models import AuditEntry


def parse_head(text: str) -> tuple[int, str]:
    """Parse --head SEQUENCE:MAC."""
    try:
        return head.parse_head(text)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def parse_since(text: str) -> datetime:
    """Parse --since as a date (local midnight) or an ISO date and time."""
    moment = parse_datetime(text)
    if moment is None and (day := parse_date(text)):
        moment = datetime.combine(day, time())
    if moment is None:
        raise CommandError(f"--since {text!r} is not a date (YYYY-MM-DD) or ISO date and time")
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


class Command(BaseCommand):
    help = "Verify the audit trail's HMAC chain, or list entries."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="subcommand", required=True)
        verify = sub.add_parser("verify", help="walk the chain; name the first broken entry")
        verify.add_argument("--batch-size", type=int, default=2000, help="entries read at a time")
        verify.add_argument(
            "--head",
            default=None,
            help="SEQUENCE:MAC printed by an earlier verify; catches entries cut off the end",
        )
        listing = sub.add_parser("list", help="list entries, newest first")
        listing.add_argument("--actor", default=None, help="user name of whoever acted")
        listing.add_argument("--action", default=None, help=", ".join(services.ACTION_LABELS))
        listing.add_argument("--since", default=None, help="YYYY-MM-DD or ISO date and time")
        listing.add_argument("--target", default=None, help="target id, e.g. a customer id")
        listing.add_argument("--limit", type=int, default=50, help="at most this many [50]")

    def handle(self, *args, subcommand: str, **options):
        if subcommand == "verify":
            self.verify(options["batch_size"], options["head"])
        else:
            self.list_entries(options)

    def verify(self, batch_size: int, given_head: str | None) -> None:
        if batch_size <= 0:
            raise CommandError("--batch-size must be a positive number")
        try:
            # Without --head, the head an earlier verify pinned outside the database is checked.
            expect_head = parse_head(given_head) if given_head else head.read_pinned_head()
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        total = AuditEntry.objects.count()
        with tqdm(total=total, unit=" entries", file=sys.stderr, disable=total < 10_000) as bar:
            result = services.verify_chain(batch_size, progress=bar.update, expect_head=expect_head)
        services.record_event(
            services.AUDIT_VERIFY,
            detail={
                "count": result.count,
                "ok": result.ok,
                "broken_at": result.problem.sequence if result.problem else None,
            },
        )
        if not result.ok:
            hint = ""
            if expect_head is not None and not given_head:
                hint = (
                    f" (the head was pinned in {head.get_head_file()}; if an older backup was "
                    "restored on purpose, delete that file and verify again)"
                )
            raise CommandError(
                f"audit chain broken at #{result.problem.sequence} "
                f"({result.problem.kind}): {result.problem.message}{hint}"
            )
        line = f"OK: {result.count} entries, chain intact; head {result.head_sequence}:{result.head_mac}"
        try:
            pinned = head.pin_head(result.head_sequence, result.head_mac) if result.count else None
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        if pinned is not None:
            self.stdout.write(f"{line} (pinned in {pinned}: later verifies check it)")
        elif result.count:
            self.stdout.write(
                f"{line} (note it in an external log and check it later with --head, or set "
                "KEQUN_AUDIT_HEAD_FILE to pin it automatically)"
            )
        else:
            self.stdout.write(line)

    def list_entries(self, options: dict) -> None:
        if options["limit"] <= 0:
            raise CommandError("--limit must be a positive number")
        if options["action"] and options["action"] not in services.ACTION_LABELS:
            raise CommandError(
                f"--action {options['action']!r} is not one of: "
                + ", ".join(services.ACTION_LABELS)
            )
        entries = AuditEntry.objects.order_by("-sequence")
        if options["actor"]:
            entries = entries.filter(actor_username=options["actor"])
        if options["action"]:
            entries = entries.filter(action=options["action"])
        if options["since"]:
            entries = entries.filter(created_at__gte=parse_since(options["since"]))
        if options["target"]:
            entries = entries.filter(target_id=options["target"])
        for entry in entries[: options["limit"]]:
            when = timezone.localtime(entry.created_at).strftime("%Y-%m-%d %H:%M:%S")
            target = f"{entry.target_type}:{entry.target_id}" if entry.target_type else "-"
            detail = json.dumps(entry.detail, ensure_ascii=False, sort_keys=True)
            self.stdout.write(
                f"#{entry.sequence}\t{when}\t{entry.actor_username or '-'}\t{entry.action}\t"
                f"{target}\t{entry.ip_address or '-'}\t{detail}"
            )
