"""The customer 360 page's journeys panel: where the customer is in each journey, and the history."""

from __future__ import annotations

from typing import Any

from kequn.customers.models import Customer
from kequn.customers.profile import register_profile_panel
from kequn.journeys.selectors import list_customer_enrollments


def get_journeys_context(customer: Customer) -> dict[str, Any]:
    """Return the customer's latest enrollments with their history."""
    return {"journey_enrollments": list_customer_enrollments(customer)}


def register_profile_panels() -> None:
    """Add the journeys panel to the 360 page."""
    register_profile_panel(
        "journeys",
        order=70,
        template="journeys/_customer_journeys.html",
        get_context=get_journeys_context,
        region="timeline",
    )
