"""Keep each customer's purchase summary current from the journal of changed customers.

Triggers on the orders table (migration 0003) list every customer whose orders change in
SummaryJournal. update_summaries re-reads those customers' orders only, stores their
summaries and removes the journal entries it applied, all in one transaction: a crash
before it commits leaves the journal as it was, and the next refresh applies it again.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from django.db import connections, transaction

from kequn.analytics.summaries import SUMMARY_COLUMNS, summarize_purchases
from kequn.db import clear_table, insert_columns
from kequn.scoring.loading import load_purchases
from kequn.scoring.models import PurchaseSummary, SummaryJournal

# Rows per statement when journal entries and summaries are deleted by key.
DELETE_BATCH = 5_000
# Summaries read per statement on SQLite (as one CSV blob).
READ_WINDOW = 100_000
SUMMARY_SCHEMA = pa.schema(
    [
        (
            name,
            pa.int64()
            if name in ("customer_id", "first_day", "last_day", "latest_at", "n_days", "n_rows")
            else pa.float64(),
        )
        for name in SUMMARY_COLUMNS
    ]
)


def update_summaries(*, full: bool = False, using: str = "default") -> int:
    """Bring PurchaseSummary up to date; return how many customers' orders were read.

    Only customers in the journal are read again, unless ``full``: then every summary is
    recomputed from all orders (the journal is applied as well).
    """
    # Read before the orders: an order changed after this point bumps or adds an entry
    # that this run does not delete, so the next refresh reads that customer again.
    journal = pd.DataFrame(
        list(SummaryJournal.objects.using(using).values_list("customer_id", "version")),
        columns=["customer_id", "version"],
        dtype=np.int64,
    )
    if not full and journal.empty:
        return 0
    ids = None if full else np.unique(journal["customer_id"].to_numpy(np.int64))
    purchases = load_purchases(using, customer_ids=ids)
    stats = summarize_purchases(purchases)
    del purchases
    with transaction.atomic(using=using):
        if ids is None:
            clear_table(PurchaseSummary, using=using)
        else:
            _delete_summaries(ids, using)
        insert_columns(
            PurchaseSummary,
            {name: _column(stats[name]) for name in SUMMARY_COLUMNS},
            using=using,
        )
        _delete_journal(journal, using)
    return len(stats) if ids is None else len(ids)


def _column(values: pd.Series) -> pa.Array:
    """Return a summary column as Arrow, NaN as NULL."""
    if values.dtype.kind == "f":
        return pa.array(values.to_numpy(float), pa.float64(), from_pandas=True)
    return pa.array(values.to_numpy(np.int64), pa.int64())


def _delete_summaries(ids: np.ndarray, using: str) -> None:
    """Delete the summaries of the given customers."""
    for start in range(0, len(ids), DELETE_BATCH):
        batch = ids[start : start + DELETE_BATCH].tolist()
        PurchaseSummary.objects.using(using).filter(customer_id__in=batch).delete()


def _delete_journal(journal: pd.DataFrame, using: str) -> None:
    """Delete exactly the (customer, version) entries read: newer versions stay."""
    if journal.empty:
        return
    connection = connections[using]
    table = connection.ops.quote_name(SummaryJournal._meta.db_table)
    customers = journal["customer_id"].to_numpy(np.int64)
    versions = journal["version"].to_numpy(np.int64)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"DELETE FROM {table} AS j USING unnest(%s::bigint[], %s::bigint[]) AS r(c, v) "  # noqa: S608 -- table from model metadata
                "WHERE j.customer_id = r.c AND j.version = r.v",
                [customers.tolist(), versions.tolist()],
            )
            return
        cursor.executemany(
            f"DELETE FROM {table} WHERE customer_id = %s AND version = %s",  # noqa: S608 -- table from model metadata
            list(zip(customers.tolist(), versions.tolist(), strict=True)),
        )


def load_summaries(using: str = "default") -> pd.DataFrame:
    """Return every stored summary (SUMMARY_COLUMNS), ordered by customer."""
    connection = connections[using]
    connection.ensure_connection()
    quote = connection.ops.quote_name
    table = quote(PurchaseSummary._meta.db_table)
    if connection.vendor == "postgresql":
        from kequn.db import read_arrow  # noqa: PLC0415 -- COPY on PostgreSQL only

        columns = ", ".join(quote(c) for c in SUMMARY_COLUMNS)
        sql = f"SELECT {columns} FROM {table} ORDER BY customer_id"  # noqa: S608 -- names from model metadata
        return read_arrow(sql, SUMMARY_SCHEMA, using=using).to_pandas()
    # SQLite: one CSV blob per window of ids, parsed by Arrow (a cursor's tuples cost
    # seconds per million rows). NULL prints as an empty field, which Arrow reads as null.
    row = " || ',' || ".join(f"ifnull({quote(c)}, '')" for c in SUMMARY_COLUMNS)
    window_sql = (
        f"SELECT CAST(group_concat({row}, char(10)) AS BLOB) FROM "  # noqa: S608 -- names from model metadata
        f"(SELECT * FROM {table} WHERE customer_id >= ? AND customer_id < ? ORDER BY customer_id)"
    )
    raw = connection.connection
    low, high = raw.execute(f"SELECT min(customer_id), max(customer_id) FROM {table}").fetchone()  # noqa: S608 -- table from model metadata
    read = pacsv.ReadOptions(column_names=SUMMARY_SCHEMA.names, use_threads=False)
    convert = pacsv.ConvertOptions(column_types=SUMMARY_SCHEMA)
    parts = []
    for first in range(low or 0, (high or -1) + 1, READ_WINDOW):
        (blob,) = raw.execute(window_sql, [first, first + READ_WINDOW]).fetchone()
        if blob:
            parts.append(pacsv.read_csv(pa.BufferReader(blob), read, convert_options=convert))
    if not parts:
        return SUMMARY_SCHEMA.empty_table().to_pandas()
    return pa.concat_tables(parts).to_pandas()
