"""Load many tables in one go: tuned connection, COPY in the background, indexes rebuilt once."""

from __future__ import annotations

import io
import time
from collections.abc import Collection
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.csv as pa_csv
from django.db import DatabaseError, connections, models, transaction

from kequn.db.columns import Column, get_column_length, to_arrow_array, to_sqlite_values
from kequn.db.tables import (
    IndexDefinition,
    analyze_tables,
    create_indexes,
    drop_indexes,
    get_leading_column,
    get_next_id,
    reset_sequences,
)
from kequn.db.writes import insert_sqlite_values


@dataclass
class TableData:
    """Rows of one model as named columns (field names, not column names)."""

    model: type[models.Model]
    columns: dict[str, Column]

    def __len__(self) -> int:
        return get_column_length(next(iter(self.columns.values())))


# SQLite settings for a load whose rows are consistent by construction: checking each
# foreign key per insert and syncing each commit would dominate the load time;
# temp_store and threads speed up the sorts of CREATE INDEX after it. Generated JSON and
# quantities are valid by construction too: skip the per-row CHECK constraints.
# journal_mode stays WAL: MEMORY or OFF saved only ~2% (45.0 s vs 46.1 s at 100k
# customers) and would let a crash mid-load corrupt the database.
SQLITE_LOAD_PRAGMAS = {
    "synchronous": "OFF",
    "cache_size": "-2000000",
    "foreign_keys": "OFF",
    "temp_store": "MEMORY",
    "threads": "2",
    "ignore_check_constraints": "ON",
}


@dataclass
class BulkLoader:
    """Write TableData to one database with the fastest path of its backend.

    PostgreSQL: one COPY at a time runs in a background thread while the caller prepares
    the next table (psycopg releases the GIL); ``flush()`` before each commit. SQLite:
    multi-row INSERTs on the raw connection. ``append_order_columns`` names leading index
    columns whose values only grow during the load; drop_indexes keeps those indexes.
    """

    using: str = "default"
    append_order_columns: Collection[str] = ()
    write_seconds: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.conn = connections[self.using]
        self.conn.ensure_connection()
        self.vendor = self.conn.vendor
        self._saved_pragmas: dict[str, object] = {}
        self._copier: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []
        self._dropped: list[IndexDefinition] = []
        self._replica = False

    def begin_load(self) -> None:
        """Tune the connection for a bulk load; undone by end_load."""
        if self.conn.in_atomic_block:
            return
        if self.vendor == "postgresql":
            # Skip the deferred foreign-key trigger per copied row (the rows are consistent
            # by construction); needs superuser or replication rights, else keep the checks.
            try:
                with self.conn.cursor() as cursor:
                    cursor.execute("SET session_replication_role = replica")
                self._replica = True
            except DatabaseError:  # permission denied: load with the checks
                self._replica = False
            return
        if self.vendor != "sqlite":
            return
        cursor = self.conn.connection.cursor()
        for pragma in SQLITE_LOAD_PRAGMAS:
            self._saved_pragmas[pragma] = cursor.execute(f"PRAGMA {pragma}").fetchone()[0]
        for pragma, value in SQLITE_LOAD_PRAGMAS.items():
            cursor.execute(f"PRAGMA {pragma}={value}")

    def end_load(self) -> None:
        """Restore the connection settings changed by begin_load."""
        if self._copier is not None:  # after a failure: let a running COPY finish first
            self._copier.shutdown(wait=True)
            self._copier = None
            self._pending.clear()
        if self._replica:
            with self.conn.cursor() as cursor:
                cursor.execute("SET session_replication_role = DEFAULT")
            self._replica = False
        if self._saved_pragmas:
            cursor = self.conn.connection.cursor()
            for pragma, value in self._saved_pragmas.items():
                cursor.execute(f"PRAGMA {pragma}={value}")
            self._saved_pragmas.clear()

    def write(self, data: TableData) -> None:
        """Insert all rows of data."""
        n = len(data)
        if n == 0:
            return
        table = data.model._meta.db_table
        names = [data.model._meta.get_field(name).column for name in data.columns]
        start = time.perf_counter()
        with self.conn.wrap_database_errors:
            if self.vendor == "postgresql":
                self._copy_in_background(table, names, data)
            else:
                values = [to_sqlite_values(column) for column in data.columns.values()]
                insert_sqlite_values(self.conn, table, names, values)
        self.write_seconds[table] = self.write_seconds.get(table, 0.0) + (
            time.perf_counter() - start
        )
        self.rows[table] = self.rows.get(table, 0) + n

    def _copy_in_background(self, table: str, names: list[str], data: TableData) -> None:
        arrow = pa.table([to_arrow_array(c) for c in data.columns.values()], names=names)
        buffer = io.BytesIO()
        pa_csv.write_csv(
            arrow, buffer, pa_csv.WriteOptions(include_header=False, batch_size=65_536)
        )
        quote = self.conn.ops.quote_name
        columns = ", ".join(quote(n) for n in names)
        sql = f"COPY {quote(table)} ({columns}) FROM STDIN WITH (FORMAT csv)"
        # The server parses and stores this table while the next one is prepared: one
        # COPY at a time, in order, on the same connection.
        self.flush()
        if self._copier is None:
            self._copier = ThreadPoolExecutor(1, thread_name_prefix="bulk-copy")
        self._pending.append(self._copier.submit(self._copy, sql, buffer))

    def _copy(self, sql: str, buffer: io.BytesIO) -> None:
        with self.conn.connection.cursor() as cursor, cursor.copy(sql) as copy:
            copy.write(buffer.getbuffer())

    def flush(self) -> None:
        """Wait for the background COPY, raising its error; call before each commit."""
        while self._pending:
            self._pending.pop(0).result()

    def next_id(self, model: type[models.Model]) -> int:
        """Return the first free primary key of the model's table."""
        return get_next_id(model, using=self.using)

    def reset_sequences(self, models_: Collection[type[models.Model]]) -> None:
        """Move PostgreSQL id sequences past the ids written explicitly."""
        reset_sequences(models_, using=self.using)

    def analyze(self, models_: Collection[type[models.Model]]) -> None:
        """Refresh PostgreSQL planner statistics of the loaded tables."""
        if not self.conn.in_atomic_block:
            analyze_tables(models_, using=self.using)

    def drop_indexes(self, models_: Collection[type[models.Model]]) -> None:
        """Drop the secondary indexes of the tables; restore_indexes builds them again."""
        for model in models_:
            self._dropped += drop_indexes(
                model, using=self.using, unique=False, keep=self._keeps_index
            )

    def _keeps_index(self, definition: IndexDefinition) -> bool:
        # Keys arriving in ascending order are cheap to maintain during the load.
        return get_leading_column(definition[1]) in self.append_order_columns

    def restore_indexes(self) -> None:
        """Recreate the indexes dropped by drop_indexes."""
        if not self._dropped:
            return
        if self.vendor == "postgresql":
            with self.conn.cursor() as cursor:
                cursor.execute("SET maintenance_work_mem = '512MB'")
        while self._dropped:  # one at a time: a retry after a failure builds the rest
            create_indexes([self._dropped[-1]], using=self.using)
            self._dropped.pop()

    def atomic(self) -> AbstractContextManager:
        """Return a transaction block for one chunk."""
        return transaction.atomic(using=self.using)
