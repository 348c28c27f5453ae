"""`kequn resolve run|evaluate|undo|report`: find duplicate customers, measure, undo merges."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Count
from django.utils.translation import gettext as _

from kequn.ingest import duplicates
from kequn.ingest.merging import resolve_probabilistic, undo_merge
from kequn.ingest.models import MatchCandidate, Merge
from kequn.ingest.runs import import_file
from kequn.security.actors import (
    Actor,
    add_operator_argument,
    get_operator,
)


class Command(BaseCommand):
    help = "Merge duplicate customers (Splink), evaluate on corrupted duplicates, undo merges."

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["run", "evaluate", "undo", "report"])
        parser.add_argument("merge_ids", nargs="*", type=int, help="undo: merge ids")
        parser.add_argument("--upper", type=float, default=0.95, help="auto-merge at or above")
        parser.add_argument("--lower", type=float, default=0.60, help="review queue at or above")
        parser.add_argument("--people", type=int, default=2000, help="evaluate: base records")
        parser.add_argument(
            "--duplicates", type=int, default=400, help="evaluate: corrupted copies"
        )
        parser.add_argument(
            "--from-db", action="store_true", help="evaluate: copy stored customers"
        )
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--keep", action="store_true", help="evaluate: keep the data")
        parser.add_argument("--json", action="store_true")
        add_operator_argument(parser)

    def handle(self, *args, **options) -> None:
        by = get_operator(options["by"])
        if not 0 < options["lower"] <= options["upper"] <= 1:
            raise CommandError(_("need 0 < --lower <= --upper <= 1"))
        action = options["action"]
        if action == "run":
            summary = resolve_probabilistic(upper=options["upper"], lower=options["lower"], by=by)
            self._print(summary.to_dict(), options)
        elif action == "undo":
            if not options["merge_ids"]:
                raise CommandError(
                    _("give the id of the merge to undo (see `kequn resolve report`)")
                )
            for merge_id in sorted(options["merge_ids"], reverse=True):
                merge = Merge.objects.filter(pk=merge_id).first()
                if merge is None:
                    raise CommandError(_("no merge #%(id)s") % {"id": merge_id})
                try:
                    undo_merge(merge, by=by)
                except ValidationError as exc:
                    raise CommandError("; ".join(exc.messages)) from None
                self.stdout.write(_("undone: %(m)s") % {"m": merge})
        elif action == "report":
            data = {
                "merges_by_rule": dict(
                    Merge.objects.filter(undone_at__isnull=True)
                    .values_list("rule")
                    .annotate(n=Count("pk"))
                ),
                "undone": Merge.objects.filter(undone_at__isnull=False).count(),
                "review_queue": dict(
                    MatchCandidate.objects.values_list("status").annotate(n=Count("pk"))
                ),
            }
            self._print(data, options)
        else:
            self._print(self._evaluate(options, by), options)

    def _evaluate(self, options: dict, by: Actor) -> dict:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp, transaction.atomic():
            folder = Path(tmp)
            if options["from_db"]:
                people, base_system = duplicates.load_people_from_db(options["people"]), None
                if not people:
                    raise CommandError(_("no customers stored: run `kequn demo` or drop --from-db"))
            else:
                people, base_system = (
                    duplicates.make_people(options["people"], options["seed"]),
                    "eval-base",
                )
                import_file(
                    duplicates.write_people(people, folder / "base.csv"),
                    "customers",
                    source=base_system,
                    by=by,
                )
            duplicates.emit_duplicates(
                people,
                folder / "dups.csv",
                folder / "truth.csv",
                options["duplicates"],
                options["seed"] + 1,
            )
            imported = import_file(folder / "dups.csv", "customers", source="eval-dup", by=by)
            resolved = resolve_probabilistic(upper=options["upper"], lower=options["lower"], by=by)
            scores = duplicates.evaluate(people, folder / "truth.csv", "eval-dup", base_system)
            if not options["keep"]:
                transaction.set_rollback(True)
        return {
            "people": len(people), "duplicates": options["duplicates"],
            "deterministic_merges_at_import": imported.unchanged + imported.updated + imported.merged,
            "probabilistic_merges": resolved.merged, "review_queue": resolved.queued,
            "precision": round(scores.precision, 4), "recall": round(scores.recall, 4), "f1": round(scores.f1, 4),
            "seconds": round(time.perf_counter() - started, 1),
        }  # fmt: skip

    def _print(self, data: dict, options) -> None:
        if options["json"]:
            self.stdout.write(json.dumps(data, ensure_ascii=False))
        else:
            for key, value in data.items():
                self.stdout.write(f"{key}: {value}")
