"""The events app's personal data: events, and the anonymous ids linked to the person."""

from __future__ import annotations

from kequn.events.models import AnonymousLink, Event
from kequn.security.personal_data import Erase, ErasureContext, register


def erase_events(context: ErasureContext) -> int:
    """Delete the person's events, those recorded under their anonymous ids too."""
    ids = context.customer_ids
    anonymous = list(
        AnonymousLink.objects.filter(customer_id__in=ids).values_list("anonymous_id", flat=True)
    )
    deleted = Event.objects.filter(customer_id__in=ids).delete()[0]
    for start in range(0, len(anonymous), 1000):
        deleted += Event.objects.filter(anonymous_id__in=anonymous[start : start + 1000]).delete()[
            0
        ]
    return deleted


register(
    Event,
    path="customer",
    export_as="events",
    position=90,
    order_by=["occurred_at", "id"],
    erase=Erase.CUSTOM,
    eraser=erase_events,
    erase_count="events",
)
register(
    AnonymousLink,
    path="customer",
    export_as="anonymous_ids",
    position=100,
    fields=["anonymous_id", "customer_id", "created_at"],
)
