"""Read query results as Arrow tables (COPY TO STDOUT on PostgreSQL)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
from django.db import connections
from django.db.models import QuerySet

# Rows fetched per round trip when reading through the ORM (SQLite).
FETCH_ROWS = 20_000


def read_arrow(
    source: QuerySet | str,
    schema: pa.Schema,
    *,
    fields: Sequence[str] | None = None,
    params: Sequence[Any] | None = None,
    using: str = "default",
) -> pa.Table:
    """Return the rows of a queryset (its ``fields``, or a values_list) or of SQL as Arrow.

    ``schema`` names and types the result's columns in order. On PostgreSQL the rows come
    as CSV from COPY TO STDOUT and Arrow parses them (text stays text: an empty string is
    not NULL); elsewhere they are fetched in blocks, decimals read as floats for float
    columns.
    """
    connection = connections[using]
    if isinstance(source, QuerySet):
        rows = source.using(using).order_by()
        if fields is not None:
            rows = rows.values_list(*fields)
        sql, params = rows.query.sql_with_params()
    else:
        rows, sql = None, source
    connection.ensure_connection()
    if connection.vendor == "postgresql":
        return _copy_out(connection, sql, params or (), schema)
    columns: list[list] = [[] for _ in schema.names]
    if rows is not None:
        batches = rows.iterator(chunk_size=FETCH_ROWS)
    else:
        batches = _fetch_rows(connection, sql, params or ())
    for row in batches:
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    for i, field in enumerate(schema):
        if pa.types.is_floating(field.type):
            columns[i] = [None if v is None else float(v) for v in columns[i]]
    return pa.table(
        {
            name: pa.array(column, type=schema.field(name).type)
            for name, column in zip(schema.names, columns, strict=True)
        }
    )


def _fetch_rows(connection: Any, sql: str, params: Sequence[Any]):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while block := cursor.fetchmany(FETCH_ROWS):
            yield from block


def _copy_out(connection: Any, sql: str, params: Sequence[Any], schema: pa.Schema) -> pa.Table:
    # COPY takes no parameters: bind them client-side into the statement's text.
    literal = connection.ops.compose_sql(sql, params)
    buffer = io.BytesIO()
    with (
        connection.connection.cursor() as cursor,
        cursor.copy(f"COPY ({literal}) TO STDOUT (FORMAT csv)") as copy,
    ):
        for block in copy:
            buffer.write(block)
    if buffer.getbuffer().nbytes == 0:
        return schema.empty_table()
    buffer.seek(0)
    return pa_csv.read_csv(
        buffer,
        read_options=pa_csv.ReadOptions(column_names=schema.names),
        convert_options=pa_csv.ConvertOptions(
            column_types=schema, strings_can_be_null=False, quoted_strings_can_be_null=False
        ),
    )
