"""`kequn import customers|orders|products|events FILE`: clean, validate and load a file."""
# ruff: noqa: N999 - the command is `kequn import`, and Django names commands after files

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from kequn.ingest.presets import KINDS, OUTCOME_LABELS, PRESETS, get_field_label
from kequn.ingest.readers import ImportFileError
from kequn.ingest.runs import import_file
from kequn.security.actors import add_operator_argument, get_operator

SHOWN_ROWS = 50


class Command(BaseCommand):
    help = "Import customers, orders, products or events from CSV, Excel, JSON lines or Parquet."

    def add_arguments(self, parser) -> None:
        parser.add_argument("kind", choices=KINDS)
        parser.add_argument("file")
        parser.add_argument("--source", default="", help="name of the system the file comes from")
        parser.add_argument(
            "--mapping",
            default=None,
            help=f'preset ({", ".join(PRESETS)}) or a JSON file {{"columns": {{header: field}}}}',
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="check everything, store nothing"
        )
        parser.add_argument("--json", action="store_true", help="print the summary as JSON")
        parser.add_argument("--batch-size", type=int, default=2000)
        add_operator_argument(parser)

    def handle(self, *args, **options) -> None:
        by = get_operator(options["by"])
        if options["batch_size"] < 1:
            raise CommandError(_("--batch-size must be 1 or more"))
        try:
            summary = import_file(
                options["file"],
                options["kind"],
                source=options["source"],
                mapping=options["mapping"],
                dry_run=options["dry_run"],
                batch_size=options["batch_size"],
                progress=not options["json"] and options["verbosity"] > 0,
                by=by,
            )
        except ImportFileError as exc:
            raise CommandError(str(exc)) from None
        if options["json"]:
            self.stdout.write(json.dumps(summary.to_dict(), ensure_ascii=False))
            return
        prefix = _("dry run, nothing stored: ") if summary.dry_run else ""
        counts = ", ".join(
            f"{OUTCOME_LABELS[name]} {getattr(summary, name)}"
            for name in ("inserted", "updated", "unchanged", "merged", "review", "quarantined")
        )
        self.stdout.write(
            prefix
            + _("%(file)s: %(read)d rows read: %(counts)s")
            % {"file": summary.file, "read": summary.rows_read, "counts": counts}
        )
        for reason, count in sorted(summary.reasons.items(), key=lambda kv: -kv[1]):
            self.stdout.write(f"  {reason}: {count}")
        if summary.dry_run:
            self.write_rows(summary.rows, options["verbosity"])
        if summary.review:
            self.stdout.write(
                _(
                    "Rows sent to review became new people; decide in the back office's review queue."
                )
            )
        if summary.quarantined:
            self.stdout.write(
                _("See them with `kequn quarantine list`; fix and `kequn quarantine retry`.")
            )

    def write_rows(self, rows: list[dict], verbosity: int) -> None:
        """Print what would happen to each row (all with -v 2, else the first SHOWN_ROWS)."""
        shown = rows if verbosity > 1 else rows[:SHOWN_ROWS]
        for row in shown:
            who = _("new") if row["new"] else f"#{row['customer']}" if row["customer"] else ""
            changes = "; ".join(
                f"{get_field_label(name)}: {old} → {new}" if old not in ("", None)
                else f"{get_field_label(name)}: {new}"
                for name, old, new in row["changes"]
            )  # fmt: skip
            parts = [f"  {_('row %(n)d') % {'n': row['row']}}: {OUTCOME_LABELS[row['outcome']]}"]
            parts += [p for p in (f"{who} {row['name']}".strip(), changes) if p]
            if row["note"]:
                field = f"{get_field_label(row['field'])}: " if row["field"] else ""
                parts.append(f"({field}{row['note']})")
            self.stdout.write(
                " — ".join([*parts[:1], " ".join(parts[1:])]) if parts[1:] else parts[0]
            )
        if len(rows) > len(shown):
            self.stdout.write(
                _("  … %(n)d more rows (-v 2 shows every row, --json gives them all)")
                % {"n": len(rows) - len(shown)}
            )
