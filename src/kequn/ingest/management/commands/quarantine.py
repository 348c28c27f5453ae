"""`kequn quarantine list|export|retry|discard`: look at rejected rows, fix and re-import them."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from kequn.ingest.models import QuarantinedRow
from kequn.ingest.quarantine import (
    discard_quarantined_rows,
    retry_quarantined_rows,
    update_quarantined_values,
    write_quarantine_csv,
)
from kequn.security.actors import add_operator_argument, get_operator


class Command(BaseCommand):
    help = "List, export, fix, retry or discard quarantined import rows."

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["list", "export", "set", "retry", "discard"])
        parser.add_argument("ids", nargs="*", type=int, help="row ids (default: all open rows)")
        parser.add_argument("--file", default="", help="only rows of this file name")
        parser.add_argument("--reason", default="", help="only rows with this reason")
        parser.add_argument("--output", default="-", help="CSV file for export (- = stdout)")
        parser.add_argument("--value", action="append", default=[], help="set: COLUMN=VALUE")
        add_operator_argument(parser)

    def handle(self, *args, **options) -> None:
        by = get_operator(options["by"])
        rows = QuarantinedRow.objects.filter(status=QuarantinedRow.Status.OPEN)
        if options["ids"]:
            rows = QuarantinedRow.objects.filter(pk__in=options["ids"])
        if options["file"]:
            rows = rows.filter(file_name=options["file"])
        if options["reason"]:
            rows = rows.filter(reason=options["reason"])
        action = options["action"]
        if action == "list":
            for row in rows.order_by("file_name", "row_number")[:1000]:
                self.stdout.write(
                    f"#{row.pk} {row.file_name}:{row.row_number} [{row.status}] "
                    f"{row.field or '-'} {row.reason}: {row.message}"
                )
        elif action == "export":
            if options["output"] == "-":
                write_quarantine_csv(rows, self.stdout)
            else:
                with open(options["output"], "w", encoding="utf-8-sig", newline="") as fh:
                    write_quarantine_csv(rows, fh)
        elif action == "set":
            if len(options["ids"]) != 1 or not options["value"]:
                raise CommandError(_("set needs exactly one row id and --value COLUMN=VALUE"))
            row = rows.first()
            if row is None:
                raise CommandError(_("no quarantined row #%(id)s") % {"id": options["ids"][0]})
            values = dict(row.values)
            for item in options["value"]:
                column, sep, value = item.partition("=")
                if not sep:
                    raise CommandError(
                        _("--value must look like COLUMN=VALUE, got %(v)r") % {"v": item}
                    )
                values[column] = value
            update_quarantined_values(row, values, by=by)
            self.stdout.write(json.dumps(values, ensure_ascii=False))
        elif action == "retry":
            counts = retry_quarantined_rows(rows, by=by)
            self.stdout.write(
                _("%(ok)d rows imported, %(bad)d still rejected")
                % {"ok": counts["resolved"], "bad": counts["still_rejected"]}
            )
        else:
            count = discard_quarantined_rows(rows, by=by)
            self.stdout.write(_("%(n)d rows discarded") % {"n": count})
