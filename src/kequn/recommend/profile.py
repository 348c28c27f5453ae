"""The customer 360 page's recommendations panel."""

from __future__ import annotations

from typing import Any

from kequn.customers.models import Customer
from kequn.customers.profile import register_profile_panel
from kequn.recommend.reasons import get_reason_label
from kequn.recommend.selectors import get_recommendations_for_customer


def get_recommendations_context(customer: Customer) -> dict[str, Any]:
    """Return the customer's recommendations, each with its reason in the user's language."""
    rows = get_recommendations_for_customer(customer.pk)
    for row in rows:
        row["reason"] = get_reason_label(row.get("source", ""))
    return {"recommendations": rows}


def register_profile_panels() -> None:
    """Add the recommended products to the 360 page."""
    register_profile_panel(
        "recommendations",
        order=30,
        template="recommend/_customer_recommendations.html",
        get_context=get_recommendations_context,
    )
