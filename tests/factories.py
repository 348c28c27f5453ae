"""Small builders for test data, going through the services where one exists."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from kequn.commerce.models import Category, Channel, Order, OrderLine, Product
from kequn.customers.models import Customer
from kequn.customers.services import IdentityInput, create_customer
from kequn.events.models import Event
from kequn.security.actors import system_actor

_seq = itertools.count(1)


def make_customer(name: str = "", city: str = "上海", **identities: str) -> Customer:
    """Create a person; identities given as email=..., phone=..., wechat=..."""
    n = next(_seq)
    return create_customer(
        {"name": name or f"客户{n}", "city": city, "province": "上海"},
        [IdentityInput(kind, value) for kind, value in identities.items()],
        by=system_actor("tests"),
    )


def make_product(price: str = "999.00", category: str = "phones") -> Product:
    n = next(_seq)
    cat, _ = Category.objects.get_or_create(code=category, defaults={"name": category})
    return Product.objects.create(sku=f"SKU-{n}", name=f"Phone {n}", category=cat, price=price)


def make_order(
    customer: Customer | None = None,
    amount: str = "999.00",
    status: str = Order.Status.COMPLETED,
    days_ago: int = 1,
) -> Order:
    n = next(_seq)
    channel, _ = Channel.objects.get_or_create(
        code="online", defaults={"name": "Online shop", "kind": Channel.Kind.ONLINE}
    )
    order = Order.objects.create(
        number=f"ORD-{n}",
        customer=customer,
        channel=channel,
        status=status,
        total_amount=Decimal(amount),
        ordered_at=datetime.now(UTC) - timedelta(days=days_ago),
    )
    product = make_product(amount)
    OrderLine.objects.create(
        order=order, product=product, quantity=1, unit_price=amount, amount=amount
    )
    return order


def make_event(customer: Customer | None = None, name: str = "Product Viewed") -> Event:
    return Event.objects.create(
        name=name,
        customer=customer,
        anonymous_id="" if customer else f"anon-{next(_seq)}",
        properties={"sku": "SKU-1"},
    )
