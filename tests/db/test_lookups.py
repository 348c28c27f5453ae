"""field_in: the same rows as `__in`, sent as one array parameter on PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import connection

from kequn.commerce.models import Channel
from kequn.db.lookups import field_in, to_array_literal

pytestmark = pytest.mark.django_db

AWKWARD = ["plain", 'with "quotes"', "back\\slash", "comma, brace}{", "空格 and 中文", ""]


def test_matches_in_for_ints_and_awkward_strings():
    channels = [Channel.objects.create(code=f"c{i}", name=name) for i, name in enumerate(AWKWARD)]
    ids = [c.pk for c in channels]
    chosen = [ids[0], ids[2], ids[2], None, 10**9]
    assert set(Channel.objects.filter(field_in("pk", chosen))) == {channels[0], channels[2]}
    names = [*AWKWARD[1:], "absent"]
    found = Channel.objects.filter(field_in("name", names)).values_list("name", flat=True)
    assert sorted(found) == sorted(AWKWARD[1:])
    assert list(Channel.objects.filter(field_in("pk", []))) == []
    assert list(Channel.objects.filter(field_in("pk", [None]))) == []


def test_postgresql_sends_one_parameter_and_sqlite_keeps_in():
    query = Channel.objects.filter(field_in("pk", range(1, 5001))).query
    sql, params = query.get_compiler(connection=connection).as_sql()
    if connection.vendor == "postgresql":
        assert "= ANY(CAST(" in sql and len(params) == 1
    else:
        assert " IN (" in sql and len(params) == 5000


def test_array_literal():
    assert to_array_literal([1, 22, 333]) == "{1,22,333}"
    assert to_array_literal(['a"b', "c\\d"]) == '{"a\\"b","c\\\\d"}'
    mixed = [1, "a"]
    assert to_array_literal(mixed) is mixed
