"""The customer 360 page's purchase panels: totals above the profile, orders below it."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from kequn.commerce.selectors import get_customer_totals, get_recent_orders
from kequn.customers.models import Customer
from kequn.customers.profile import register_customer_totals, register_profile_panel

# The timeline shows the latest rows only; the full history is one click away in the list.
RECENT_ORDERS = 20


def get_totals_context(customer: Customer) -> dict[str, Any]:
    """Return the purchase totals of the customer."""
    return {"totals": get_customer_totals(customer)}


def get_orders_context(customer: Customer) -> dict[str, Any]:
    """Return the latest orders and the link to all of them."""
    orders = get_recent_orders(customer, RECENT_ORDERS)
    return {
        "orders": orders,
        "orders_more": len(orders) == RECENT_ORDERS,
        "orders_url": reverse("admin:commerce_order_changelist") + f"?customer={customer.pk}",
    }


def register_profile_panels() -> None:
    """Add the purchase panels to the 360 page and the totals to the customers API."""
    register_profile_panel(
        "totals",
        order=10,
        template="admin/customers/panels/totals.html",
        get_context=get_totals_context,
    )
    register_profile_panel(
        "orders",
        order=10,
        template="admin/customers/panels/orders.html",
        get_context=get_orders_context,
        region="timeline",
    )
    register_customer_totals(get_customer_totals)
