"""REST endpoints for behavioural events (read)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema

from kequn.apiutils import BoundedDateTime, ObjectId, Page, check_perm, paginate
from kequn.events.models import Event, get_visible_kinds
from kequn.security.masking import get_unmasked_groups
from kequn.security.permissions import record_personal_view, scope_customers

router = Router(tags=["events"])


class EventOut(Schema):
    id: int
    type: str
    name: str
    occurred_at: datetime
    customer_id: int | None
    anonymous_id: str
    channel: str
    properties: dict[str, Any]

    @staticmethod
    def resolve_properties(obj: Event, context) -> dict[str, Any]:
        # Emails and phones inside the properties come back in clear only for viewers who
        # may see that field group; others get them masked.
        request = (context or {}).get("request")
        viewer = (getattr(request, "auth", None) or request.user) if request else None
        return obj.get_shown_properties(get_unmasked_groups(viewer))


class EventFilters(Schema):
    customer_id: ObjectId | None = None
    name: str | None = Field(None, max_length=100)
    type: Event.Type | None = None
    since: BoundedDateTime | None = None
    until: BoundedDateTime | None = None


def _record_shown(request: HttpRequest, events: list[Event]) -> None:
    """Record who was shown personal data from these events' properties in clear."""
    viewer = getattr(request, "auth", None) or request.user
    groups = get_unmasked_groups(viewer)
    if not get_visible_kinds(groups):
        return
    ids = [e.customer_id for e in events if e.personal_properties and e.customer_id]
    record_personal_view(viewer, ids, via="api:events", groups=groups)


def _events(request: HttpRequest):
    """Events of the customers the user may see (another rep's event is a 404)."""
    user = getattr(request, "auth", None) or request.user
    return scope_customers(user, Event.objects.all(), "customer")


@router.get("", response=Page[EventOut], summary="List events (newest first)")
def list_events(
    request: HttpRequest, filters: Query[EventFilters], cursor: str | None = None, limit: int = 50
):
    check_perm(request, "events.view_event")
    qs = _events(request)
    if filters.customer_id:
        qs = qs.filter(customer_id=filters.customer_id)
    if filters.name:
        qs = qs.filter(name=filters.name)
    if filters.type:
        qs = qs.filter(type=filters.type)
    if filters.since:
        qs = qs.filter(occurred_at__gte=filters.since)
    if filters.until:
        qs = qs.filter(occurred_at__lt=filters.until)
    page = paginate(qs, cursor, limit)
    _record_shown(request, page["items"])
    return page


@router.get("/{int:event_id}", response=EventOut, summary="Read an event")
def get_event(request: HttpRequest, event_id: ObjectId):
    check_perm(request, "events.view_event")
    event = get_object_or_404(_events(request), pk=event_id)
    _record_shown(request, [event])
    return event
