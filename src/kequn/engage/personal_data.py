"""The engagement app's personal data: who was in a campaign's audience and what was sent to them."""

from __future__ import annotations

from kequn.engage.models import Message, Recipient
from kequn.security.personal_data import Erase, register

# Audience rows are derived from the person (groups of a run): gone with them, dropped on
# restriction.
register(
    Recipient,
    path="customer",
    export_as="campaign_audiences",
    position=300,
    fields=["run__campaign__name", "group", "variant", "skip_reason", "assigned_at"],
    derived=True,
)
# Messages stay for the campaign's counts, detached from the person and without the address.
register(
    Message,
    path="customer",
    export_as="messages",
    position=310,
    fields=["id", "source", "channel", "purpose", "address", "status", "skip_reason", "sent_at"],
    erase=Erase.CUSTOM,
    eraser=lambda context: Message.objects.filter(customer_id__in=context.customer_ids).update(
        customer=None, address=""
    ),
    erase_count="messages",
    masked={"address": "email"},
)
