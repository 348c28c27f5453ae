"""Reads of what customers bought, for the customer profile and the customers API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Max, Min, Prefetch, Sum

from kequn.commerce.models import Order, OrderLine
from kequn.customers.models import Customer


@dataclass(frozen=True)
class CustomerTotals:
    orders: int
    revenue: Decimal
    first_purchase: datetime | None
    last_purchase: datetime | None


def get_customer_totals(customer: Customer) -> CustomerTotals:
    """Return orders, revenue, first and last purchase over purchase orders."""
    agg = Order.objects.filter(customer=customer, status__in=Order.PURCHASE_STATUSES).aggregate(
        orders=Count("id"),
        revenue=Sum("total_amount"),
        first=Min("ordered_at"),
        last=Max("ordered_at"),
    )
    return CustomerTotals(
        orders=agg["orders"] or 0,
        revenue=agg["revenue"] or Decimal("0"),
        first_purchase=agg["first"],
        last_purchase=agg["last"],
    )


def get_recent_orders(customer: Customer, limit: int) -> list[Order]:
    """Return the customer's latest orders with their channel, lines and products."""
    lines = OrderLine.objects.select_related("product").order_by("id")
    return list(
        Order.objects.filter(customer=customer)
        .select_related("channel")
        .prefetch_related(Prefetch("lines", queryset=lines))
        .order_by("-ordered_at", "-id")[:limit]
    )
