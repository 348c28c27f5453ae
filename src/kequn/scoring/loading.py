"""Read purchases and customer ids out of the store in bulk, as Arrow tables."""

from __future__ import annotations

import io
from datetime import UTC

import pyarrow as pa
import pyarrow.csv as pacsv
from django.db import connections

from kequn.commerce.models import Order
from kequn.customers.models import Customer

CHUNK_ROWS = 200_000


def _purchases_sql() -> tuple[str, list]:
    order = Order._meta
    statuses = [str(s) for s in Order.PURCHASE_STATUSES]
    marks = ", ".join(["%s"] * len(statuses))
    sql = (
        f"SELECT customer_id, ordered_at, total_amount, id FROM {order.db_table} "
        f"WHERE customer_id IS NOT NULL AND status IN ({marks})"
    )
    return sql, statuses


def load_purchases(using: str = "default") -> pa.Table:
    """Return purchase orders (customer_id, ts, amount, order_id); refunds excluded."""
    connection = connections[using]
    sql, params = _purchases_sql()
    schema = pa.schema(
        [
            ("customer_id", pa.int64()),
            ("ts", pa.timestamp("us", tz="UTC")),
            ("amount", pa.float64()),
            ("order_id", pa.int64()),
        ]
    )
    if connection.vendor == "postgresql":
        # COPY streams 10M rows far faster than a cursor; parse the CSV in Arrow.
        connection.ensure_connection()
        raw = connection.connection
        literal = sql.replace("%s", "{}").format(*(f"'{s}'" for s in params))
        buffer = io.BytesIO()
        copy_sql = f"COPY ({literal}) TO STDOUT WITH (FORMAT csv)"
        with raw.cursor() as cursor, cursor.copy(copy_sql) as copy:
            for block in copy:
                buffer.write(block)
        buffer.seek(0)
        if buffer.getbuffer().nbytes == 0:
            return schema.empty_table()
        return pacsv.read_csv(
            buffer,
            read_options=pacsv.ReadOptions(column_names=schema.names),
            convert_options=pacsv.ConvertOptions(column_types=schema),
        )
    batches = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(CHUNK_ROWS):
            ids, times, amounts, order_ids = zip(*rows, strict=True)
            batches.append(
                pa.record_batch(
                    [
                        pa.array(ids, pa.int64()),
                        _to_utc_timestamps(times),
                        pa.array([float(a) for a in amounts], pa.float64()),
                        pa.array(order_ids, pa.int64()),
                    ],
                    schema=schema,
                )
            )
    return pa.Table.from_batches(batches, schema=schema)


def load_customer_ids(using: str = "default") -> pa.Table:
    """Return the ids of all live customers (merged records excluded)."""
    ids = (
        Customer.objects.using(using).filter(merged_into__isnull=True).values_list("id", flat=True)
    )
    return pa.table({"customer_id": pa.array(list(ids.iterator(chunk_size=100_000)), pa.int64())})


def _to_utc_timestamps(values: tuple) -> pa.Array:
    """Convert SQLite's datetimes (aware, naive UTC, or text) to an Arrow UTC timestamp array."""
    if isinstance(values[0], str):
        return pa.array(values).cast(pa.timestamp("us", tz="UTC"))
    naive = [
        v.replace(tzinfo=None) if v.tzinfo is None else v.astimezone(UTC).replace(tzinfo=None)
        for v in values
    ]
    return pa.array(naive, pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC"))
