"""Table upkeep around bulk loads: indexes, clearing, id sequences, statistics, page cache."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager

from django.db import connections, models

IndexDefinition = tuple[str, str]  # (name, CREATE INDEX statement)


def _table(model: type[models.Model]) -> str:
    return model._meta.db_table


def list_indexes(
    model: type[models.Model], *, using: str = "default", unique: bool = True
) -> list[IndexDefinition]:
    """Return (name, definition) of the table's indexes that are not constraints.

    ``unique=False`` leaves out unique indexes. Definitions are read back from the
    catalogue, so what is rebuilt is exactly what migrations created.
    """
    connection = connections[using]
    table = _table(model)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                "AND tablename = %s AND indexname NOT IN "
                "(SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
                [table, table],
            )
        else:
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s "
                "AND sql IS NOT NULL",
                [table],
            )
        found = cursor.fetchall()
    if not unique:
        found = [(name, sql) for name, sql in found if not sql.upper().startswith("CREATE UNIQUE")]
    return found


def get_leading_column(definition: str) -> str | None:
    """Return the first column of a CREATE INDEX statement."""
    lead = re.search(r'\bON [^(]*\(\s*"?(\w+)', definition)
    return lead.group(1) if lead else None


def drop_indexes(
    model: type[models.Model],
    *,
    using: str = "default",
    unique: bool = True,
    keep: Callable[[IndexDefinition], bool] | None = None,
) -> list[IndexDefinition]:
    """Drop the table's indexes (see list_indexes) except those ``keep`` accepts; return them."""
    connection = connections[using]
    dropped = [d for d in list_indexes(model, using=using, unique=unique) if not (keep and keep(d))]
    with connection.cursor() as cursor:
        for name, _ in dropped:
            cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
    return dropped


def create_indexes(definitions: list[IndexDefinition], *, using: str = "default") -> None:
    """Run the CREATE INDEX statements that drop_indexes returned."""
    with connections[using].cursor() as cursor:
        for _, definition in definitions:
            cursor.execute(definition)


@contextmanager
def without_indexes(
    model: type[models.Model], *, using: str = "default", foreign_keys: bool = True
) -> Iterator[None]:
    """Drop the table's indexes (and PostgreSQL foreign keys) for a bulk load, then restore them.

    Inside the caller's transaction. Building an index once from 1M rows is several
    times cheaper than updating it row by row, and PostgreSQL validates a re-added foreign
    key in one join instead of a trigger per row. PostgreSQL refuses to alter a table with
    pending trigger events, which an enclosing transaction may have left: call this only in
    a transaction of one's own.
    """
    connection = connections[using]
    quote = connection.ops.quote_name
    table = _table(model)
    constraints: list[tuple[str, str]] = []
    if foreign_keys and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %s::regclass AND contype = 'f'",
                [table],
            )
            constraints = cursor.fetchall()
            for name, _ in constraints:
                cursor.execute(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}")
    indexes = drop_indexes(model, using=using)
    yield
    create_indexes(indexes, using=using)
    with connection.cursor() as cursor:
        for name, definition in constraints:
            cursor.execute(f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} {definition}")


def clear_table(model: type[models.Model], *, using: str = "default") -> None:
    """Delete every row of a table nothing references (TRUNCATE on PostgreSQL: no dead rows)."""
    connection = connections[using]
    verb = "TRUNCATE" if connection.vendor == "postgresql" else "DELETE FROM"
    with connection.cursor() as cursor:
        cursor.execute(f"{verb} {connection.ops.quote_name(_table(model))}")


def get_next_id(model: type[models.Model], *, using: str = "default") -> int:
    """Return the first primary key above every stored one."""
    connection = connections[using]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT MAX({quote(model._meta.pk.column)}) FROM {quote(_table(model))}"  # noqa: S608 -- names from model metadata
        )
        value = cursor.fetchone()[0]
    return int(value or 0) + 1


def reset_sequences(models_: Collection[type[models.Model]], *, using: str = "default") -> None:
    """Move PostgreSQL id sequences past ids written explicitly (SQLite follows by itself)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for model in models_:
            pk = quote(model._meta.pk.column)
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence(%s, %s), COALESCE(MAX({pk}), 1), "  # noqa: S608 -- names from model metadata
                f"MAX({pk}) IS NOT NULL) FROM {quote(_table(model))}",
                [_table(model), model._meta.pk.column],
            )


def analyze_tables(models_: Collection[type[models.Model]], *, using: str = "default") -> None:
    """Refresh PostgreSQL planner statistics of the tables (outside a transaction block only)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for model in models_:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(_table(model))}")


@contextmanager
def large_sqlite_cache(*, using: str = "default", kib: int = 256 * 1024) -> Iterator[None]:
    """Give SQLite a large page cache while a bulk write runs (other backends: no-op).

    The default 2 MB cache makes each of a million inserts (and their foreign-key
    look-ups) re-read pages through the OS; measured at 1M scores, 30 s with the default
    cache against 19 s with 256 MB.
    """
    connection = connections[using]
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        (previous,) = cursor.fetchone()
        cursor.execute(f"PRAGMA cache_size = -{int(kib)}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {int(previous)}")
