"""Fixtures for import tests: files written in tmp, table dumps to compare database states."""

from __future__ import annotations

import pytest

from kequn.commerce.models import Order, OrderLine, Product
from kequn.customers.models import Address, Customer, Identity
from kequn.ingest.models import QuarantinedRow


def dump_state() -> dict:
    """Return the imported data without primary keys, so two runs can be compared."""
    owner = {c.pk: c for c in Customer.objects.all()}

    def key_of(customer_id):
        ids = sorted(
            f"{i.kind}:{i.system}:{i.value}"
            for i in Identity.objects.filter(customer_id=customer_id)
        )
        return tuple(ids) or ("#", owner[customer_id].name)

    customers = sorted(
        (
            key_of(c.pk),
            c.name,
            c.gender,
            str(c.birthday),
            c.province,
            c.city,
            c.external_ref,
            c.merged_into_id is not None,
        )
        for c in owner.values()
    )
    return {
        "customers": customers,
        "addresses": sorted(
            (key_of(a.customer_id), a.label, a.line) for a in Address.objects.all()
        ),
        "orders": sorted(
            (
                o.number,
                str(o.total_amount),
                o.status,
                key_of(o.customer_id) if o.customer_id else None,
            )
            for o in Order.objects.all()
        ),
        "lines": sorted(
            (ln.order.number, ln.product.sku, ln.quantity, str(ln.amount))
            for ln in OrderLine.objects.select_related("order", "product")
        ),
        "products": sorted((p.sku, p.name, str(p.price)) for p in Product.objects.all()),
        "quarantine": sorted(
            (q.file_name, q.row_number, q.reason, q.status) for q in QuarantinedRow.objects.all()
        ),
    }


@pytest.fixture
def write(tmp_path):
    """Return write(name, text, encoding="utf-8") -> path of a new file in tmp."""

    def factory(name: str, text: str | bytes, encoding: str = "utf-8"):
        path = tmp_path / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding=encoding)
        return path

    return factory
