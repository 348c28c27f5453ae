"""Shared data for back-office tests: a small customer base built through the services."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.utils import timezone

from kequn.commerce.models import Category, Channel, Order, OrderLine, Product
from kequn.customers.models import Address, CompanyContact, Customer, Tag, TagGroup
from kequn.customers.services import (
    IdentityInput,
    create_customer,
    record_consent,
    tag_customers,
)
from kequn.events.models import Event
from kequn.security.actors import system_actor


@dataclass
class BackofficeData:
    alice: Customer
    bob: Customer
    acme: Customer
    vip: Tag
    store: Channel
    web: Channel
    phone_case: Product
    phone: Product
    orders: list[Order]


def add_order(
    customer: Customer,
    number: str,
    channel: Channel,
    product: Product,
    quantity: int,
    status: str,
    when: dt.datetime,
) -> Order:
    """Create one order with one line."""
    amount = product.price * quantity
    order = Order.objects.create(
        number=number,
        customer=customer,
        channel=channel,
        status=status,
        total_amount=amount,
        ordered_at=when,
    )
    OrderLine.objects.create(
        order=order, product=product, quantity=quantity, unit_price=product.price, amount=amount
    )
    return order


@pytest.fixture
def data(db, admin_user) -> BackofficeData:
    """Build three customers with identities, consents, tags, orders and events."""
    zone = timezone.get_current_timezone()
    alice = create_customer(
        {
            "name": "Alice Wang",
            "gender": "f",
            "province": "Guangdong",
            "city": "Shenzhen",
            "source_channel": "wechat",
            "age_band": "25-34",
            "income_band": "high",
        },
        [
            IdentityInput("phone", "+86 138 0013 8000"),
            IdentityInput("email", "Alice@Example.com"),
        ],
        by=system_actor("tests"),
    )
    bob = create_customer(
        {
            "name": "Bob Li",
            "gender": "m",
            "province": "Beijing",
            "city": "Beijing",
            "source_channel": "store",
            "age_band": "35-44",
            "income_band": "medium",
        },
        [IdentityInput("phone", "13900139000")],
        by=system_actor("tests"),
    )
    acme = create_customer(
        {"kind": "company", "name": "Acme Trading", "province": "Shanghai", "city": "Shanghai"},
        by=system_actor("tests"),
    )
    Customer.objects.filter(pk=bob.pk).update(created_at=dt.datetime(2023, 5, 1, 12, tzinfo=zone))
    CompanyContact.objects.create(company=acme, contact=alice, title="Buyer", is_primary=True)
    Address.objects.create(customer=alice, city="Shenzhen", line="1 Keyuan Road", is_default=True)

    record_consent(alice, "sms", "marketing", True, source="signup", by=system_actor("tests"))
    record_consent(
        alice, "sms", "marketing", False, source="unsubscribe link", by=system_actor("tests")
    )
    record_consent(alice, "email", "service", True, by=system_actor("tests"))

    group = TagGroup.objects.create(name="Value")
    vip = Tag.objects.create(group=group, name="VIP")
    tag_customers([alice], vip, by=admin_user)

    category = Category.objects.create(code="acc", name="Accessories")
    sub = Category.objects.create(code="acc-case", name="Cases", parent=category)
    phone_case = Product.objects.create(
        sku="CASE-001",
        name="Phone case",
        brand="Kequn",
        category=sub,
        price=Decimal("49.00"),
        is_consumable=True,
    )
    phone = Product.objects.create(
        sku="PHONE-X", name="Phone X", brand="Other", price=Decimal("3999.00"), is_active=False
    )
    store = Channel.objects.create(code="sz-01", name="Shenzhen store", kind="store")
    web = Channel.objects.create(code="web", name="Web shop", kind="online")

    orders = [
        add_order(
            alice, "SO-1001", store, phone, 1, "completed", dt.datetime(2024, 1, 5, 10, tzinfo=zone)
        ),
        add_order(
            alice, "SO-1002", web, phone_case, 2, "paid", dt.datetime(2024, 3, 9, 10, tzinfo=zone)
        ),
        add_order(
            alice,
            "SO-1003",
            web,
            phone_case,
            1,
            "cancelled",
            dt.datetime(2024, 4, 1, 10, tzinfo=zone),
        ),
        add_order(
            bob,
            "WEB-2001",
            web,
            phone_case,
            3,
            "completed",
            dt.datetime(2024, 2, 2, 10, tzinfo=zone),
        ),
    ]
    Event.objects.create(
        type="track",
        name="Product Viewed",
        customer=alice,
        channel="app",
        occurred_at=dt.datetime(2024, 3, 8, 9, tzinfo=zone),
    )
    Event.objects.create(
        type="page",
        name="Home",
        customer=bob,
        channel="web",
        anonymous_id="anon-42",
        occurred_at=dt.datetime(2024, 2, 1, 9, tzinfo=zone),
    )
    return BackofficeData(alice, bob, acme, vip, store, web, phone_case, phone, orders)
