"""kequn.db: bulk inserts, updates and Arrow reads give what the ORM would have stored."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest
from django.db import connection, transaction

from kequn.commerce.models import Category, Channel, Order, Product
from kequn.dashboard.models import HistoryPoint
from kequn.db import (
    BulkLoader,
    Dates,
    NullableInts,
    TableData,
    Timestamps,
    clear_table,
    get_next_id,
    insert_columns,
    insert_objects,
    large_sqlite_cache,
    list_indexes,
    read_arrow,
    reset_sequences,
    update_columns,
    update_objects,
    without_indexes,
)

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_insert_arrays_and_constants():
    n = 1_234  # more than one multi-row INSERT on SQLite
    seconds = np.full(n, int(T0.timestamp()), dtype=np.int64) + np.arange(n)
    insert_columns(
        Product,
        {
            "sku": np.array([f"S{i}" for i in range(n)], dtype=object),
            "name": pa.array([f'名字 {i}, "quoted"' for i in range(n)]),
            "price": np.linspace(1, 100, n).round(2),
            "is_consumable": np.arange(n) % 2 == 0,
            "created_at": Timestamps(seconds),
        },
        fixed={"brand": "", "currency": "CNY", "is_active": True},
    )
    assert Product.objects.count() == n
    first = Product.objects.get(sku="S0")
    assert first.name == '名字 0, "quoted"'
    assert first.brand == ""
    assert first.price == Decimal("1.00")
    assert first.is_consumable and first.is_active
    assert first.created_at == T0
    assert Product.objects.get(sku="S1").created_at == datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC)
    assert Product.objects.filter(is_consumable=True).count() == (n + 1) // 2


def test_insert_nulls_dates_and_return_ids():
    channel = Channel.objects.create(code="web", name="Web", kind="online")
    days = (np.array(["2026-03-01", "2026-03-02", "2026-03-03"], dtype="datetime64[D]")).astype(
        np.int64
    )
    ids = insert_columns(
        HistoryPoint,
        {
            "day": Dates(days),
            "channel": NullableInts(
                np.array([channel.pk, 0, channel.pk]), np.array([0, 1, 0], bool)
            ),
            "metric": ["revenue", "revenue", "orders"],
            "value": pa.array([1.5, None, 3.0]).fill_null(0.0),
        },
        fixed={"key": ""},
        return_ids=True,
    )
    assert len(ids) == 3 and len(set(ids)) == 3
    rows = {p.pk: p for p in HistoryPoint.objects.all()}
    assert [rows[i].day for i in ids] == [date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)]
    assert [rows[i].channel_id for i in ids] == [channel.pk, None, channel.pk]
    assert rows[ids[2]].metric == "orders"
    # The ORM's own inserts continue after the returned ids.
    later = HistoryPoint.objects.create(day=date(2026, 3, 4), metric="x", value=0)
    assert later.pk > max(ids)


def test_python_value_columns_and_timestamps_arrow():
    stamps = pa.array([T0, None], pa.timestamp("us", tz="UTC"))
    insert_columns(
        Order,
        {
            "number": ["A-1", "A-2"],
            "status": ["paid", "paid"],
            "total_amount": [Decimal("10.50"), Decimal("0")],
            "ordered_at": pa.array([T0, T0], pa.timestamp("us", tz="UTC")),
        },
        fixed={"currency": "CNY", "discount_amount": Decimal("0")},
    )
    assert Order.objects.get(number="A-1").total_amount == Decimal("10.50")
    assert Order.objects.get(number="A-2").ordered_at == T0
    assert stamps.null_count == 1


def test_objects_and_update():
    category = Category.objects.create(code="c", name="C")
    objs = [Product(sku=f"P{i}", name="n", price=Decimal(i), category=category) for i in range(5)]
    insert_objects(Product, objs, set_ids=True)
    assert all(o.pk for o in objs)
    assert sorted(Product.objects.values_list("pk", flat=True)) == sorted(o.pk for o in objs)
    for o in objs:
        o.name = f"renamed {o.sku}"
    update_objects(Product, objs, ["name"])
    assert Product.objects.get(sku="P3").name == "renamed P3"
    update_columns(Product, ["P1", "P2"], {"brand": ["X", "Y"]}, key="sku")
    assert dict(Product.objects.filter(brand__gt="").values_list("sku", "brand")) == {
        "P1": "X",
        "P2": "Y",
    }


def test_read_arrow_queryset_and_sql():
    Channel.objects.create(code="b", name="", kind="store")
    Channel.objects.create(code="a", name="Alpha", kind="online")
    schema = pa.schema([("code", pa.string()), ("name", pa.string())])
    table = read_arrow(Channel.objects.all(), schema, fields=["code", "name"]).sort_by("code")
    assert table.to_pydict() == {"code": ["a", "b"], "name": ["Alpha", ""]}
    sql = f"SELECT id, code FROM {Channel._meta.db_table} WHERE kind = %s"
    table = read_arrow(
        sql, pa.schema([("id", pa.int64()), ("code", pa.string())]), params=["store"]
    )
    assert table.column("code").to_pylist() == ["b"]
    empty = read_arrow(Channel.objects.filter(code="none"), schema, fields=["code", "name"])
    assert empty.num_rows == 0 and empty.schema == schema


def test_read_arrow_floats_from_decimals():
    Product.objects.create(sku="d", name="d", price=Decimal("12.34"))
    schema = pa.schema([("price", pa.float64()), ("created_at", pa.timestamp("us", tz="UTC"))])
    table = read_arrow(Product.objects.all(), schema, fields=["price", "created_at"])
    assert table.column("price").to_pylist() == [12.34]


def test_without_indexes_restores_them():
    before = sorted(list_indexes(Order))
    assert before
    with transaction.atomic(), without_indexes(Order), large_sqlite_cache():
        assert list_indexes(Order) == []
        Order.objects.create(number="x", status="paid", total_amount=1, ordered_at=T0)
    assert sorted(list_indexes(Order)) == before
    HistoryPoint.objects.create(day=date(2026, 3, 4), metric="x", value=0)
    clear_table(HistoryPoint)  # nothing references it: TRUNCATE on PostgreSQL
    assert not HistoryPoint.objects.exists()


def test_loader_writes_explicit_ids():
    loader = BulkLoader(append_order_columns={"customer_id"})
    loader.begin_load()
    try:
        loader.drop_indexes([Order])
        first = loader.next_id(Order)
        with loader.atomic():
            loader.write(
                TableData(
                    Order,
                    {
                        "id": np.arange(first, first + 3),
                        "number": np.array(["L1", "L2", "L3"], dtype=object),
                        "status": np.array(["paid"] * 3, dtype=object),
                        "currency": np.array(["CNY"] * 3, dtype=object),
                        "total_amount": np.array([1.0, 2.0, 3.5]),
                        "discount_amount": np.zeros(3),
                        "ordered_at": Timestamps(np.full(3, int(T0.timestamp()))),
                        "customer": NullableInts(np.zeros(3, np.int64), np.ones(3, bool)),
                    },
                )
            )
            loader.flush()
        loader.restore_indexes()
        loader.reset_sequences([Order])
        loader.analyze([Order])
    finally:
        loader.restore_indexes()
        loader.end_load()
    assert loader.rows[Order._meta.db_table] == 3
    assert Order.objects.get(number="L3").total_amount == Decimal("3.50")
    new = Order.objects.create(number="N", status="paid", total_amount=1, ordered_at=T0)
    # The table's own ids continue after the explicit ones (SQLite's AUTOINCREMENT may
    # skip ids handed out before in this database).
    assert new.pk >= first + 3
    assert get_next_id(Order) == new.pk + 1
    reset_sequences([Order])
    assert connection.vendor in ("sqlite", "postgresql")
