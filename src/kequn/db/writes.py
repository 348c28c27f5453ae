"""Insert and update many rows of a model's table at once, bypassing model instances.

PostgreSQL loads by COPY (CSV written by Arrow for array columns, psycopg's row format for
Python values); SQLite by multi-row INSERTs or executemany on the raw sqlite3 connection,
whose Django wrapper would rewrite every statement for %s placeholders. Everything runs in
the caller's transaction. ``bulk_create`` spends most of a million-row write building model
instances and SQL; these write the columns as they are.
"""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
from django.db import connections, models, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.fields import AutoFieldMixin

from kequn.db.columns import (
    Column,
    get_column_length,
    is_python_column,
    to_arrow_array,
    to_copy_text,
    to_sqlite_values,
)

# Rows per CSV block handed to COPY: big enough to amortise the call, small enough that
# the text of one block stays a few tens of MB.
COPY_BLOCK_ROWS = 100_000
# Rows per multi-row INSERT on SQLite (also bounded by its variable limit).
SQLITE_ROWS_PER_INSERT = 500


def get_connection(model: type[models.Model], using: str | None = None) -> BaseDatabaseWrapper:
    """Return the connection that writes model's table, connected."""
    connection = connections[using or router.db_for_write(model)]
    connection.ensure_connection()
    return connection


def _db_columns(model: type[models.Model], names: Sequence[str]) -> list[str]:
    return [model._meta.get_field(name).column for name in names]


def _quoted(connection: BaseDatabaseWrapper, names: Sequence[str]) -> str:
    return ", ".join(connection.ops.quote_name(n) for n in names)


def insert_columns(
    model: type[models.Model],
    columns: Mapping[str, Column],
    *,
    fixed: Mapping[str, Any] | None = None,
    return_ids: bool = False,
    using: str | None = None,
) -> list[int] | None:
    """Insert rows given as columns (field name → values) plus constant ``fixed`` fields.

    Values are database values: arrays as the column types of kequn.db.columns, or lists of
    what the driver binds (e.g. get_db_prep_save output). With ``return_ids`` the new
    primary keys are returned in row order (the model must have an auto primary key).
    """
    connection = get_connection(model, using)
    n = get_column_length(next(iter(columns.values()))) if columns else 0
    if n == 0:
        return [] if return_ids else None
    fixed = dict(fixed or {})
    db_columns = _db_columns(model, list(columns))
    fixed_columns = _db_columns(model, list(fixed))
    prepared = {
        name: model._meta.get_field(name).get_db_prep_save(value, connection)
        for name, value in fixed.items()
    }
    table = model._meta.db_table
    with connection.wrap_database_errors:
        if connection.vendor == "postgresql":
            return _insert_postgresql(
                connection,
                model,
                table,
                db_columns + fixed_columns,
                [*columns.values(), *_constant_columns(list(columns.values()), prepared, n)],
                return_ids,
            )
        values = [to_sqlite_values(c) for c in columns.values()]
        values += [[value] * n for value in prepared.values()]
        if return_ids:
            return _insert_sqlite_returning(connection, table, db_columns + fixed_columns, values)
        insert_sqlite_values(connection, table, db_columns + fixed_columns, values)
    return None


def _insert_head(connection: BaseDatabaseWrapper, table: str, db_columns: list[str]) -> str:
    """Return 'INSERT INTO "table" ("a", "b") VALUES ' for names taken from the models."""
    quoted = _quoted(connection, db_columns)
    return f"INSERT INTO {connection.ops.quote_name(table)} ({quoted}) VALUES "  # noqa: S608 -- names from model metadata


def _update_sql(
    connection: BaseDatabaseWrapper,
    model: type[models.Model],
    names: list[str],
    key_column: str,
    mark: str,
) -> str:
    """Return the UPDATE of the named fields by key, names taken from the model."""
    quote = connection.ops.quote_name
    sets = ", ".join(f"{quote(c)} = {mark}" for c in _db_columns(model, names))
    table = quote(model._meta.db_table)
    return f"UPDATE {table} SET {sets} WHERE {quote(key_column)} = {mark}"  # noqa: S608 -- names from model metadata


def _constant_columns(columns: list[Column], fixed: dict[str, Any], n: int) -> list[Column]:
    """Return the constant fields as columns: CSV text for COPY unless rows go as Python values."""
    if any(is_python_column(c) for c in columns):
        return [[value] * n for value in fixed.values()]
    return [
        pa.array(np.full(n, to_copy_text(value), dtype=object), pa.string())
        for value in fixed.values()
    ]


def insert_sqlite_values(
    connection: BaseDatabaseWrapper, table: str, db_columns: list[str], values: list[list]
) -> None:
    """Insert value lists (one per column) into an SQLite table by multi-row INSERTs."""
    # Multi-row INSERTs over one flat parameter list: about twice as fast as executemany
    # over row tuples (fewer statement steps, no tuple per row).
    n, k = len(values[0]), len(db_columns)
    flat: list = [None] * (n * k)
    for i, column in enumerate(values):
        flat[i::k] = column
    raw = connection.connection
    limit = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    per = max(1, min(SQLITE_ROWS_PER_INSERT, limit // k))
    row = "(" + ", ".join("?" * k) + ")"
    head = _insert_head(connection, table, db_columns)
    cursor = raw.cursor(factory=sqlite3.Cursor)
    try:
        full = n // per * per
        if full:
            sql = head + ", ".join([row] * per)
            step = per * k
            for start in range(0, full * k, step):
                cursor.execute(sql, flat[start : start + step])
        if n > full:
            cursor.execute(head + ", ".join([row] * (n - full)), flat[full * k :])
    finally:
        cursor.close()


def _insert_sqlite_returning(
    connection: BaseDatabaseWrapper, table: str, db_columns: list[str], values: list[list]
) -> list[int]:
    marks = ", ".join("?" * len(db_columns))
    sql = f"{_insert_head(connection, table, db_columns)}({marks})"
    cursor = connection.connection.cursor()
    ids = []
    try:
        for row in zip(*values, strict=True):
            cursor.execute(sql, row)
            ids.append(cursor.lastrowid)
    finally:
        cursor.close()
    return ids


def _insert_postgresql(
    connection: BaseDatabaseWrapper,
    model: type[models.Model],
    table: str,
    db_columns: list[str],
    columns: list[Column],
    return_ids: bool,
) -> list[int] | None:
    n = get_column_length(columns[0])
    ids = None
    with connection.connection.cursor() as cursor:
        if return_ids:
            # Sequence values are never handed out twice, whoever else is inserting.
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [table, model._meta.pk.column, n],
            )
            ids = sorted(row[0] for row in cursor.fetchall())
            columns = [*columns, ids]
            db_columns = [*db_columns, model._meta.pk.column]
        target = f"{connection.ops.quote_name(table)} ({_quoted(connection, db_columns)})"
        if any(is_python_column(c) for c in columns):
            # Python values (bytes, JSON text, datetimes...): psycopg adapts each one.
            lists = [c if is_python_column(c) else to_python_values(c) for c in columns]
            with cursor.copy(f"COPY {target} FROM STDIN") as copy:
                for row in zip(*lists, strict=True):
                    copy.write_row(row)
        else:
            copy_csv(
                cursor,
                target,
                pa.table(
                    [to_arrow_array(c) for c in columns],
                    names=[f"c{i}" for i in range(len(columns))],
                ),
            )
    return ids


def to_python_values(column: Column) -> list:
    """Return an array column as Python values for psycopg (nulls as None)."""
    if isinstance(column, pa.Array | pa.ChunkedArray):
        return column.to_pylist()
    return to_arrow_array(column).to_pylist()


def copy_csv(cursor: Any, target: str, data: pa.Table) -> None:
    """COPY an Arrow table into target ('"table" ("col", ...)') as CSV, block by block."""
    with cursor.copy(f"COPY {target} FROM STDIN WITH (FORMAT csv)") as copy:
        for start in range(0, data.num_rows, COPY_BLOCK_ROWS):
            buffer = io.BytesIO()
            pa_csv.write_csv(
                data.slice(start, COPY_BLOCK_ROWS),
                buffer,
                pa_csv.WriteOptions(include_header=False, batch_size=65_536),
            )
            copy.write(buffer.getbuffer())


def update_columns(
    model: type[models.Model],
    keys: Column,
    columns: Mapping[str, Column],
    *,
    key: str = "pk",
    using: str | None = None,
) -> None:
    """Set the given fields of the rows whose ``key`` field has the given values (row by row)."""
    connection = get_connection(model, using)
    n = get_column_length(keys)
    if n == 0 or not columns:
        return
    key_field = model._meta.pk if key == "pk" else model._meta.get_field(key)
    if connection.vendor == "sqlite":
        values = [to_sqlite_values(c) for c in [*columns.values(), keys]]
        sql = _update_sql(connection, model, list(columns), key_field.column, "?")
        with connection.wrap_database_errors:
            cursor = connection.connection.cursor()
            try:
                cursor.executemany(sql, zip(*values, strict=True))
            finally:
                cursor.close()
        return
    values = [c if is_python_column(c) else to_python_values(c) for c in [*columns.values(), keys]]
    sql = _update_sql(connection, model, list(columns), key_field.column, "%s")
    with connection.cursor() as cursor:
        cursor.executemany(sql, list(zip(*values, strict=True)))


def insert_objects(
    model: type[models.Model], objs: list[models.Model], *, set_ids: bool = False
) -> None:
    """Insert new model instances in bulk; with set_ids their primary keys are filled in.

    Values are prepared as bulk_create prepares them (pre_save, then get_db_prep_save, so
    encrypted, blind-index and derived columns are filled as usual); what is saved is
    bulk_create's SQL building, most of its time on a million rows.
    """
    if not objs:
        return
    opts = model._meta
    connection = get_connection(model)
    fields, left_to_db = [], []
    for f in opts.local_concrete_fields:
        if f.primary_key:
            continue
        if f.has_db_default() and all(
            hasattr(getattr(obj, f.attname), "resolve_expression") for obj in objs
        ):
            left_to_db.append(f)  # the database fills it in, as bulk_create lets it
            continue
        fields.append(f)
    if (
        connection.vendor not in ("postgresql", "sqlite")
        or not isinstance(opts.pk, AutoFieldMixin)
        or any(f.has_db_default() for f in fields)
    ):
        model.objects.bulk_create(objs, batch_size=1000)
        return
    columns = {
        f.name: [f.get_db_prep_save(f.pre_save(obj, True), connection) for obj in objs]
        for f in fields
    }
    ids = insert_columns(model, columns, return_ids=set_ids, using=connection.alias)
    for index, obj in enumerate(objs):
        if ids is not None:
            obj.pk = ids[index]
        obj._state.adding, obj._state.db = False, connection.alias
        for f in left_to_db:
            obj.__dict__.pop(f.attname, None)  # read from the database when first asked for


def update_objects(model: type[models.Model], objs: list[models.Model], names: list[str]) -> None:
    """Write the named fields of existing instances: one UPDATE statement run for every row.

    Unlike bulk_update, pre_save runs, so auto_now and derived columns (blind indexes, the
    year of a date) follow the values they come from.
    """
    if not objs:
        return
    connection = get_connection(model)
    fields = [model._meta.get_field(n) for n in names]
    columns = {
        f.name: [f.get_db_prep_save(f.pre_save(obj, False), connection) for obj in objs]
        for f in fields
    }
    update_columns(model, [obj.pk for obj in objs], columns, using=connection.alias)
