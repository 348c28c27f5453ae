"""Hand-built customers whose segment membership is known in advance."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.utils import timezone

from kequn.commerce.models import Category, Channel, Order, OrderLine, Product
from kequn.customers.models import Consent, Customer, Tag, TagGroup
from kequn.customers.services import IdentityInput, create_customer
from kequn.events.models import Event
from kequn.scoring.models import CustomerScore
from kequn.security.actors import system_actor


def buy(customer, product, days_ago: int, status: str = "completed", amount: str | None = None):
    """Create a one-line order."""
    amount = Decimal(amount or product.price)
    n = Order.objects.count() + 1
    channel, _ = Channel.objects.get_or_create(
        code="online", defaults={"name": "Online", "kind": "online"}
    )
    order = Order.objects.create(
        number=f"T-{n}-{customer.pk}",
        customer=customer,
        channel=channel,
        status=status,
        total_amount=amount,
        ordered_at=datetime.now(UTC) - timedelta(days=days_ago),
    )
    OrderLine.objects.create(
        order=order, product=product, quantity=1, unit_price=amount, amount=amount
    )
    return order


def score(customer, **fields):
    CustomerScore.objects.create(customer=customer, computed_at=timezone.now(), **fields)


@pytest.fixture
def shop(db):
    """Five customers, a category tree, orders, events, scores, tags and consents."""
    phones = Category.objects.create(code="phones", name="Phones")
    accessories = Category.objects.create(code="accessories", name="Accessories")
    cases = Category.objects.create(code="cases", name="Cases", parent=accessories)
    phone = Product.objects.create(sku="P-1", name="Phone", category=phones, price="3000")
    case = Product.objects.create(
        sku="C-1", name="Case", category=cases, price="50", is_consumable=True
    )
    today = timezone.localdate()

    def person(name, city, province="上海", **extra):
        return create_customer(
            {"name": name, "city": city, "province": province, **extra},
            [IdentityInput("phone", f"1380013{8000 + Customer.objects.count():04d}")],
            by=system_actor("tests"),
        )

    wang = person("王", "上海", birthday=date(today.year - 30, 1, 1), gender="f")
    li = person("李", "杭州", "浙江", birthday=date(today.year - 50, 1, 1), gender="m")
    zhao = person("赵", "上海", birthday=date(today.year - 22, 1, 1), gender="f")
    acme = create_customer(
        {"name": "Acme", "kind": "company", "city": "北京", "industry": "IT"},
        by=system_actor("tests"),
    )
    chen = person("陈", "北京")

    buy(wang, phone, 10)
    buy(wang, case, 5)
    buy(wang, case, 400)
    buy(li, phone, 200)
    buy(li, case, 30, status="cancelled")
    buy(acme, phone, 20, amount="30000")
    buy(acme, phone, 40, amount="30000")
    Event.objects.create(name="Product Viewed", customer=zhao, properties={"sku": "P-1"})
    Event.objects.create(
        name="Product Viewed",
        customer=li,
        occurred_at=timezone.now() - timedelta(days=3),
        properties={"sku": "C-1"},
    )
    Event.objects.create(
        name="App Opened", customer=chen, occurred_at=timezone.now() - timedelta(days=60)
    )

    score(wang, rfm_segment="champions", lifecycle_stage="active", clv=5000, churn_percentile=10)
    score(li, rfm_segment="at_risk", lifecycle_stage="at_risk", clv=800, churn_percentile=85)
    score(acme, rfm_segment="champions", lifecycle_stage="loyal", clv=90000, churn_percentile=5)

    vip_group = TagGroup.objects.create(name="Value")
    vip = Tag.objects.create(name="VIP", group=vip_group)
    fan = Tag.objects.create(name="Fan")
    vip.customers.add(wang, acme)
    fan.customers.add(wang, zhao)

    # Consent history: the latest row per channel and purpose wins.
    old = timezone.now() - timedelta(days=100)
    Consent.objects.create(customer=wang, channel="sms", purpose="marketing", granted=True)
    Consent.objects.create(
        customer=li, channel="sms", purpose="marketing", granted=True, recorded_at=old
    )
    Consent.objects.create(customer=li, channel="sms", purpose="marketing", granted=False)
    Consent.objects.create(
        customer=zhao, channel="sms", purpose="marketing", granted=False, recorded_at=old
    )
    Consent.objects.create(customer=zhao, channel="sms", purpose="marketing", granted=True)
    Consent.objects.create(customer=chen, channel="email", purpose="marketing", granted=True)

    return SimpleNamespace(
        wang=wang,
        li=li,
        zhao=zhao,
        acme=acme,
        chen=chen,
        phone=phone,
        case=case,
        vip=vip,
        fan=fan,
        accessories=accessories,
    )
