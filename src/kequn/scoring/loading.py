"""Read purchases and customer ids out of the store in bulk, as Arrow tables."""

from __future__ import annotations

import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from django.db import connections

from kequn.commerce.models import Order
from kequn.customers.models import Customer

# Purchases are read in windows of customer ids, each a range scan of the covering index
# order_customer_time_idx (customer, ordered_at, status, total): ~200k orders per window
# at ten orders a customer.
WINDOW_CUSTOMERS = 20_000
COVERING_INDEX = "order_customer_time_idx"
READERS = 2


def _purchases_sql(ts: str = "ordered_at", amount: str = "total_amount") -> tuple[str, list]:
    """Return the purchases query and its parameters; ts/amount may wrap the columns."""
    order = Order._meta
    statuses = [str(s) for s in Order.PURCHASE_STATUSES]
    marks = ", ".join(["%s"] * len(statuses))
    sql = (
        f"SELECT customer_id, {ts}, {amount} FROM {order.db_table} "  # noqa: S608 -- names from model metadata
        f"WHERE customer_id IS NOT NULL AND status IN ({marks})"
    )
    return sql, statuses


# The table score_customers takes: integer ids kept (ranked as text where order matters),
# naive UTC timestamps, no quantity in the store.
PURCHASES_SCHEMA = pa.schema(
    [
        ("customer_id", pa.int64()),
        ("ts", pa.timestamp("us")),
        ("amount", pa.float64()),
        ("quantity", pa.float64()),
    ]
)
# PostgreSQL's binary timestamps count microseconds from 2000-01-01.
PG_EPOCH_US = 946_684_800_000_000


# Customers per statement when purchases are read for a list of customers.
ID_BATCH = 5_000


def load_purchases(using: str = "default", customer_ids: np.ndarray | None = None) -> pa.Table:
    """Return purchase orders as (customer_id, ts naive UTC, amount, quantity null); refunds excluded.

    With ``customer_ids`` (sorted), only those customers' orders, read in batches of ids.
    """
    connection = connections[using]
    connection.ensure_connection()
    if connection.vendor == "postgresql":
        return _load_postgresql_purchases(connection, customer_ids)
    # Kequn runs on SQLite and PostgreSQL only (see settings.DATABASES).
    return _load_sqlite_purchases(connection, customer_ids)


def _id_batches(customer_ids: np.ndarray) -> list[list[int]]:
    ids = np.asarray(customer_ids, dtype=np.int64)
    return [ids[i : i + ID_BATCH].tolist() for i in range(0, len(ids), ID_BATCH)]


def _finish(customer_id: pa.Array, ts: pa.Array, amount: pa.Array) -> pa.Table:
    quantity = pa.nulls(len(customer_id), pa.float64())
    return pa.Table.from_arrays([customer_id, ts, amount, quantity], schema=PURCHASES_SCHEMA)


def _load_postgresql_purchases(connection, customer_ids: np.ndarray | None = None) -> pa.Table:
    """Read purchases as packed binary rows, one bytea per window of order ids."""
    # A COPY hands Python one message per row (10M for 10M orders). Here the server packs
    # each window's rows into one bytea of 24-byte records (int8 id, timestamptz as int8
    # microseconds since 2000, float8 amount) that numpy reads without parsing.
    import psycopg  # noqa: PLC0415 -- the PostgreSQL driver, installed only where PostgreSQL is used

    table = connection.ops.quote_name(Order._meta.db_table)
    record = (
        "int8send(customer_id) || timestamptz_send(ordered_at) || float8send(total_amount::float8)"
    )
    sql, params = _purchases_sql()
    where = sql.split(" WHERE ", 1)[1]
    window_sql = (
        f"SELECT string_agg({record}, ''::bytea) FROM {table} "  # noqa: S608 -- names from model metadata
        f"WHERE customer_id >= %s AND customer_id < %s AND {where}"
    )
    ids_sql = (
        f"SELECT string_agg({record}, ''::bytea ORDER BY customer_id) FROM {table} "  # noqa: S608 -- names from model metadata
        f"WHERE customer_id = ANY(%s) AND {where}"
    )
    windows: list
    if customer_ids is not None:
        windows = _id_batches(customer_ids)
    else:
        with connection.connection.cursor() as cursor:
            low, high = cursor.execute(
                f"SELECT min(customer_id), max(customer_id) FROM {table}"  # noqa: S608 -- names from model metadata
            ).fetchone()
        windows = list(range(low or 0, (high or -1) + 1, WINDOW_CUSTOMERS))

    def read_windows(conn, starts: list) -> list[bytes]:
        # A server-binding cursor: binary results (Django's connection uses client-side ones).
        with psycopg.Cursor(conn) as cursor:
            return [
                cursor.execute(
                    *(
                        (ids_sql, [first, *params])
                        if isinstance(first, list)
                        else (window_sql, [first, first + WINDOW_CUSTOMERS, *params])
                    ),
                    binary=True,
                ).fetchone()[0]
                or b""
                for first in starts
            ]

    if connection.in_atomic_block or len(windows) < 4:
        blobs = read_windows(connection.connection, windows)
    else:
        # Two server processes pack windows at once; psycopg waits without the GIL. Only
        # outside a transaction, so the extra connections see what this one sees.
        params_ = connection.get_connection_params()

        def read_alone(starts: list[int]) -> list[bytes]:
            with psycopg.connect(**params_) as conn:
                return read_windows(conn, starts)

        with ThreadPoolExecutor(READERS) as pool:
            shares = list(pool.map(read_alone, [windows[i::READERS] for i in range(READERS)]))
        # Back in customer order: share i holds windows i, i + READERS, ...
        blobs = [shares[i % READERS][i // READERS] for i in range(len(windows))]
    data = b"".join(blobs)
    rows = np.frombuffer(data, dtype=np.dtype([("id", ">i8"), ("ts", ">i8"), ("amount", ">f8")]))
    ts = (rows["ts"].astype(np.int64) + PG_EPOCH_US).view("datetime64[us]")
    return _finish(
        pa.array(rows["id"].astype(np.int64)),
        pa.array(ts, pa.timestamp("us")),
        pa.array(rows["amount"].astype(np.float64)),
    )


def _load_sqlite_purchases(connection, customer_ids: np.ndarray | None = None) -> pa.Table:
    """Read purchases from SQLite as CSV text built by SQLite itself, parsed by Arrow."""
    # A cursor hands out one Python tuple per row (plus Django's per-value datetime and
    # Decimal converters): ~6 µs a row, a minute for 10M orders. group_concat over id
    # windows returns one blob per window instead, and Arrow's CSV reader parses it.
    # Timestamps are Django's naive UTC text; amounts print as %.15g, which round-trips.
    table = connection.ops.quote_name(Order._meta.db_table)
    row = "customer_id || ',' || ordered_at || ',' || total_amount"
    sql, params = _purchases_sql()
    where = sql.split(" WHERE ", 1)[1].replace("%s", "?")
    # Named: SQLite's planner would rather look up rows through order_status_idx.
    window_sql = (
        f"SELECT CAST(group_concat({row}, char(10)) AS BLOB) FROM {table} "  # noqa: S608 -- names from model metadata
        f"INDEXED BY {COVERING_INDEX} WHERE customer_id >= ? AND customer_id < ? AND {where}"
    )
    schema = pa.schema(PURCHASES_SCHEMA.remove(3))
    read = pacsv.ReadOptions(column_names=schema.names, use_threads=False)
    convert = pacsv.ConvertOptions(column_types=schema)
    # Separate statements: SQLite answers a lone min() or max() from the index, a pair by a scan.
    lowest = f"SELECT min(customer_id) FROM {table}"  # noqa: S608 -- table from model metadata
    highest = f"SELECT max(customer_id) FROM {table}"  # noqa: S608 -- table from model metadata
    windows: list
    if customer_ids is not None:
        windows = _id_batches(customer_ids)
    else:
        (low,) = connection.connection.execute(lowest).fetchone()
        (high,) = connection.connection.execute(highest).fetchone()
        windows = list(range(low or 0, (high or -1) + 1, WINDOW_CUSTOMERS))

    def query(first: int | list[int]) -> tuple[str, list]:
        if not isinstance(first, list):
            return window_sql, [first, first + WINDOW_CUSTOMERS, *params]
        marks = ",".join("?" * len(first))
        return window_sql.replace(
            "customer_id >= ? AND customer_id < ?", f"customer_id IN ({marks})"
        ), [*first, *params]

    def read_windows(conn, starts: list) -> list[pa.Table]:
        parts = []
        for first in starts:
            (blob,) = conn.execute(*query(first)).fetchone()
            if blob:
                parts.append(pacsv.read_csv(pa.BufferReader(blob), read, convert_options=convert))
        return parts

    path = _sqlite_file(connection)
    if path is None or len(windows) < 4:
        parts = read_windows(connection.connection, windows)
    else:
        # SQLite and Arrow release the GIL: two readers on their own connections use both
        # cores. Only outside a transaction, so they see what this connection sees.
        def read_alone(starts: list[int]) -> list[pa.Table]:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                return read_windows(conn, starts)
            finally:
                conn.close()

        with ThreadPoolExecutor(READERS) as pool:
            shares = pool.map(read_alone, [windows[i::READERS] for i in range(READERS)])
            parts = [part for share in shares for part in share]
    if not parts:
        return PURCHASES_SCHEMA.empty_table()
    loaded = pa.concat_tables(parts).combine_chunks()
    return _finish(*(loaded.column(name).chunk(0) for name in schema.names))


def _sqlite_file(connection) -> str | None:
    """Return the database file other connections may read, or None (memory, transaction)."""
    name = str(connection.settings_dict["NAME"])
    if connection.in_atomic_block or name == ":memory:" or "mode=memory" in name:
        return None
    return name if os.path.exists(name) else None


def load_customers(using: str = "default") -> pa.Table:
    """Return every customer's id and whether it is live and processing-restricted.

    One pass over the customers table, which is wide (profile, encrypted identities):
    on SQLite each full scan of a million customers costs seconds.
    """
    meta = Customer._meta
    quote = connections[using].ops.quote_name
    restricted = quote(meta.get_field("processing_restricted").column)
    merged = quote(meta.get_field("merged_into").column)
    sql = f"SELECT id, {restricted}, {merged} IS NULL FROM {quote(meta.db_table)}"  # noqa: S608 -- names from model metadata
    with connections[using].cursor() as cursor:
        cursor.execute(sql)
        rows = cursor.fetchall()
    # SQLite hands booleans back as 0/1.
    ids, restricted, unmerged = (
        (np.asarray(c) for c in zip(*rows, strict=True)) if rows else [[]] * 3
    )
    restricted = np.asarray(restricted, dtype=bool)
    return pa.table(
        {
            "customer_id": pa.array(np.asarray(ids, dtype=np.int64)),
            "restricted": pa.array(restricted),
            "live": pa.array(np.asarray(unmerged, dtype=bool) & ~restricted),
        }
    )


def drop_restricted(purchases: pa.Table, customers: pa.Table) -> pa.Table:
    """Remove purchases of customers whose processing is restricted on a data-subject request."""
    restricted = customers.filter(customers.column("restricted")).column("customer_id")
    if len(restricted) == 0 or purchases.num_rows == 0:
        return purchases
    keep = pc.invert(pc.is_in(purchases.column("customer_id"), restricted.combine_chunks()))
    return purchases.filter(keep)


def live_customer_ids(customers: pa.Table) -> pa.Table:
    """Return the ids of live customers (merged and processing-restricted records excluded)."""
    return customers.filter(customers.column("live")).select(["customer_id"])
