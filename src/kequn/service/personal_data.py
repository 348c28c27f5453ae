"""The service app's personal data: tickets, their messages and attachments, inbound email."""

from __future__ import annotations

from kequn.security.masking import EMAIL
from kequn.security.personal_data import Erase, ErasureContext, register
from kequn.service.models import Attachment, InboundEmail, Ticket, TicketMessage


def erase_inbound_email(context: ErasureContext) -> int:
    """Delete the raw emails the person sent (found by their tickets and their addresses)."""
    ids = list(
        Ticket.objects.filter(customer_id__in=context.customer_ids).values_list("id", flat=True)
    )
    rows = InboundEmail.objects.filter(ticket_id__in=ids)
    deleted = rows.delete()[0]
    if context.identity_values:
        deleted += InboundEmail.objects.filter(sender__in=list(context.identity_values)).delete()[0]
    return deleted


def erase_attachments(context: ErasureContext) -> int:
    """Delete the person's attachment files from storage (the rows go with their tickets)."""
    count = 0
    for attachment in Attachment.objects.filter(
        message__ticket__customer_id__in=context.customer_ids
    ):
        attachment.file.delete(save=False)
        count += 1
    return count


register(
    Ticket,
    path="customer",
    export_as="tickets",
    position=300,
    fields=[
        "id",
        "subject",
        "type",
        "priority",
        "status",
        "source",
        "from_address",
        "opened_at",
        "first_responded_at",
        "resolved_at",
        "closed_at",
        "product_id",
        "order_id",
    ],
    erase=Erase.DELETE,  # with their messages, after the files and raw emails below
    erase_count="tickets",
    audited=True,
    masked={"from_address": EMAIL},
)
register(
    TicketMessage,
    path="ticket__customer",
    export_as="ticket_messages",
    position=310,
    fields=["id", "ticket_id", "kind", "sender", "body", "created_at"],
    erase=Erase.CASCADE,
    masked={"sender": EMAIL},
)
register(
    Attachment,
    path="message__ticket__customer",
    export_as="ticket_attachments",
    position=290,
    fields=["id", "message_id", "file_name", "content_type", "size"],
    erase=Erase.CUSTOM,
    eraser=erase_attachments,
    erase_count="ticket_attachments",
)
register(
    InboundEmail,
    path="ticket__customer",
    export_as="inbound_emails",
    position=295,
    fields=["id", "message_id", "sender", "subject", "received_at", "outcome", "reason"],
    erase=Erase.CUSTOM,
    eraser=erase_inbound_email,
    erase_count="inbound_emails",
    masked={"sender": EMAIL},
)
