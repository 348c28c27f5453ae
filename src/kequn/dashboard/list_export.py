"""Export the rows of the customer or order list, as filtered on the page, to CSV or Excel.

Rows are read in id batches and written out as they come: a CSV download streams while it
is produced, an Excel file is written row by row to a temporary file (openpyxl's write-only
mode keeps neither rows nor a string table in memory) and then sent in chunks. Personal
fields pass through the role-aware masking hook of the segment export.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from openpyxl import Workbook

from kequn.customers.models import Customer
from kequn.privacy.services import filter_marketable
from kequn.security.formulas import escape_formula, escape_row, make_sheet_title
from kequn.security.permissions import EXPORT_WITHOUT_CONSENT, has_permission
from kequn.segments.export import COLUMNS as CUSTOMER_COLUMNS
from kequn.segments.export import iter_customer_rows, mask_personal_fields

PERMISSION = "dashboard.export_lists"
BATCH = 2_000
FLUSH_ROWS = 500
FORMATS = ("csv", "xlsx")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

ORDER_COLUMNS = [
    "number",
    "customer_id",
    "customer",
    "channel",
    "status",
    "currency",
    "total_amount",
    "discount_amount",
    "ordered_at",
]


def iter_order_rows(orders: QuerySet) -> Iterator[dict]:
    """Yield one plain row per order of a queryset, in id batches (keyset paging)."""
    # Orders of customers restricted on a data-subject request are not exported (as customers).
    orders = orders.exclude(customer__processing_restricted=True)
    orders = orders.select_related("customer", "channel").order_by("id")
    last_id = 0
    while True:
        batch = list(orders.filter(id__gt=last_id)[:BATCH])
        if not batch:
            return
        for order in batch:
            yield {
                "number": order.number,
                "customer_id": order.customer_id or "",
                "customer": order.customer.name if order.customer_id else "",
                "channel": order.channel.name if order.channel_id else "",
                "status": order.status,
                "currency": order.currency,
                "total_amount": float(order.total_amount),
                "discount_amount": float(order.discount_amount),
                "ordered_at": timezone.localtime(order.ordered_at).replace(tzinfo=None),
            }
        last_id = batch[-1].id


@dataclass(frozen=True)
class ExportableList:
    """A list page that can be exported: its columns and how to read its rows."""

    columns: list[str]
    iter_rows: Callable[[QuerySet], Iterator[dict]]


EXPORTABLE = {
    "customers.customer": ExportableList(CUSTOMER_COLUMNS, iter_customer_rows),
    "commerce.order": ExportableList(ORDER_COLUMNS, iter_order_rows),
}


def restrict_rows(user: Any, model: Any, queryset: QuerySet, params: Any) -> QuerySet:
    """Return the rows a list export may write for this user.

    A customer list filtered to a segment (`?segment=ID`) is that segment's member list: a user
    who may export segments only for marketing (the marketing role) gets only the members whose
    marketing consent is in force now, as from the segment export itself.
    """
    if model is not Customer or not str(params.get("segment") or "").strip():
        return queryset
    if has_permission(user, EXPORT_WITHOUT_CONSENT):
        return queryset
    return filter_marketable(queryset)


def get_exportable(label: str) -> ExportableList | None:
    """Return how to export the list of a model ("app_label.model_name"), if it can be."""
    return EXPORTABLE.get(label)


@dataclass
class ExportCount:
    """Rows written so far; read after the download finished."""

    rows: int = 0
    finished: bool = False


def iter_masked_rows(
    user: Any, spec: ExportableList, queryset: QuerySet, count: ExportCount
) -> Iterator[list[Any]]:
    """Yield each row's values in column order, personal fields masked for this user."""
    for row in spec.iter_rows(queryset):
        masked = mask_personal_fields(user, row)
        count.rows += 1
        yield [masked.get(column, "") for column in spec.columns]
    count.finished = True


def _csv_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return escape_formula(value)


def stream_csv(columns: list[str], rows: Iterator[list[Any]]) -> Iterator[str]:
    """Yield CSV text piece by piece: a UTF-8 BOM (for Excel), the header, then the rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    yield "\ufeff"
    writer.writerow(columns)
    for n, row in enumerate(rows, start=1):
        writer.writerow([_csv_value(v) for v in row])
        if n % FLUSH_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def write_xlsx(title: str, columns: list[str], rows: Iterator[list[Any]]) -> Any:
    """Write the rows to an Excel file on disk (constant memory); return it open and rewound."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(make_sheet_title(title, default="rows"))
    sheet.append(columns)
    for row in rows:
        sheet.append(escape_row(row))
    # The response closes (and so deletes) the file after sending it.
    out = tempfile.TemporaryFile()  # noqa: SIM115
    book.save(out)
    out.seek(0)
    return out
