"""Running an import: batches that commit one by one, dry runs, progress, the run's record.

Every batch commits on its own and is safe to repeat: an import killed midway (even by
kill -9) is run again from the start, and rows already stored come out unchanged.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import nullcontext, suppress
from dataclasses import asdict, dataclass, field
from typing import TypeVar

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from tqdm import tqdm

from kequn.commerce.hooks import writing_many_orders
from kequn.ingest import stale
from kequn.ingest.importers.base import IMPORTERS, OUTCOMES, Rejection, get_importer
from kequn.ingest.models import ImportRun
from kequn.ingest.presets import Mapping, resolve_mapping
from kequn.ingest.quarantine import store_rejections
from kequn.ingest.readers import FileInfo, ImportFileError, iter_rows, open_file
from kequn.security.actors import Actor, get_user_or_none
from kequn.security.audit import services as audit

T = TypeVar("T")


@dataclass
class Summary:
    """What an import did; the counts add up to rows_read."""

    run_id: int | None
    file: str
    kind: str
    dry_run: bool = False
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    merged: int = 0
    review: int = 0
    quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    # What happened to each row (the first PREVIEW_ROWS): shown by the dry run.
    rows: list[dict] = field(default_factory=list)

    def add(self, outcome: str, n: int = 1) -> None:
        setattr(self, outcome, getattr(self, outcome) + n)

    def to_dict(self) -> dict:
        return asdict(self)


def _chunks(iterable: Iterable[T], size: int) -> Iterator[list[T]]:
    batch = []
    for item in iterable:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _count(
    summary: Summary, outcomes: dict[int, str], rejections: list[Rejection], n_rows: int
) -> Summary:
    delta = Summary(run_id=summary.run_id, file=summary.file, kind=summary.kind)
    delta.rows_read = n_rows
    for outcome in outcomes.values():
        delta.add(outcome)
    for rejection in rejections:
        delta.quarantined += 1
        delta.reasons[rejection.reason] = delta.reasons.get(rejection.reason, 0) + 1
    return delta


def _merge_into(summary: Summary, delta: Summary) -> None:
    for name in ("rows_read", "quarantined", *OUTCOMES):
        summary.add(name, getattr(delta, name))
    for reason, n in delta.reasons.items():
        summary.reasons[reason] = summary.reasons.get(reason, 0) + n


def inspect_file(
    path: str | os.PathLike, kind: str, *, source: str = "", mapping: str | None = None
) -> tuple[FileInfo, Mapping]:
    """Open a file and work out its column mapping, without importing anything."""
    if kind not in IMPORTERS:
        raise ImportFileError(
            _("unknown kind %(k)r: use customers, orders, products or events") % {"k": kind}
        )
    info = open_file(path)
    return info, resolve_mapping(info.headers, kind, mapping, source, info.name)


def import_file(
    path: str | os.PathLike,
    kind: str,
    *,
    source: str = "",
    mapping: str | Mapping | None = None,
    dry_run: bool = False,
    batch_size: int = 2000,
    progress: bool = False,
    by: Actor,
    stop_after_batches: int | None = None,
    display_name: str = "",
) -> Summary:
    """Import a file batch by batch; every batch commits on its own and is safe to repeat."""
    if isinstance(mapping, Mapping):
        info = open_file(path)
        resolved = mapping
    else:
        info, resolved = inspect_file(path, kind, source=source, mapping=mapping)
    file_name = display_name or info.name
    stale.fail_stale_runs()  # imports killed earlier stop showing as running
    run = ImportRun.objects.create(
        kind=kind, file_name=file_name[:255], checksum=info.checksum, source=resolved.system[:50],
        mapping=resolved.to_json(), started_by=get_user_or_none(by),
        status=ImportRun.Status.DRY_RUN if dry_run else ImportRun.Status.RUNNING,
    )  # fmt: skip
    summary = Summary(run_id=run.pk, file=file_name, kind=kind, dry_run=dry_run)
    importer = get_importer(kind)(
        resolved, info.checksum, actor=f"import #{run.pk} {file_name}"[:100], by=by
    )
    bar = tqdm(
        total=info.total_rows,
        unit=" rows",
        file=sys.stderr,
        disable=not progress,
        desc=file_name[:30],
    )

    def record_on_trail(status: str) -> None:
        # One audit entry per import job, not one per row (row-level events are suppressed).
        audit.record_event(
            audit.IMPORT,
            actor=by,
            target=run,
            detail={
                "kind": kind,
                "status": status,
                "dry_run": dry_run,
                **{n: getattr(summary, n) for n in ("rows_read", "quarantined", *OUTCOMES)},
            },
        )

    if not dry_run:
        # Written before any row: an import killed midway has committed batches on the trail.
        record_on_trail(ImportRun.Status.RUNNING)
        stale.beat(run.pk)
    try:
        with (
            audit.suppress_model_events(),
            # Outside a dry run's transaction: its finishers run after the rollback.
            writing_many_orders(by=by),
            transaction.atomic() if dry_run else nullcontext(),
        ):
            for number, batch in enumerate(_chunks(iter_rows(info), batch_size), start=1):
                if stop_after_batches is not None and number > stop_after_batches:
                    raise ImportInterruptedError(f"stopped after {stop_after_batches} batches")
                with transaction.atomic():
                    outcomes, rejections = importer.process(batch)
                    delta = _count(summary, outcomes, rejections, len(batch))
                    store_rejections(
                        run=run, file_name=file_name, checksum=info.checksum, mapping=resolved,
                        rejections=rejections,
                    )  # fmt: skip
                    if not dry_run:
                        _add_to_run(run.pk, delta)
                        stale.beat(run.pk)
                _merge_into(summary, delta)
                bar.update(len(batch))
            if dry_run:
                transaction.set_rollback(True)
    except BaseException as exc:
        ImportRun.objects.filter(pk=run.pk).update(
            status=ImportRun.Status.FAILED,
            error=str(exc)[:2000] or type(exc).__name__,
            finished_at=timezone.now(),
        )
        with suppress(Exception):  # never hide the import's own error
            record_on_trail(ImportRun.Status.FAILED)
        raise
    finally:
        bar.close()
        stale.forget(run.pk)
    summary.rows = sorted(importer.report.rows, key=lambda r: r["row"])
    ImportRun.objects.filter(pk=run.pk).update(
        status=ImportRun.Status.DRY_RUN if dry_run else ImportRun.Status.FINISHED,
        finished_at=timezone.now(),
        # A dry run's ids were rolled back with everything else: nothing to link to.
        records={} if dry_run else importer.report.ids,
        **({"rows_read": summary.rows_read, "inserted": summary.inserted, "updated": summary.updated,
            "unchanged": summary.unchanged, "merged": summary.merged, "review": summary.review,
            "quarantined": summary.quarantined, "reasons": summary.reasons} if dry_run else {}),
    )  # fmt: skip
    record_on_trail(ImportRun.Status.DRY_RUN if dry_run else ImportRun.Status.FINISHED)
    return summary


class ImportInterruptedError(RuntimeError):
    """Raised on purpose in tests to stop an import between batches."""


def _add_to_run(run_id: int, delta: Summary) -> None:
    run = ImportRun.objects.select_for_update().get(pk=run_id)
    for name in ("rows_read", "quarantined", *OUTCOMES):
        setattr(run, name, getattr(run, name) + getattr(delta, name))
    reasons = dict(run.reasons)
    for reason, n in delta.reasons.items():
        reasons[reason] = reasons.get(reason, 0) + n
    run.reasons = reasons
    run.save(update_fields=["rows_read", "quarantined", *OUTCOMES, "reasons"])
