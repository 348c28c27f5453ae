"""Every change to tickets goes through here: agents, email, the API, the admin and jobs.

Stable for the apps above (kequn.feedback): ``open_ticket(*, customer_id, subject, body,
type, priority, source, opened_at=None, by) -> Ticket`` and the ``ticket_closed`` signal
(sent after the closing transaction commits, with ``ticket`` and ``by``).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext as _

from kequn.journeys.services import fire_trigger
from kequn.security.actors import Actor, get_user_or_none
from kequn.security.audit import services as audit
from kequn.service import sla
from kequn.service.attachments import AttachmentError, CheckedFile, check_attachment
from kequn.service.calendar import CalendarError
from kequn.service.delivery import (
    customer_email,
    deliver_reply,
    enqueue_delivery,
    mail_domain,
    send_email,
)
from kequn.service.mail import ParsedEmail, parse_email
from kequn.service.models import (
    OPEN_STATUSES,
    Attachment,
    BusinessCalendar,
    InboundEmail,
    Priority,
    Queue,
    SlaEvent,
    SlaPolicy,
    Source,
    Status,
    Ticket,
    TicketMessage,
    TicketType,
)

# Sent once a ticket's closing has committed: ticket_closed.send(sender=Ticket, ticket=, by=).
ticket_closed = Signal()
# Sent once a ticket's resolution has committed (same arguments).
ticket_resolved = Signal()
# Journey triggers: a complaint opened (e.g. start a win-back) and a complaint resolved.
COMPLAINT_OPENED = "service.complaint_opened"
COMPLAINT_RESOLVED = "service.complaint_resolved"

# What a visitor may file through the public contact form.
WEB_FORM_TYPES = (
    TicketType.INQUIRY,
    TicketType.COMPLAINT,
    TicketType.RETURN,
    TicketType.SUGGESTION,
)

# Which statuses an agent may move a ticket to from each one.
TRANSITIONS: dict[str, set[str]] = {
    Status.NEW: {Status.OPEN, Status.WAITING, Status.RESOLVED, Status.CLOSED},
    Status.OPEN: {Status.WAITING, Status.RESOLVED, Status.CLOSED},
    Status.WAITING: {Status.OPEN, Status.RESOLVED, Status.CLOSED},
    Status.REOPENED: {Status.OPEN, Status.WAITING, Status.RESOLVED, Status.CLOSED},
    Status.RESOLVED: {Status.CLOSED, Status.REOPENED},
    Status.CLOSED: {Status.REOPENED},
}


def _user_id(by: Actor) -> int | None:
    user = get_user_or_none(by)
    return user.pk if user is not None else None


def _now() -> dt.datetime:
    return timezone.now()


def _check_choice(value: str, choices: Any, field: str) -> str:
    if value not in choices.values:
        raise ValidationError(
            _("%(field)s %(value)r is not one of %(choices)s")
            % {"field": field, "value": value, "choices": ", ".join(choices.values)}
        )
    return value


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _log_sla(ticket: Ticket, kind: str, target: str = "", due: Any = None, **detail: Any) -> None:
    SlaEvent.objects.create(
        ticket=ticket, kind=kind, target=target, due=due, at=_now(), detail=detail
    )


def _log_outcome(ticket: Ticket, target: str, due: dt.datetime, now: dt.datetime) -> None:
    """Record a target met, or missed unless the SLA check already recorded that breach."""
    if now <= due:
        _log_sla(ticket, SlaEvent.Kind.MET, target, due)
    elif not SlaEvent.objects.filter(
        ticket=ticket, kind=SlaEvent.Kind.BREACH, target=target, due=due
    ).exists():
        _log_sla(ticket, SlaEvent.Kind.BREACH, target, due, late=True)


def _save(ticket: Ticket, by: Actor) -> None:
    with audit.acting_as(by):
        ticket.save()


def _store_attachments(message: TicketMessage, files: Iterable[CheckedFile]) -> None:
    for checked in files:
        attachment = Attachment(
            message=message,
            file_name=checked.name,
            content_type=checked.content_type,
            size=len(checked.data),
        )
        attachment.file.save(checked.name, ContentFile(checked.data), save=False)
        attachment.save()


def check_files(files: Sequence[tuple[str, bytes]]) -> tuple[list[CheckedFile], list[str]]:
    """Return the acceptable files and one refusal reason per refused file."""
    accepted, refused = [], []
    for name, data in files:
        try:
            accepted.append(check_attachment(name, data))
        except AttachmentError as exc:
            refused.append(str(exc))
    return accepted, refused


# --- opening and assignment ------------------------------------------------------------


def pick_assignee(queue: Queue) -> Any:
    """Return the queue's next member after the last one assigned (round robin), or None."""
    locked = Queue.objects.select_for_update().get(pk=queue.pk)
    members = list(locked.members.filter(is_active=True).order_by("id"))
    if not members:
        return None
    after = [m for m in members if locked.last_assigned_id and m.pk > locked.last_assigned_id]
    chosen = after[0] if after else members[0]
    Queue.objects.filter(pk=queue.pk).update(last_assigned=chosen)
    return chosen


def open_ticket(
    *,
    customer_id: int | None,
    subject: str,
    body: str,
    type: str = TicketType.INQUIRY,
    priority: str = Priority.NORMAL,
    source: str = Source.API,
    opened_at: dt.datetime | None = None,
    by: Actor,
    queue: Queue | None = None,
    assignee: Any = None,
    product_id: int | None = None,
    order_id: int | None = None,
    from_address: str = "",
    message_id: str = "",
    attachments: Sequence[tuple[str, bytes]] = (),
) -> Ticket:
    """Open a ticket with the customer's first message; apply the SLA; assign round robin.

    opened_at (imports of historic tickets) dates the ticket and its deadlines, which are
    counted on the business calendar of that time. Bad attachments raise ValidationError.
    """
    _check_choice(type, TicketType, "type")
    _check_choice(priority, Priority, "priority")
    _check_choice(source, Source, "source")
    subject = " ".join(str(subject).split())[:300]
    if not subject:
        raise ValidationError(_("subject: a ticket needs a subject"))
    opened = opened_at or _now()
    if timezone.is_naive(opened):
        raise ValidationError(_("opened_at: give the time zone (e.g. 2025-09-30T17:00:00+08:00)"))
    if opened > _now() + dt.timedelta(minutes=5):
        raise ValidationError(_("opened_at: a ticket cannot be opened in the future"))
    files, refused = check_files(attachments)
    if refused:
        raise ValidationError(refused)
    ticket = Ticket(
        customer_id=customer_id,
        subject=subject,
        type=type,
        priority=priority,
        source=source,
        queue=queue,
        assignee=assignee,
        product_id=product_id,
        order_id=order_id,
        from_address=from_address[:254],
        opened_at=opened,
        last_customer_message_at=opened,
    )
    with transaction.atomic():
        if ticket.assignee is None and queue is not None:
            ticket.assignee = pick_assignee(queue)
        try:
            sla.refresh_ticket_sla(ticket)
        except CalendarError as exc:
            raise ValidationError(_("SLA calendar: %(error)s") % {"error": exc}) from None
        _save(ticket, by)
        message = TicketMessage.objects.create(
            ticket=ticket,
            kind=TicketMessage.Kind.CUSTOMER,
            body=str(body or "").replace("\x00", ""),
            sender=from_address[:254],
            message_id=message_id[:300],
            created_at=opened,
            author_id=_user_id(by) if source in (Source.PHONE, Source.STORE) else None,
        )
        _store_attachments(message, files)
        _fire_complaint_trigger(ticket, COMPLAINT_OPENED, by=by)
        if ticket.sla_policy_id:
            _log_sla(
                ticket,
                SlaEvent.Kind.APPLIED,
                policy=ticket.sla_policy.name if ticket.sla_policy else "",
                first_response_due=_iso(ticket.first_response_due),
                resolution_due=_iso(ticket.resolution_due),
            )
    return ticket


def assign_ticket(
    *, ticket: Ticket, by: Actor, assignee: Any = None, queue: Queue | None = None
) -> Ticket:
    """Move a ticket to a queue and/or a person; no person given means the queue's next member."""
    with transaction.atomic():
        if queue is not None:
            ticket.queue = queue
        if assignee is None and ticket.queue is not None:
            assignee = pick_assignee(ticket.queue)
        ticket.assignee = assignee
        sla.refresh_ticket_sla(ticket)
        _save(ticket, by)
    return ticket


def update_ticket(*, ticket: Ticket, changes: dict[str, Any], by: Actor) -> Ticket:
    """Change type, priority, subject, queue, assignee or status; recompute the SLA."""
    allowed = {"type", "priority", "subject", "queue", "assignee", "status"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError(
            _("cannot change %(fields)s of a ticket") % {"fields": ", ".join(sorted(unknown))}
        )
    status = changes.pop("status", None)
    with transaction.atomic():
        if "type" in changes:
            ticket.type = _check_choice(changes["type"], TicketType, "type")
        if "priority" in changes:
            ticket.priority = _check_choice(changes["priority"], Priority, "priority")
        if "subject" in changes:
            ticket.subject = " ".join(str(changes["subject"]).split())[:300] or ticket.subject
        if "queue" in changes:
            ticket.queue = changes["queue"]
        if "assignee" in changes:
            ticket.assignee = changes["assignee"]
        sla.refresh_ticket_sla(ticket)
        _save(ticket, by)
        if status and status != ticket.status:
            change_status(ticket=ticket, status=status, by=by)
    return ticket


# --- the clock: pause, resume, resolve, close ------------------------------------------


def _pause(ticket: Ticket, now: dt.datetime) -> None:
    if ticket.paused_at is None:
        ticket.paused_at = now
        _log_sla(ticket, SlaEvent.Kind.PAUSED)


def _resume(ticket: Ticket, now: dt.datetime) -> None:
    if ticket.paused_at is None:
        return
    minutes = 0.0
    if ticket.sla_policy is not None:
        calendar = sla.get_calendar(ticket.sla_policy.calendar_id)
        minutes = calendar.minutes_between(ticket.paused_at, now)
    ticket.paused_minutes += minutes
    ticket.paused_at = None
    _log_sla(ticket, SlaEvent.Kind.RESUMED, paused_minutes=round(minutes, 1))


def change_status(
    *, ticket: Ticket, status: str, by: Actor, at: dt.datetime | None = None
) -> Ticket:
    """Move a ticket to a status; waiting pauses the SLA clock, leaving it resumes it."""
    _check_choice(status, Status, "status")
    if status == ticket.status:
        return ticket
    if status not in TRANSITIONS[ticket.status]:
        raise ValidationError(
            _("status: a %(status)s ticket cannot become %(new)s; allowed: %(allowed)s")
            % {
                "status": ticket.status,
                "new": status,
                "allowed": ", ".join(sorted(TRANSITIONS[ticket.status])),
            }
        )
    now = at or _now()
    with transaction.atomic():
        if status == Status.WAITING:
            _pause(ticket, now)
        elif ticket.status == Status.WAITING:
            _resume(ticket, now)
        if status == Status.RESOLVED:
            ticket.resolved_at = now
            if ticket.resolution_due:
                _log_outcome(ticket, "resolution", ticket.resolution_due, now)
        if status == Status.CLOSED:
            ticket.closed_at = now
            ticket.resolved_at = ticket.resolved_at or now
        if status == Status.REOPENED:
            ticket.resolved_at = ticket.closed_at = None
        ticket.status = status
        sla.refresh_ticket_sla(ticket)
        _save(ticket, by)
        if status in (Status.RESOLVED, Status.CLOSED):
            _fire_complaint_trigger(ticket, COMPLAINT_RESOLVED, by=by)
        if status == Status.CLOSED:
            transaction.on_commit(lambda: ticket_closed.send(sender=Ticket, ticket=ticket, by=by))
        elif status == Status.RESOLVED:
            transaction.on_commit(lambda: ticket_resolved.send(sender=Ticket, ticket=ticket, by=by))
    return ticket


def _fire_complaint_trigger(ticket: Ticket, kind: str, *, by: Actor) -> None:
    """Start the journeys set to this complaint event, once per ticket, after the commit."""
    if ticket.type != TicketType.COMPLAINT or ticket.customer_id is None:
        return
    # One key per ticket and event: resolving then closing (or reopening and resolving
    # again) enters a journey once.
    payload = {"ticket_id": ticket.pk, "priority": ticket.priority, "key": f"{kind}-{ticket.pk}"}
    customer_ids = [ticket.customer_id]
    transaction.on_commit(
        lambda: fire_trigger(kind=kind, customer_ids=customer_ids, payload=payload, by=by)
    )


# --- messages --------------------------------------------------------------------------


def make_message_id(ticket: Ticket, message: TicketMessage) -> str:
    """Return the Message-ID of an outgoing reply; replies to it thread back to the ticket."""
    return f"<ticket-{ticket.pk}.{message.pk}.{secrets.token_hex(4)}@{mail_domain()}>"


def add_reply(
    *,
    ticket: Ticket,
    body: str,
    by: Actor,
    internal: bool = False,
    waiting: bool = False,
    attachments: Sequence[tuple[str, bytes]] = (),
    at: dt.datetime | None = None,
) -> TicketMessage:
    """Add an agent's reply (emailed when the ticket has an address) or an internal note."""
    if not str(body).strip():
        raise ValidationError(_("body: a reply needs text"))
    files, refused = check_files(attachments)
    if refused:
        raise ValidationError(refused)
    now = at or _now()
    with transaction.atomic():
        message = TicketMessage.objects.create(
            ticket=ticket,
            kind=TicketMessage.Kind.NOTE if internal else TicketMessage.Kind.REPLY,
            author_id=_user_id(by),
            body=str(body).replace("\x00", ""),
            created_at=now,
        )
        _store_attachments(message, files)
        if not internal:
            _record_agent_reply(ticket, now)
            if waiting:
                change_status(ticket=ticket, status=Status.WAITING, by=by, at=now)
            elif ticket.status in (Status.NEW, Status.REOPENED, Status.WAITING):
                change_status(ticket=ticket, status=Status.OPEN, by=by, at=now)
            else:
                sla.refresh_ticket_sla(ticket)
                _save(ticket, by)
            if ticket.from_address or (ticket.customer_id and customer_email(ticket)):
                message.message_id = make_message_id(ticket, message)
                message.delivery = TicketMessage.Delivery.PENDING
                message.save(update_fields=["message_id", "delivery"])
                transaction.on_commit(lambda: enqueue_delivery(message.pk))
    return message


def _record_agent_reply(ticket: Ticket, now: dt.datetime) -> None:
    if ticket.first_responded_at is None:
        ticket.first_responded_at = now
        if ticket.first_response_due:
            _log_outcome(ticket, "first_response", ticket.first_response_due, now)
    elif ticket.next_response_due:
        _log_outcome(ticket, "next_response", ticket.next_response_due, now)
    ticket.last_agent_message_at = now


def add_customer_message(
    *,
    ticket: Ticket,
    body: str,
    by: Actor,
    sender: str = "",
    message_id: str = "",
    at: dt.datetime | None = None,
    attachments: Sequence[CheckedFile] = (),
) -> TicketMessage:
    """Add the customer's message to a ticket; it reopens a resolved one and resumes the clock."""
    now = at or _now()
    with transaction.atomic():
        message = TicketMessage.objects.create(
            ticket=ticket,
            kind=TicketMessage.Kind.CUSTOMER,
            body=str(body).replace("\x00", ""),
            sender=sender[:254],
            message_id=message_id[:300],
            created_at=now,
        )
        _store_attachments(message, attachments)
        ticket.last_customer_message_at = now
        if ticket.status in (Status.RESOLVED, Status.CLOSED):
            change_status(ticket=ticket, status=Status.REOPENED, by=by, at=now)
        elif ticket.status == Status.WAITING:
            change_status(ticket=ticket, status=Status.OPEN, by=by, at=now)
        else:
            sla.refresh_ticket_sla(ticket)
            _save(ticket, by)
    return message


def merge_tickets(*, source: Ticket, target: Ticket, by: Actor) -> Ticket:
    """Merge a duplicate into another ticket: its messages move over, it is closed."""
    if source.pk == target.pk:
        raise ValidationError(_("a ticket cannot be merged into itself"))
    if target.merged_into_id:
        raise ValidationError(
            _("ticket #%(id)s was itself merged into #%(into)s")
            % {"id": target.pk, "into": target.merged_into_id}
        )
    if source.customer_id and target.customer_id and source.customer_id != target.customer_id:
        raise ValidationError(
            _("tickets #%(a)s and #%(b)s belong to different customers; merge the customers first")
            % {"a": source.pk, "b": target.pk}
        )
    with transaction.atomic():
        moved = TicketMessage.objects.filter(ticket=source).update(ticket=target)
        SlaEvent.objects.create(
            ticket=target,
            kind=SlaEvent.Kind.APPLIED,
            at=_now(),
            detail={"merged_from": source.pk, "messages": moved},
        )
        if target.opened_at > source.opened_at:
            target.opened_at = source.opened_at  # the customer has waited since the first one
            sla.refresh_ticket_sla(target)
            _save(target, by)
        source.merged_into = target
        source.status = Status.CLOSED
        source.closed_at = _now()
        sla.refresh_ticket_sla(source)
        _save(source, by)
    return target


# --- email out -------------------------------------------------------------------------


# --- email in --------------------------------------------------------------------------


def _find_thread(parsed: ParsedEmail) -> Ticket | None:
    if parsed.references:
        hit = (
            TicketMessage.objects.filter(message_id__in=parsed.references[-50:])
            .select_related("ticket")
            .order_by("-id")
            .first()
        )
        if hit is not None:
            return hit.ticket
    for ticket_id in [*parsed.referenced_ticket_ids(), parsed.ticket_hint()]:
        if ticket_id is not None:
            ticket = Ticket.objects.filter(pk=ticket_id).first()
            if ticket is not None:
                return ticket
    return None


def _follow_merges(ticket: Ticket) -> Ticket:
    seen = set()
    while ticket.merged_into_id and ticket.pk not in seen:
        seen.add(ticket.pk)
        ticket = ticket.merged_into  # type: ignore[assignment]
    return ticket


def receive_email(raw: bytes, *, by: Actor, via: str = "imap") -> InboundEmail:
    """Turn one received email into a ticket or a reply on its thread, or quarantine it.

    Nothing is lost: the raw message is kept with what it became or why it was set aside.
    The same message received twice (a poll killed before marking it read) is stored once.
    """
    from kequn.customers.services import (  # noqa: PLC0415 -- customer writes only on this path
        IdentityInput,
        create_customer,
        find_customer_by_identity,
    )

    parsed = parse_email(raw)
    existing = InboundEmail.objects.filter(digest=parsed.digest).first()
    if existing is not None:
        return existing
    record = InboundEmail(
        digest=parsed.digest,
        message_id=parsed.message_id,
        sender=parsed.sender,
        subject=parsed.subject,
        raw=raw,
        via=via,
    )

    def quarantine(reason: str) -> InboundEmail:
        record.outcome = InboundEmail.Outcome.QUARANTINED
        record.reason = reason[:300]
        with audit.acting_as(by):
            record.save()
        return record

    if parsed.problem:
        return quarantine(parsed.problem)
    if not parsed.sender:
        return quarantine(_("no sender address (From); reply by hand or discard it"))
    if parsed.is_automatic:
        return quarantine(
            _("an automatic reply or delivery report (Auto-Submitted); no ticket made")
        )
    ours = (getattr(settings, "KEQUN_SERVICE_ADDRESS", "") or "").lower()
    if ours and parsed.sender == ours:
        return quarantine(_("sent from our own support address (a mail loop); no ticket made"))
    files, refused = check_files(parsed.attachments)
    body = parsed.text or "(no text)"
    if refused:
        body += "\n\n" + "\n".join(f"[attachment refused] {r}" for r in refused)
    try:
        with transaction.atomic():
            thread = _find_thread(parsed)
            if thread is not None:
                thread = _follow_merges(thread)
                add_customer_message(
                    ticket=thread,
                    body=body,
                    by=by,
                    sender=parsed.sender,
                    message_id=parsed.message_id,
                    attachments=files,
                )
                record.outcome, record.ticket = InboundEmail.Outcome.REPLY, thread
            else:
                customer = find_customer_by_identity("email", parsed.sender)
                if customer is None:
                    policy = getattr(settings, "KEQUN_SERVICE_UNKNOWN_SENDER", "create")
                    if policy != "create":
                        raise _QuarantineError(
                            _(
                                "unknown sender %(sender)s: no customer has this email; "
                                "add it to a customer and retry, or set "
                                "KEQUN_SERVICE_UNKNOWN_SENDER=create"
                            )
                            % {"sender": parsed.sender}
                        )
                    customer = create_customer(
                        {"name": parsed.sender_name or parsed.sender.split("@")[0]},
                        [IdentityInput("email", parsed.sender)],
                        by=by,
                        source="email",
                    )
                elif customer.merged_into is not None:
                    customer = customer.merged_into
                queue = Queue.objects.filter(email_address__iexact=_to_address(raw)).first()
                ticket = open_ticket(
                    customer_id=customer.pk,
                    subject=parsed.subject or "(no subject)",
                    body="",
                    type=TicketType.INQUIRY,
                    priority=Priority.NORMAL,
                    source=Source.EMAIL,
                    by=by,
                    queue=queue,
                    from_address=parsed.sender,
                    message_id=parsed.message_id,
                )
                first = ticket.messages.get()
                first.body = body
                first.save(update_fields=["body"])
                _store_attachments(first, files)
                record.outcome, record.ticket = InboundEmail.Outcome.TICKET, ticket
            if refused:
                record.reason = "; ".join(refused)[:300]
            with audit.acting_as(by):
                record.save()
    except _QuarantineError as exc:
        return quarantine(str(exc))
    except (ValidationError, IntegrityError) as exc:
        text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        return quarantine(_("cannot be filed: %(error)s") % {"error": text})
    return record


class _QuarantineError(Exception):
    pass


def _to_address(raw: bytes) -> str:
    import email  # noqa: PLC0415 -- only for the queue's address
    from email.utils import getaddresses  # noqa: PLC0415 -- only for the queue's address

    message = email.message_from_bytes(raw)
    found = getaddresses([str(message.get("Delivered-To") or message.get("To") or "")])
    return found[0][1].lower() if found else ""


def retry_inbound(*, record: InboundEmail, by: Actor) -> InboundEmail:
    """File a quarantined email again (after its sender was added to a customer)."""
    if record.outcome != InboundEmail.Outcome.QUARANTINED:
        raise ValidationError(_("inbound email #%(id)s is not quarantined") % {"id": record.pk})
    raw = bytes(record.raw)
    with transaction.atomic():
        with audit.acting_as(by):
            record.delete()
        return receive_email(raw, by=by, via=record.via)


# --- SLA checks ------------------------------------------------------------------------


def check_slas(*, by: Actor, now: dt.datetime | None = None) -> dict[str, int]:
    """Record warnings and breaches of running deadlines; escalate breached tickets.

    Idempotent: each (ticket, target, deadline) warns and breaches once. Only tickets whose
    earliest deadline lies within the largest warning window are read (the next_due index).
    """
    now = now or _now()
    counts = {"warnings": 0, "breaches": 0, "escalated": 0}
    policies = {p.pk: p for p in SlaPolicy.objects.all()}
    if not policies:
        return counts
    horizon = max(p.warn_minutes for p in policies.values())
    # A working-minute window can span a night: look a few calendar days ahead, then check.
    look_ahead = now + dt.timedelta(minutes=horizon) + dt.timedelta(days=4)
    due = Ticket.objects.filter(next_due__lte=look_ahead).exclude(
        status__in=[Status.WAITING, Status.RESOLVED, Status.CLOSED]
    )
    fields = (
        "id",
        "sla_policy_id",
        "sla_state",
        "first_response_due",
        "next_response_due",
        "resolution_due",
        "first_responded_at",
        "resolved_at",
        "queue_id",
        "assignee_id",
    )
    rows = list(due.values_list(*fields))
    if not rows:
        return counts
    seen = set(
        SlaEvent.objects.filter(
            ticket_id__in=[r[0] for r in rows],
            kind__in=[SlaEvent.Kind.WARNING, SlaEvent.Kind.BREACH],
        ).values_list("ticket_id", "kind", "target", "due")
    )
    events: list[SlaEvent] = []
    states: dict[str, list[int]] = {}
    breached: list[tuple[int, SlaPolicy]] = []
    for tid, pid, state, first_due, next_due, res_due, responded, resolved, _q, _a in rows:
        policy = policies.get(pid)
        if policy is None:
            continue
        calendar = sla.get_calendar(policy.calendar_id)
        targets = []
        if first_due and responded is None:
            targets.append(("first_response", first_due))
        if next_due:
            targets.append(("next_response", next_due))
        if res_due and resolved is None:
            targets.append(("resolution", res_due))
        new_state = "ok"
        for target, when in targets:
            if now > when:
                new_state = "breached"
                if (tid, SlaEvent.Kind.BREACH, target, when) not in seen:
                    events.append(
                        SlaEvent(ticket_id=tid, kind="breach", target=target, due=when, at=now)
                    )
                    counts["breaches"] += 1
                    breached.append((tid, policy))
            elif calendar.minutes_between(now, when) <= policy.warn_minutes:
                if new_state != "breached":
                    new_state = "warning"
                if (tid, SlaEvent.Kind.WARNING, target, when) not in seen:
                    events.append(
                        SlaEvent(ticket_id=tid, kind="warning", target=target, due=when, at=now)
                    )
                    counts["warnings"] += 1
        if new_state != state:
            states.setdefault(new_state, []).append(tid)
    with transaction.atomic():
        SlaEvent.objects.bulk_create(events, batch_size=2000)
        for state, ids in states.items():
            for start in range(0, len(ids), 5000):
                Ticket.objects.filter(pk__in=ids[start : start + 5000]).update(sla_state=state)
        escalated = _escalate(breached, now, by)
        counts["escalated"] = escalated
        if events or states:
            audit.record_event(
                audit.CHANGE,
                actor=by,
                target_type="service.ticket",
                detail={
                    "sla_check": counts,
                    "state_changes": sum(len(ids) for ids in states.values()),
                },
            )
    return counts


def _escalate(breached: list[tuple[int, SlaPolicy]], now: dt.datetime, by: Actor) -> int:
    """Move breached tickets to their policy's escalation queue (once per ticket)."""
    done = 0
    already = set()
    for tid, policy in breached:
        if tid in already or policy.escalate_to_id is None:
            continue
        already.add(tid)
        ticket = Ticket.objects.filter(pk=tid).first()
        if ticket is None or ticket.queue_id == policy.escalate_to_id:
            continue
        previous = ticket.assignee_id
        assign_ticket(ticket=ticket, queue=policy.escalate_to, by=by)
        SlaEvent.objects.create(
            ticket=ticket,
            kind=SlaEvent.Kind.ESCALATED,
            at=now,
            detail={
                "queue": policy.escalate_to_id,
                "from_assignee": previous,
                "to_assignee": ticket.assignee_id,
            },
        )
        _notify_escalation(ticket)
        done += 1
    return done


def _notify_escalation(ticket: Ticket) -> None:
    """Email the new assignee that a ticket missed its SLA (when they have an address)."""
    user = ticket.assignee
    address = getattr(user, "email", "") if user is not None else ""
    if not address:
        return
    subject = f"SLA missed: {ticket.reference} {ticket.subject}"
    message_id = f"<escalation-{ticket.pk}.{secrets.token_hex(4)}@{mail_domain()}>"
    transaction.on_commit(lambda: send_email(message_id, address, subject, subject, {}))


SLA_FIELDS = (
    "sla_policy_id", "first_response_due", "next_response_due", "resolution_due", "next_due",
    "sla_state",
)  # fmt: skip


# What the deadline arithmetic reads (the rest of a ticket stays unloaded).
RECOMPUTE_READS = (
    "id", "status", "priority", "type", "queue_id", "opened_at", "paused_minutes",
    "first_responded_at", "last_customer_message_at", "last_agent_message_at", "resolved_at",
    *SLA_FIELDS,
)  # fmt: skip


def _sla_values(ticket: Ticket) -> tuple:
    return tuple(getattr(ticket, name) for name in SLA_FIELDS)


def _write_sla_fields(tickets: list[Ticket]) -> None:
    """Store the SLA fields of these tickets with one prepared UPDATE run per row.

    bulk_update builds a CASE expression per field and row, which costs more than the
    arithmetic itself at tens of thousands of tickets.
    """
    if not tickets:
        return
    connection = transaction.get_connection()
    meta = Ticket._meta
    fields: list[Any] = [
        meta.get_field(name.removesuffix("_id") if name.endswith("_id") else name)
        for name in SLA_FIELDS
    ]
    assignments = ", ".join(f"{connection.ops.quote_name(f.column)} = %s" for f in fields)
    sql = f"UPDATE {connection.ops.quote_name(meta.db_table)} SET {assignments} WHERE id = %s"  # noqa: S608 -- names from the model
    rows = [
        [f.get_db_prep_save(getattr(t, f.attname), connection) for f in fields] + [t.pk]
        for t in tickets
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def recompute_deadlines(*, by: Actor, batch_size: int = 5000) -> int:
    """Recompute the deadlines of every open ticket (after a policy or calendar change).

    Returns how many open tickets were checked; only those whose deadlines changed are written.
    """
    policies = list(
        SlaPolicy.objects.filter(is_active=True)
        .prefetch_related("queues")
        .order_by("position", "id")
    )
    checked = changed = 0
    last = 0
    while True:
        batch = list(
            Ticket.objects.filter(status__in=OPEN_STATUSES, id__gt=last)
            .only(*RECOMPUTE_READS)
            .order_by("id")[:batch_size]
        )
        if not batch:
            break
        dirty = []
        for ticket in batch:
            before = _sla_values(ticket)
            sla.refresh_ticket_sla(ticket, policies)
            if _sla_values(ticket) != before:
                dirty.append(ticket)
        with transaction.atomic():
            _write_sla_fields(dirty)
        checked += len(batch)
        changed += len(dirty)
        last = batch[-1].pk
    if changed:
        audit.record_event(
            audit.CHANGE,
            actor=by,
            target_type="service.ticket",
            detail={"recomputed": checked, "changed": changed},
        )
    return checked


def save_calendar(calendar: BusinessCalendar, *, by: Actor) -> BusinessCalendar:
    """Save a calendar after checking its hours (overlaps and bad times are refused)."""
    try:
        sla.validate_calendar(calendar)
    except CalendarError as exc:
        raise ValidationError({"hours": str(exc)}) from None
    with transaction.atomic(), audit.acting_as(by):
        calendar.save()
    sla.forget_calendars()
    return calendar


def load_holidays(*, calendar: BusinessCalendar, rows: Iterable[dict[str, str]], by: Actor) -> int:
    """Store the operator's holiday and make-up workday entries (date, workday, name, hours)."""
    from kequn.service.calendar import parse_intervals  # noqa: PLC0415 -- validation only

    entries = []
    for number, row in enumerate(rows, start=2):
        where = _("row %(n)d") % {"n": number}
        try:
            date = dt.date.fromisoformat(str(row.get("date", "")).strip())
        except ValueError:
            raise ValidationError(
                _("%(where)s: date %(date)r is not YYYY-MM-DD")
                % {"where": where, "date": row.get("date")}
            ) from None
        kind = str(row.get("workday", "")).strip().lower()
        if kind not in ("0", "1", "true", "false", "yes", "no", "holiday", "workday"):
            raise ValidationError(
                _("%(where)s: workday must be 1 (make-up workday) or 0 (holiday)")
                % {"where": where}
            )
        is_workday = kind in ("1", "true", "yes", "workday")
        hours = []
        text = str(row.get("hours", "") or "").strip()
        if text:
            hours = [span.split("-") for span in text.split()]
            try:
                parse_intervals(hours, where=f"{where} ({date})")
            except CalendarError as exc:
                raise ValidationError(str(exc)) from None
        entries.append((date, is_workday, hours, str(row.get("name", ""))[:100]))
    with transaction.atomic():
        for date, is_workday, hours, name in entries:
            calendar.days.update_or_create(
                date=date, defaults={"is_workday": is_workday, "hours": hours, "name": name}
            )
        audit.record_event(
            audit.CHANGE, actor=by, target=calendar, detail={"days_loaded": len(entries)}
        )
    sla.forget_calendars()
    return len(entries)


__all__ = [
    "add_customer_message",
    "add_reply",
    "assign_ticket",
    "change_status",
    "check_slas",
    "deliver_reply",
    "merge_tickets",
    "open_ticket",
    "receive_email",
    "recompute_deadlines",
    "ticket_closed",
    "ticket_resolved",
    "update_ticket",
]


# --- the public contact form -------------------------------------------------------------


def submit_web_form(
    *,
    name: str,
    email: str,
    subject: str,
    body: str,
    type: str = TicketType.INQUIRY,
    phone: str = "",
    order_number: str = "",
    attachments: Sequence[tuple[str, bytes]] = (),
    by: Actor,
) -> Ticket:
    """Open a ticket from the public contact form for the customer owning the email or phone.

    A visitor no customer matches becomes a new contact (source "web"). An order number is
    linked only when it is that customer's order. A bad attachment refuses the whole form
    (ValidationError naming the file), so the visitor can fix it; nothing is stored then.
    """
    from kequn.commerce.models import Order  # noqa: PLC0415 -- read only, for the order link
    from kequn.customers.services import (  # noqa: PLC0415 -- customer writes only on this path
        IdentityInput,
        create_customer,
        find_customer_by_identity,
    )

    _check_choice(type, TicketType, "type")
    if type not in WEB_FORM_TYPES:
        raise ValidationError(
            _("type: choose one of %(types)s") % {"types": ", ".join(WEB_FORM_TYPES)}
        )
    email, phone = email.strip(), phone.strip()
    if not email:
        raise ValidationError(_("email: we need an address to answer you"))
    _refused = check_files(attachments)[1]
    if _refused:
        raise ValidationError(_refused[0])
    with transaction.atomic():
        customer = find_customer_by_identity("email", email) or (
            find_customer_by_identity("phone", phone) if phone else None
        )
        if customer is not None and customer.merged_into is not None:
            customer = customer.merged_into
        if customer is None:
            identities = [IdentityInput("email", email)]
            if phone:
                identities.append(IdentityInput("phone", phone))
            customer = create_customer(
                {"name": name.strip() or email.split("@")[0]}, identities, by=by, source="web"
            )
        order_id = None
        number = order_number.strip()
        if number:
            order_id = (
                Order.objects.filter(customer_id=customer.pk, number=number)
                .values_list("id", flat=True)
                .first()
            )
            if order_id is None:
                body = f"{body}\n\n{_('Order number given')}: {number}"
        return open_ticket(
            customer_id=customer.pk,
            subject=subject,
            body=body,
            type=type,
            source=Source.WEB,
            by=by,
            order_id=order_id,
            from_address=email,
            attachments=attachments,
        )
