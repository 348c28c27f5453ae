"""Build the new score table beside the live one, then swap it in by renaming.

prepare_next_table makes an empty copy of CustomerScore's table (its columns, defaults
and checks; no indexes yet) named NextCustomerScore's table; the refresh fills it while
readers keep reading the live table; finish_next_table gives it the live table's indexes
and keys under temporary names; swap_in (inside the refresh's transaction) drops the
live table and renames the new one and its indexes to the live names. A crash before the
swap commits leaves the live table as it was; the next refresh starts the copy afresh.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import OperationalError, connections, transaction

from kequn.scoring.models import CustomerScore, NextCustomerScore

LIVE = CustomerScore._meta.db_table
NEXT = NextCustomerScore._meta.db_table
SUFFIX = "__next"
# PostgreSQL: how long the swap waits for readers' locks on the live table before it
# gives up and tries again (a reader mid-query holds it; new readers queue behind the swap).
LOCK_TIMEOUT = "5s"
SWAP_ATTEMPTS = 6


@dataclass
class NextTable:
    """What the swap needs to know about the live table's indexes."""

    vendor: str
    index_names: list[str] = field(default_factory=list)  # PostgreSQL: renamed at the swap
    index_sql: list[str] = field(default_factory=list)  # SQLite: created at the swap


def prepare_next_table(*, using: str = "default") -> NextTable:
    """Create NEXT as an empty copy of the live table's columns (dropping a leftover one)."""
    connection = connections[using]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {quote(NEXT)}")
        if connection.vendor == "postgresql":
            cursor.execute(
                f"CREATE TABLE {quote(NEXT)} "
                f"(LIKE {quote(LIVE)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
            )
            return NextTable("postgresql")
        cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = %s", [LIVE])
        (create,) = cursor.fetchone()
        cursor.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s "
            "AND sql IS NOT NULL",
            [LIVE],
        )
        indexes = [sql for (sql,) in cursor.fetchall()]
        cursor.execute(_renamed_table_sql(create, LIVE, NEXT))
    return NextTable("sqlite", index_sql=indexes)


def _renamed_table_sql(create: str, old: str, new: str) -> str:
    """Return SQLite's CREATE TABLE text of ``old`` naming ``new`` instead."""
    head = re.match(rf'CREATE TABLE\s+("{re.escape(old)}"|{re.escape(old)})', create)
    if head is None:
        raise RuntimeError(f"unexpected schema of {old}: {create[:80]}")
    return f'CREATE TABLE "{new}"' + create[head.end() :]


def finish_next_table(table: NextTable, *, using: str = "default") -> None:
    """Give NEXT the live table's indexes, keys and foreign keys (PostgreSQL, before the swap)."""
    if table.vendor != "postgresql":
        return  # SQLite cannot rename indexes: swap_in creates them under their names
    connection = connections[using]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE schemaname = current_schema() AND tablename = %s",
            [LIVE],
        )
        indexes = cursor.fetchall()
        cursor.execute(
            "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('p', 'u', 'f')",
            [quote(LIVE)],
        )
        constraints = cursor.fetchall()
        for name, definition in indexes:
            temporary = _temporary_name(name)
            sql = re.sub(
                r"INDEX \S+ ON \S+ ",
                f"INDEX {quote(temporary)} ON {quote(NEXT)} ",
                definition,
                count=1,
            )
            cursor.execute(sql)
            table.index_names.append(name)
        for name, kind, definition in constraints:
            if kind == "f":
                # Same name: foreign key names are per table.
                cursor.execute(
                    f"ALTER TABLE {quote(NEXT)} ADD CONSTRAINT {quote(name)} {definition}"
                )
            else:
                keyword = "PRIMARY KEY" if kind == "p" else "UNIQUE"
                temporary = quote(_temporary_name(name))
                cursor.execute(
                    f"ALTER TABLE {quote(NEXT)} ADD CONSTRAINT {temporary} "
                    f"{keyword} USING INDEX {temporary}"
                )
        if connection.in_atomic_block:
            cursor.execute(f"ANALYZE {quote(NEXT)}")
        else:
            # VACUUM also marks the pages all-visible, so that segment counts read the
            # indexes alone (VACUUM cannot run inside a transaction: tests, callers' atomic).
            cursor.execute(f"VACUUM (ANALYZE) {quote(NEXT)}")


def _temporary_name(name: str) -> str:
    """Return an index's name on NEXT (PostgreSQL names are at most 63 bytes)."""
    return name[: 63 - len(SUFFIX)] + SUFFIX


def swap_in(table: NextTable, *, using: str = "default") -> None:
    """Replace the live score table by NEXT; call inside the refresh's transaction."""
    connection = connections[using]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if table.vendor == "postgresql":
            cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        cursor.execute(f"DROP TABLE {quote(LIVE)}")
        cursor.execute(f"ALTER TABLE {quote(NEXT)} RENAME TO {quote(LIVE)}")
        for name in table.index_names:
            cursor.execute(f"ALTER INDEX {quote(_temporary_name(name))} RENAME TO {quote(name)}")
        for sql in table.index_sql:
            cursor.execute(sql)
        if table.vendor == "postgresql":
            cursor.execute("SET LOCAL lock_timeout = 0")


def swap_in_with_retries(
    table: NextTable, work: Callable[[], None], *, using: str = "default"
) -> None:
    """Run ``work()`` and swap_in in one transaction; retry while readers hold the live table."""
    for attempt in range(SWAP_ATTEMPTS):
        try:
            with transaction.atomic(using=using):
                work()
                swap_in(table, using=using)
            return
        except OperationalError as exc:
            # Only a lock wait is retried, and only when this is the outermost transaction.
            if (
                "lock timeout" not in str(exc)
                or connections[using].in_atomic_block
                or attempt == SWAP_ATTEMPTS - 1
            ):
                raise
            time.sleep(1 + attempt)
