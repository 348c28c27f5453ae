"""Bulk reads and writes of whole columns, for SQLite and PostgreSQL (the bottom layer).

Imports only Django, NumPy and Arrow. Public names (stable; import them from here):

Columns (kequn.db.columns): ``Column`` (a NumPy array, an Arrow array, a list of driver
values, or one of:) ``Timestamps`` (UTC seconds since the epoch), ``Dates`` (days since
the epoch, optional NULL mask), ``NullableInts`` (values and NULL mask).

Writes (kequn.db.writes), in the caller's transaction:
- ``insert_columns(model, columns, *, fixed=None, return_ids=False, using=None)``: insert
  rows given as {field name: column} plus constant fields; COPY on PostgreSQL, multi-row
  INSERT on SQLite; ``return_ids`` returns the new primary keys in row order.
- ``update_columns(model, keys, columns, *, key="pk", using=None)``: set fields by key.
- ``insert_objects(model, objs, *, set_ids=False)`` / ``update_objects(model, objs,
  names)``: the same for model instances, values prepared as ``save()`` prepares them.

Reads (kequn.db.reads): ``read_arrow(queryset_or_sql, schema, *, fields=None,
params=None, using="default")``: an Arrow table (COPY TO STDOUT on PostgreSQL).

Conditions (kequn.db.lookups): ``field_in(name, values)``: ``.filter()`` condition
`name IN values` for long lists, one array parameter on PostgreSQL.

Loads (kequn.db.loader): ``BulkLoader`` (tuned connection, background COPY, indexes
dropped and rebuilt once) writing ``TableData(model, columns)``.

Table upkeep (kequn.db.tables): ``without_indexes(model, *, using)``, ``drop_indexes``,
``create_indexes``, ``list_indexes``, ``clear_table``, ``get_next_id``,
``reset_sequences``, ``analyze_tables``, ``large_sqlite_cache``.
"""

from kequn.db.columns import Column, Dates, NullableInts, Timestamps
from kequn.db.loader import BulkLoader, TableData
from kequn.db.lookups import field_in
from kequn.db.reads import read_arrow
from kequn.db.tables import (
    analyze_tables,
    clear_table,
    create_indexes,
    drop_indexes,
    get_next_id,
    large_sqlite_cache,
    list_indexes,
    reset_sequences,
    without_indexes,
)
from kequn.db.writes import insert_columns, insert_objects, update_columns, update_objects

__all__ = [
    "BulkLoader",
    "Column",
    "Dates",
    "NullableInts",
    "TableData",
    "Timestamps",
    "analyze_tables",
    "clear_table",
    "create_indexes",
    "drop_indexes",
    "field_in",
    "get_next_id",
    "insert_columns",
    "insert_objects",
    "large_sqlite_cache",
    "list_indexes",
    "read_arrow",
    "reset_sequences",
    "update_columns",
    "update_objects",
    "without_indexes",
]
