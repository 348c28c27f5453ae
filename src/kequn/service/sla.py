"""SLA arithmetic: which policy a ticket gets and when its targets fall due (no writes here).

Policies are tried in their order; the first whose conditions (priorities, types, queues)
all hold applies, so a catch-all policy goes last. Deadlines are working minutes on the
policy's calendar counted from the ticket's opening time (an imported ticket opened in
2025 gets 2025's holidays and 调休 days), pushed back by the working minutes the ticket
spent waiting on the customer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from threading import Lock

from kequn.service.calendar import (
    CalendarError,
    Interval,
    WorkCalendar,
    parse_intervals,
    parse_week,
)
from kequn.service.models import BusinessCalendar, SlaPolicy, Status, Ticket

_calendars: dict[int, WorkCalendar] = {}
_lock = Lock()


def build_calendar(calendar: BusinessCalendar) -> WorkCalendar:
    """Return the working calendar of a stored one; a bad entry raises CalendarError."""
    week = parse_week(calendar.hours or {})
    usual = next(h for _, h in sorted(week.items()) if h)
    overrides: dict[dt.date, tuple[Interval, ...]] = {}
    for day in calendar.days.all():
        if not day.is_workday:
            overrides[day.date] = ()
        elif day.hours:
            overrides[day.date] = parse_intervals(day.hours, where=f"{calendar.name} {day.date}")
        else:  # open on the weekday's hours (a workday's on a weekend)
            overrides[day.date] = week[day.date.weekday()] or usual
    return WorkCalendar(
        week=week, time_zone=calendar.time_zone, country=calendar.country, overrides=overrides
    )


def get_calendar(calendar_id: int) -> WorkCalendar:
    """Return a stored calendar's working calendar (cached until a calendar changes)."""
    cached = _calendars.get(calendar_id)
    if cached is None:
        cached = build_calendar(BusinessCalendar.objects.get(pk=calendar_id))
        with _lock:
            _calendars[calendar_id] = cached
    return cached


def forget_calendars(**kwargs: object) -> None:
    """Drop the cached calendars (a calendar, a day or a policy changed)."""
    with _lock:
        _calendars.clear()


def validate_calendar(calendar: BusinessCalendar) -> None:
    """Raise CalendarError naming the problem of a calendar's hours (overlaps, bad times)."""
    parse_week(calendar.hours or {})


def match_policy(ticket: Ticket, policies: list[SlaPolicy] | None = None) -> SlaPolicy | None:
    """Return the first active policy whose conditions the ticket meets."""
    if policies is None:
        policies = list(
            SlaPolicy.objects.filter(is_active=True)
            .prefetch_related("queues")
            .order_by("position", "id")
        )
    for policy in policies:
        if policy.priorities and ticket.priority not in policy.priorities:
            continue
        if policy.types and ticket.type not in policy.types:
            continue
        queue_ids = policy.__dict__.get("_queue_ids")
        if queue_ids is None:  # kept on the instance: a recompute matches thousands of tickets
            queue_ids = policy.__dict__["_queue_ids"] = frozenset(q.pk for q in policy.queues.all())
        if queue_ids and ticket.queue_id not in queue_ids:
            continue
        return policy
    return None


@dataclass(frozen=True)
class Deadlines:
    first_response: dt.datetime | None
    next_response: dt.datetime | None
    resolution: dt.datetime | None

    def running(self, ticket: Ticket) -> list[tuple[str, dt.datetime]]:
        """Return (target, deadline) of the targets still open on the ticket."""
        out = []
        if self.first_response and ticket.first_responded_at is None:
            out.append(("first_response", self.first_response))
        if self.next_response:
            out.append(("next_response", self.next_response))
        if self.resolution and ticket.resolved_at is None:
            out.append(("resolution", self.resolution))
        return out


def compute_deadlines(ticket: Ticket, policy: SlaPolicy, calendar: WorkCalendar) -> Deadlines:
    """Return the ticket's deadlines under a policy (paused time pushes resolution back)."""
    first = (
        calendar.add_minutes(ticket.opened_at, policy.first_response_minutes)
        if policy.first_response_minutes is not None
        else None
    )
    resolution = (
        calendar.add_minutes(ticket.opened_at, policy.resolution_minutes + ticket.paused_minutes)
        if policy.resolution_minutes is not None
        else None
    )
    following = None
    asked = ticket.last_customer_message_at
    waiting_reply = asked is not None and (
        ticket.last_agent_message_at is None or asked > ticket.last_agent_message_at
    )
    if (
        policy.next_response_minutes is not None
        and ticket.first_responded_at is not None
        and waiting_reply
    ):
        assert asked is not None  # noqa: S101 -- narrowed by waiting_reply
        following = calendar.add_minutes(asked, policy.next_response_minutes)
    return Deadlines(first, following, resolution)


def apply_deadlines(ticket: Ticket, deadlines: Deadlines | None) -> None:
    """Set the ticket's deadline fields and the earliest running one (not saved)."""
    if deadlines is None:
        ticket.first_response_due = ticket.next_response_due = ticket.resolution_due = None
        ticket.next_due = None
        return
    ticket.first_response_due = deadlines.first_response
    ticket.next_response_due = deadlines.next_response
    ticket.resolution_due = deadlines.resolution
    running = [due for _, due in deadlines.running(ticket)]
    paused = ticket.status == Status.WAITING
    ticket.next_due = min(running) if running and ticket.is_open and not paused else None


def refresh_ticket_sla(ticket: Ticket, policies: list[SlaPolicy] | None = None) -> None:
    """Match the ticket's policy and set its deadlines (not saved)."""
    policy = match_policy(ticket, policies)
    ticket.sla_policy = policy
    if policy is None:
        apply_deadlines(ticket, None)
        ticket.sla_state = ""
        return
    apply_deadlines(ticket, compute_deadlines(ticket, policy, get_calendar(policy.calendar_id)))
    if ticket.status == Status.WAITING:
        ticket.sla_state = "paused"
    elif ticket.sla_state in ("", "paused"):
        ticket.sla_state = "ok"


__all__ = [
    "CalendarError",
    "Deadlines",
    "apply_deadlines",
    "build_calendar",
    "compute_deadlines",
    "forget_calendars",
    "get_calendar",
    "match_policy",
    "refresh_ticket_sla",
    "validate_calendar",
]
