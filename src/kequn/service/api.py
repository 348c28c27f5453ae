"""Service API: tickets and their replies (the routers kequn.api mounts, as (prefix, router) pairs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.contrib.auth import get_user_model
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema, Status

from kequn.apiutils import BoundedDateTime, ObjectId, Page, check_perm, paginate
from kequn.customers.access import is_customer_visible
from kequn.security.masking import EMAIL, get_unmasked_groups, mask_email
from kequn.security.permissions import record_personal_view, scope_customers
from kequn.service import selectors, services
from kequn.service.models import Queue, Ticket, TicketMessage

tickets_router = Router(tags=["tickets"])

TicketTypeName = Literal["complaint", "inquiry", "return", "suggestion"]
PriorityName = Literal["low", "normal", "high", "urgent"]
StatusName = Literal["new", "open", "waiting", "resolved", "closed", "reopened"]
SourceName = Literal["phone", "store", "email", "web", "api", "survey"]


class TicketOut(Schema):
    id: int
    customer_id: int | None
    subject: str
    type: str
    priority: str
    status: str
    source: str
    queue_id: int | None
    assignee_id: int | None
    product_id: int | None
    order_id: int | None
    from_address: str
    merged_into_id: int | None
    opened_at: datetime
    first_responded_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    sla_policy: str | None
    sla_state: str
    first_response_due: datetime | None
    next_response_due: datetime | None
    resolution_due: datetime | None

    @staticmethod
    def resolve_sla_policy(obj: Ticket) -> str | None:
        return obj.sla_policy.name if obj.sla_policy is not None else None


class TicketIn(Schema):
    customer_id: ObjectId
    subject: str = Field(..., min_length=1, max_length=300, pattern=r"\S")
    body: str = Field(..., min_length=1, max_length=100_000, pattern=r"\S")
    type: TicketTypeName = "inquiry"
    priority: PriorityName = "normal"
    source: SourceName = "api"
    opened_at: BoundedDateTime | None = Field(
        None, description="When the ticket was opened (imports); deadlines count from it"
    )
    queue_id: ObjectId | None = None
    product_id: ObjectId | None = None
    order_id: ObjectId | None = None


class TicketPatch(Schema):
    subject: str | None = Field(None, min_length=1, max_length=300, pattern=r"\S")
    type: TicketTypeName | None = None
    priority: PriorityName | None = None
    status: StatusName | None = None
    queue_id: ObjectId | None = None
    assignee_id: ObjectId | None = None


class TicketFilters(Schema):
    status: StatusName | None = None
    priority: PriorityName | None = None
    type: TicketTypeName | None = None
    queue_id: ObjectId | None = None
    assignee_id: ObjectId | None = None
    customer_id: ObjectId | None = None
    sla_state: Literal["ok", "warning", "breached", "paused"] | None = None
    open: bool | None = Field(None, description="true: still needing work; false: done")


class MessageOut(Schema):
    id: int
    ticket_id: int
    kind: str
    author_id: int | None
    sender: str
    body: str
    delivery: str
    created_at: datetime


class ReplyIn(Schema):
    body: str = Field(..., min_length=1, max_length=100_000, pattern=r"\S")
    internal: bool = Field(False, description="An internal note, never sent to the customer")
    waiting: bool = Field(False, description="Wait on the customer (pauses the SLA clock)")


def _viewer(request: HttpRequest) -> Any:
    return getattr(request, "auth", None) or request.user


def _tickets(request: HttpRequest):
    """Tickets of the customers the user may see (another rep's ticket is a 404)."""
    rows = Ticket.objects.select_related("sla_policy")
    return scope_customers(_viewer(request), rows, "customer")


def _shown(request: HttpRequest, tickets: list[Ticket], via: str) -> list[Ticket]:
    """Mask the sender addresses the viewer may not read; audit the unmasked ones."""
    viewer = _viewer(request)
    if EMAIL in get_unmasked_groups(viewer):
        seen = [t.customer_id for t in tickets if t.from_address and t.customer_id]
        record_personal_view(viewer, seen, via=via, groups=frozenset({EMAIL}))
        return tickets
    for ticket in tickets:
        ticket.from_address = mask_email(ticket.from_address) if ticket.from_address else ""
    return tickets


@tickets_router.get("", response=Page[TicketOut], summary="List tickets (newest first)")
def list_tickets(
    request: HttpRequest, filters: Query[TicketFilters], cursor: str | None = None, limit: int = 50
):
    check_perm(request, "service.view_ticket")
    data = filters.dict()
    data["is_open"] = data.pop("open")
    page = paginate(selectors.filter_tickets(_tickets(request), **data), cursor, limit)
    _shown(request, page["items"], "api")
    return page


@tickets_router.get("/{int:ticket_id}", response=TicketOut, summary="Read a ticket")
def get_ticket(request: HttpRequest, ticket_id: ObjectId):
    check_perm(request, "service.view_ticket")
    ticket = get_object_or_404(_tickets(request), pk=ticket_id)
    return _shown(request, [ticket], "api")[0]


@tickets_router.post(
    "",
    response={201: TicketOut},
    summary="Open a ticket; the answer carries its SLA deadlines (opened_at dates an import)",
)
def create_ticket(request: HttpRequest, payload: TicketIn):
    check_perm(request, "service.add_ticket")
    viewer = _viewer(request)
    if not is_customer_visible(viewer, payload.customer_id):
        raise Http404("no such customer")
    queue = get_object_or_404(Queue, pk=payload.queue_id) if payload.queue_id else None
    ticket = services.open_ticket(
        customer_id=payload.customer_id,
        subject=payload.subject,
        body=payload.body,
        type=payload.type,
        priority=payload.priority,
        source=payload.source,
        opened_at=payload.opened_at,
        queue=queue,
        product_id=payload.product_id,
        order_id=payload.order_id,
        by=viewer,
    )
    return Status(201, get_object_or_404(_tickets(request), pk=ticket.pk))


@tickets_router.patch("/{int:ticket_id}", response=TicketOut, summary="Change a ticket")
def change_ticket(request: HttpRequest, ticket_id: ObjectId, payload: TicketPatch):
    check_perm(request, "service.change_ticket")
    ticket = get_object_or_404(_tickets(request), pk=ticket_id)
    changes: dict[str, Any] = payload.dict(exclude_unset=True, exclude_none=True)
    if "queue_id" in changes:
        changes["queue"] = get_object_or_404(Queue, pk=changes.pop("queue_id"))
    if "assignee_id" in changes:
        users = get_user_model().objects.filter(is_active=True)
        changes["assignee"] = get_object_or_404(users, pk=changes.pop("assignee_id"))
    services.update_ticket(ticket=ticket, changes=changes, by=_viewer(request))
    return _shown(request, [get_object_or_404(_tickets(request), pk=ticket.pk)], "api")[0]


@tickets_router.get(
    "/{int:ticket_id}/messages", response=Page[MessageOut], summary="A ticket's messages"
)
def list_messages(
    request: HttpRequest, ticket_id: ObjectId, cursor: str | None = None, limit: int = 50
):
    check_perm(request, "service.view_ticketmessage")
    ticket = get_object_or_404(_tickets(request), pk=ticket_id)
    page = paginate(TicketMessage.objects.filter(ticket=ticket), cursor, limit)
    viewer = _viewer(request)
    if EMAIL in get_unmasked_groups(viewer):
        if any(m.sender for m in page["items"]) and ticket.customer_id:
            record_personal_view(viewer, [ticket.customer_id], via="api", groups=frozenset({EMAIL}))
    else:
        for message in page["items"]:
            message.sender = mask_email(message.sender) if message.sender else ""
    return page


@tickets_router.post(
    "/{int:ticket_id}/replies",
    response={201: MessageOut},
    summary="Reply to the customer (emailed when the ticket has an address) or add a note",
)
def create_reply(request: HttpRequest, ticket_id: ObjectId, payload: ReplyIn):
    check_perm(request, "service.add_ticketmessage")
    ticket = get_object_or_404(_tickets(request), pk=ticket_id)
    message = services.add_reply(
        ticket=ticket,
        body=payload.body,
        internal=payload.internal,
        waiting=payload.waiting,
        by=_viewer(request),
    )
    return Status(201, message)


routers: list[tuple[str, Router]] = [("/v1/tickets", tickets_router)]
