"""Email out: an agent's reply to the customer, through the engagement email channel when it
is configured (KEQUN_EMAIL_URL), else Django's mail; and the worker task that sends it."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django_tasks import task

from kequn.service.models import Ticket, TicketMessage


def mail_domain() -> str:
    for name in ("KEQUN_EMAIL_FROM", "KEQUN_SERVICE_ADDRESS"):
        address = str(getattr(settings, name, "") or "").strip().rstrip(">")
        if "@" in address:
            return address.rsplit("@", 1)[1]
    return "kequn.local"


def customer_email(ticket: Ticket) -> str:
    """Return the latest email address of the ticket's customer ("" without one)."""
    customer = ticket.customer if ticket.customer_id else None
    if customer is None:
        return ""
    identity = customer.identities.filter(kind="email").order_by("-id").first()
    return str(identity.value) if identity else ""


def enqueue_delivery(message_id: int) -> None:
    """Queue one reply's email for the worker."""
    deliver_reply_task.enqueue(message_id)


def retry_pending_deliveries(older_than_minutes: int = 5) -> int:
    """Queue again the replies still waiting to go out (a server that was down, a lost job)."""
    cutoff = timezone.now() - timedelta(minutes=older_than_minutes)
    pending = list(
        TicketMessage.objects.filter(
            delivery=TicketMessage.Delivery.PENDING, created_at__lt=cutoff
        ).values_list("id", flat=True)[:1000]
    )
    for message_id in pending:
        enqueue_delivery(message_id)
    return len(pending)


def deliver_reply(message_id: int) -> str:
    """Email an agent's reply (engagement email channel if configured, else Django's mail).

    Idempotent: a reply already sent is not sent again. Returns the delivery status.
    """
    message = TicketMessage.objects.select_related("ticket").get(pk=message_id)
    if message.delivery != TicketMessage.Delivery.PENDING:
        return message.delivery
    ticket = message.ticket
    to = ticket.from_address or customer_email(ticket)
    if not to:
        TicketMessage.objects.filter(pk=message.pk).update(
            delivery=TicketMessage.Delivery.FAILED, delivery_error="the ticket has no email address"
        )
        return TicketMessage.Delivery.FAILED
    subject = f"Re: {ticket.subject} {ticket.reference}"
    earlier = list(
        TicketMessage.objects.filter(ticket=ticket, id__lt=message.pk)
        .exclude(message_id="")
        .order_by("id")
        .values_list("message_id", flat=True)
    )
    headers = {"Message-ID": message.message_id}
    if earlier:
        headers["In-Reply-To"] = earlier[-1]
        headers["References"] = " ".join(earlier[-10:])
    address = str(getattr(settings, "KEQUN_SERVICE_ADDRESS", "") or "")
    if address:
        headers["Reply-To"] = address
    status, error = send_email(message.message_id, to, subject, message.body, headers)
    TicketMessage.objects.filter(pk=message.pk).update(delivery=status, delivery_error=error[:300])
    return status


def send_email(
    message_id: str, to: str, subject: str, text: str, headers: dict[str, str]
) -> tuple[str, str]:
    """Send one email with this Message-ID; return (delivery status, error)."""
    try:
        from kequn.engage.channels import (  # noqa: PLC0415 -- the engagement channels are optional
            ChannelNotConfiguredError,
            ChannelUnavailableError,
            OutgoingMessage,
            get_channel,
        )
    except ImportError:
        get_channel = None  # type: ignore[assignment]
    if get_channel is not None:
        try:
            channel = get_channel("email")
        except ChannelNotConfiguredError:
            channel = None
        if channel is not None:
            # The channel writes Message-ID as <key@its sender's domain>, the same as ours.
            key = message_id.strip("<>").split("@", 1)[0]
            extra = {k: v for k, v in headers.items() if k != "Message-ID"}
            try:
                result = channel.send_batch(
                    [OutgoingMessage(key=key, to=to, subject=subject, text=text, headers=extra)]
                )[0]
            except ChannelUnavailableError as exc:
                return TicketMessage.Delivery.PENDING, str(exc)
            finally:
                channel.close()
            if result.is_sent:
                return TicketMessage.Delivery.SENT, ""
            if result.status == "retry":
                return TicketMessage.Delivery.PENDING, result.error
            return TicketMessage.Delivery.FAILED, result.error
    from django.core.mail import EmailMessage  # noqa: PLC0415 -- the fallback sender

    sender = getattr(settings, "KEQUN_SERVICE_ADDRESS", "") or settings.DEFAULT_FROM_EMAIL
    try:
        EmailMessage(subject, text, sender, [to], headers=headers).send()
    except (OSError, ValueError) as exc:
        return TicketMessage.Delivery.PENDING, f"{type(exc).__name__}: {exc}"
    return TicketMessage.Delivery.SENT, ""


@task()
def deliver_reply_task(message_id: int) -> str:
    """Email one agent reply (idempotent: a sent reply is not sent again)."""
    return deliver_reply(message_id)
