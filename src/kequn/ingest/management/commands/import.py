"""`kequn import customers|orders|products|events FILE`: clean, validate and load a file."""
# ruff: noqa: N999 - the command is `kequn import`, and Django names commands after files

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from kequn.ingest.presets import KINDS, PRESETS
from kequn.ingest.readers import ImportFileError
from kequn.ingest.services import import_file


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

    def handle(self, *args, **options) -> None:
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
            )
        except ImportFileError as exc:
            raise CommandError(str(exc)) from None
        if options["json"]:
            self.stdout.write(json.dumps(summary.to_dict(), ensure_ascii=False))
            return
        prefix = _("dry run, nothing stored: ") if summary.dry_run else ""
        self.stdout.write(
            prefix
            + _(
                "%(file)s: %(read)d rows read, %(ins)d inserted, %(upd)d updated, "
                "%(same)d unchanged, %(mrg)d merged, %(q)d quarantined"
            )
            % {
                "file": summary.file,
                "read": summary.rows_read,
                "ins": summary.inserted,
                "upd": summary.updated,
                "same": summary.unchanged,
                "mrg": summary.merged,
                "q": summary.quarantined,
            }
        )
        for reason, count in sorted(summary.reasons.items(), key=lambda kv: -kv[1]):
            self.stdout.write(f"  {reason}: {count}")
        if summary.quarantined:
            self.stdout.write(
                _("See them with `kequn quarantine list`; fix and `kequn quarantine retry`.")
            )
