"""The customer 360 page's feedback panel: the latest answers and open follow-ups."""

from __future__ import annotations

from typing import Any

from kequn.customers.models import Customer
from kequn.customers.profile import register_profile_panel
from kequn.feedback.models import FollowUp, Response

RECENT = 10


def get_feedback_context(customer: Customer) -> dict[str, Any]:
    """Return the customer's latest survey answers and open follow-ups."""
    responses = list(
        Response.objects.filter(customer=customer)
        .select_related("survey")
        .order_by("-answered_at")[:RECENT]
    )
    open_follow_ups = FollowUp.objects.filter(
        response__customer=customer, status=FollowUp.Status.OPEN
    ).count()
    return {"survey_responses": responses, "survey_follow_ups_open": open_follow_ups}


def register_profile_panels() -> None:
    """Add the feedback panel to the 360 page's timeline."""
    register_profile_panel(
        "feedback",
        order=60,
        template="admin/feedback/panels/feedback.html",
        get_context=get_feedback_context,
        region="timeline",
    )
