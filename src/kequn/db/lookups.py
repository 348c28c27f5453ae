"""Conditions on long lists of values that stay cheap to send."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F
from django.db.models.lookups import In
from django.db.models.sql.compiler import SQLCompiler


def to_array_literal(values: list[Any]) -> str | list[Any]:
    """Return PostgreSQL's text of an array of ints or strings (other values: the list as is).

    psycopg dumps a list element by element in Python: 25 ms for 20,000 ids, against 4 ms
    for this text.
    """
    if all(type(v) is int for v in values):
        return "{" + ",".join(map(str, values)) + "}"
    if all(type(v) is str for v in values):
        quoted = (v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
        return "{" + ",".join(f'"{v}"' for v in quoted) + "}"
    return values


class InArray(In):
    """`IN`, sent on PostgreSQL as ``= ANY(%s)`` with the whole list as one array parameter.

    psycopg splits the query text at every placeholder on each call: a batch's `IN` of 5,000
    ids cost 10 ms of that, and as much again in Django, for a 3 ms query.
    """

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> Any:
        if not self.rhs_is_direct_value():
            return super().as_sql(compiler, connection)
        field = self.lhs.output_field
        values = [
            field.get_db_prep_value(v, connection, prepared=True)
            for v in dict.fromkeys(self.rhs)
            if v is not None
        ]
        if not values:
            raise EmptyResultSet
        lhs, params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(CAST(%s AS {field.db_type(connection)}[]))", (
            *params,
            to_array_literal(values),
        )


def field_in(name: str, values: Iterable[Any]) -> InArray:
    """Return the filter condition `name IN values` for a long list of values."""
    return InArray(F(name), list(values))
