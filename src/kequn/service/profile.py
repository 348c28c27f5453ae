"""The customer 360 page's tickets panel: open tickets first, then the latest closed ones."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from kequn.customers.models import Customer
from kequn.customers.profile import register_profile_panel
from kequn.service.selectors import get_customer_tickets


def get_tickets_context(customer: Customer) -> dict[str, Any]:
    """Return the customer's recent tickets and the link to all of them."""
    tickets = get_customer_tickets(customer.pk)
    return {
        "service_tickets": tickets,
        "service_open_count": sum(1 for t in tickets if t.is_open),
        "service_tickets_url": reverse("admin:service_ticket_changelist")
        + f"?customer={customer.pk}",
    }


def register_profile_panels() -> None:
    """Add the tickets panel to the 360 page."""
    register_profile_panel(
        "service_tickets",
        order=40,
        template="admin/service/panels/tickets.html",
        get_context=get_tickets_context,
        region="timeline",
    )
