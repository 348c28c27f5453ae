"""The customer 360 page's behaviour panel: the latest events."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from kequn.customers.models import Customer
from kequn.customers.profile import register_profile_panel
from kequn.events.models import Event
from kequn.labels import get_code_label

# The timeline shows the latest rows only; the full history is one click away in the list.
RECENT_EVENTS = 30


def get_events_context(customer: Customer) -> dict[str, Any]:
    """Return the latest behavioural events with their labels, and the link to all of them."""
    events = list(
        Event.objects.filter(customer=customer).order_by("-occurred_at", "-id")[:RECENT_EVENTS]
    )
    for event in events:
        event.name_label = get_code_label(event.name)
        event.channel_label = get_code_label(event.channel)
    return {
        "events": events,
        "events_more": len(events) == RECENT_EVENTS,
        "events_url": reverse("admin:events_event_changelist") + f"?customer={customer.pk}",
    }


def register_profile_panels() -> None:
    """Add the events timeline to the 360 page."""
    register_profile_panel(
        "events",
        order=20,
        template="admin/customers/panels/events.html",
        get_context=get_events_context,
        region="timeline",
    )
