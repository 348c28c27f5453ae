"""A hand-built customer base whose dashboard numbers are worked out by hand in the tests."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.utils import timezone

from kequn.commerce.models import Channel, Order
from kequn.customers.models import Customer
from kequn.customers.services import create_customer
from kequn.scoring.models import CustomerScore, StageChange
from kequn.security.actors import system_actor

ZONE = timezone.get_fixed_timezone(8 * 60)
NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=ZONE)


@dataclass
class Base:
    now: dt.datetime
    a: Customer
    b: Customer
    c: Customer
    d: Customer
    web: Channel
    store: Channel


def days_ago(n: float) -> dt.datetime:
    return NOW - dt.timedelta(days=n)


def order(
    customer: Customer, channel: Channel, amount: str, when: dt.datetime, status: str = "completed"
) -> Order:
    """Create one order (lines do not matter to the dashboard)."""
    return Order.objects.create(
        number=f"T-{Order.objects.count() + 1}",
        customer=customer,
        channel=channel,
        status=status,
        total_amount=Decimal(amount),
        ordered_at=when,
    )


def person(name: str, province: str, city: str, created: dt.datetime) -> Customer:
    customer = create_customer(
        {"name": name, "province": province, "city": city}, by=system_actor("tests")
    )
    Customer.objects.filter(pk=customer.pk).update(created_at=created)
    return Customer.objects.get(pk=customer.pk)


def score(customer: Customer, **fields) -> CustomerScore:
    return CustomerScore.objects.create(customer=customer, computed_at=NOW, **fields)


@pytest.fixture
def base(db) -> Base:
    """Return the hand-built base (see build_base)."""
    return build_base()


def build_base() -> Base:
    """Four customers, two channels, five purchases, one cancelled order, scores and history.

    A: bought web 200 (2 days ago), web 100 (10 days ago), store 300 (40 days ago)
    B: created 5 days ago; store 50 (3 days ago); a cancelled web order of 999 (1 day ago)
    C: created 20 days ago, never bought
    D: web 400 (100 days ago); moved active -> at risk 3 days ago
    """
    web = Channel.objects.create(code="web", name="Web shop", kind="online")
    store = Channel.objects.create(code="sz-01", name="Shenzhen store", kind="store")
    a = person("Alice", "Guangdong", "Shenzhen", dt.datetime(2026, 1, 1, tzinfo=ZONE))
    b = person("Bob", "Beijing", "Beijing", days_ago(5))
    c = person("Chen", "Shanghai", "Shanghai", days_ago(20))
    d = person("Dong", "Shanghai", "Shanghai", dt.datetime(2025, 1, 1, tzinfo=ZONE))
    order(a, web, "200.00", days_ago(2))
    order(a, web, "100.00", days_ago(10))
    order(a, store, "300.00", days_ago(40))
    order(b, store, "50.00", days_ago(3))
    order(b, web, "999.00", days_ago(1), status="cancelled")
    order(d, web, "400.00", days_ago(100))
    score(
        a,
        orders=3,
        revenue=600,
        r_score=5,
        f_score=3,
        rfm_segment="champions",
        lifecycle_stage="active",
        clv=1000,
        churn_risk=0.1,
        churn_percentile=100 / 3,
    )
    score(
        b,
        orders=1,
        revenue=50,
        r_score=5,
        f_score=1,
        rfm_segment="new_customers",
        lifecycle_stage="new",
        clv=150,
        churn_risk=0.4,
        churn_percentile=200 / 3,
    )
    score(c, lifecycle_stage="prospect")
    score(
        d,
        orders=1,
        revenue=400,
        r_score=1,
        f_score=1,
        rfm_segment="hibernating",
        lifecycle_stage="at_risk",
        clv=80,
        churn_risk=0.9,
        churn_percentile=100,
    )
    for customer, before, after, when in [
        (a, "", "new", days_ago(60)),
        (c, "", "prospect", days_ago(60)),
        (d, "", "active", days_ago(60)),
        (a, "new", "active", days_ago(20)),
        (d, "active", "at_risk", days_ago(3)),
        (b, "", "new", days_ago(1)),
    ]:
        StageChange.objects.create(
            customer=customer, from_stage=before, to_stage=after, changed_at=when
        )
    return Base(NOW, a, b, c, d, web, store)
