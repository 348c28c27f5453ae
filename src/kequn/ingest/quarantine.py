"""Rows an import rejected: keeping them, fixing, retrying, discarding and exporting them."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from typing import TextIO

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from kequn.ingest.importers.base import Rejection, get_importer
from kequn.ingest.models import ImportRun, QuarantinedRow
from kequn.ingest.presets import Mapping
from kequn.security.actors import Actor
from kequn.security.audit import services as audit
from kequn.security.formulas import escape_row
from kequn.security.masking import is_target_masked, mask_mapped_values

# A kept cell longer than this is cut, so one bad file cannot bloat the quarantine.
KEEP_CHARS = 1_000


def _stored_values(row: dict[str, str]) -> dict[str, str]:
    """Return the row as kept in quarantine; huge cells are cut so one bad file can't bloat it."""
    kept = {}
    for key, value in row.items():
        if len(value) > KEEP_CHARS:
            value = value[:KEEP_CHARS] + f"…[{len(value) - KEEP_CHARS} more characters cut]"
        kept[key] = value
    return kept


def store_rejections(
    *,
    run: ImportRun | None,
    file_name: str,
    checksum: str,
    mapping: Mapping,
    rejections: list[Rejection],
) -> None:
    """Keep the rejected rows of an import batch, with why, for a person to fix or discard."""
    QuarantinedRow.objects.bulk_create(
        [
            QuarantinedRow(
                run=run,
                kind=mapping.kind,
                file_name=file_name[:255],
                checksum=checksum,
                row_number=r.row_number,
                field=r.field[:50],
                reason=r.reason,
                message=r.message[:2000],
                values=_stored_values(r.values),
                mapping=mapping.to_json(),
            )
            for r in rejections
        ],
        ignore_conflicts=True,
    )


def _record(action: str, by: Actor | None, detail: dict) -> None:
    audit.record_event(
        audit.CHANGE,
        actor=by,
        target_type="ingest.quarantinedrow",
        detail={"action": action, **detail},
    )


def retry_quarantined_rows(rows: Iterable[QuarantinedRow], *, by: Actor) -> dict[str, int]:
    """Import quarantined rows again (after their values were fixed); return counts."""
    counts = {"resolved": 0, "still_rejected": 0}
    groups: dict[tuple[str, str], list[QuarantinedRow]] = {}
    for row in rows:
        if row.status != QuarantinedRow.Status.OPEN:
            continue
        groups.setdefault((row.checksum, json.dumps(row.mapping, sort_keys=True)), []).append(row)
    for (checksum, _m), items in groups.items():
        mapping = Mapping.from_json(items[0].mapping)
        importer = get_importer(mapping.kind)(
            mapping, checksum, actor=f"quarantine retry {items[0].file_name}"[:100], by=by
        )
        by_number = {item.row_number: item for item in items}
        with transaction.atomic():
            outcomes, rejections = importer.process(
                [(i.row_number, {k: str(v) for k, v in i.values.items()}) for i in items]
            )
            still = 0
            for rejection in rejections:
                item = by_number[rejection.row_number]
                item.field, item.reason, item.message = (
                    rejection.field[:50],
                    rejection.reason,
                    rejection.message[:2000],
                )
                item.save(update_fields=["field", "reason", "message"])
                still += 1
            done = [n for n in outcomes if n in by_number]
            QuarantinedRow.objects.filter(pk__in=[by_number[n].pk for n in done]).update(
                status=QuarantinedRow.Status.RESOLVED, resolved_at=timezone.now()
            )
            _record(
                "retry",
                by,
                {"kind": mapping.kind, "rows": len(items), "resolved": len(done), "still": still},
            )
        counts["resolved"] += len(done)
        counts["still_rejected"] += still
    return counts


@transaction.atomic
def discard_quarantined_rows(rows: Iterable[QuarantinedRow], *, by: Actor) -> int:
    """Mark quarantined rows as deliberately not imported."""
    ids = [r.pk for r in rows if r.status == QuarantinedRow.Status.OPEN]
    count = QuarantinedRow.objects.filter(pk__in=ids).update(
        status=QuarantinedRow.Status.DISCARDED, resolved_at=timezone.now()
    )
    if count:
        _record("discard", by, {"rows": count})
    return count


@transaction.atomic
def update_quarantined_values(
    row: QuarantinedRow, values: dict[str, str], *, by: Actor
) -> QuarantinedRow:
    """Replace the stored values of a quarantined row (the fix before a retry)."""
    row.values = {str(k): "" if v is None else str(v) for k, v in values.items()}
    row.save(update_fields=["values"])
    # Column names only: the values are personal data.
    _record("set_values", by, {"row": row.pk, "columns": sorted(row.values)})
    return row


def describe_quarantine_message(row: QuarantinedRow, groups: frozenset[str] | None = None) -> str:
    """Return a row's message, or a neutral one when it may quote a value hidden from `groups`."""
    if groups is None or not is_target_masked(groups, row.field):
        return row.message
    return _("%(reason)s in %(field)s (the value is hidden from your role)") % {
        "reason": row.reason,
        "field": row.field,
    }


def write_quarantine_csv(
    rows: Iterable[QuarantinedRow], out: TextIO, groups: frozenset[str] | None = None
) -> int:
    """Write quarantined rows (id, file, row, field, reason, message, original values) as CSV.

    With `groups` (the viewer's unmasked field groups), personal values outside them are masked.
    """
    writer = csv.writer(out)
    writer.writerow(["id", "file", "row", "field", "reason", "message", "status", "values"])
    count = 0
    for row in rows:
        values = row.values
        if groups is not None:
            values = mask_mapped_values(groups, values, (row.mapping or {}).get("columns", {}))
        writer.writerow(escape_row(
            [row.pk, row.file_name, row.row_number, row.field, row.reason,
             describe_quarantine_message(row, groups), row.status,
             json.dumps(values, ensure_ascii=False)]
        ))  # fmt: skip
        count += 1
    return count
