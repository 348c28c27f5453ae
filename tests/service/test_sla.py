"""SLA policies: first match, deadlines on the calendar, paused clock, warnings, breach, escalation."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from kequn.service import services
from kequn.service.models import Queue, SlaEvent, Status, Ticket
from tests.factories import make_customer
from tests.service.helpers import BY, at, make_calendar, make_policy

pytestmark = pytest.mark.django_db


def open_at(opened, **fields):
    customer = fields.pop("customer", None) or make_customer("张伟")
    return services.open_ticket(
        customer_id=customer.pk,
        subject=fields.pop("subject", "屏幕碎了"),
        body="手机屏幕摔碎了，怎么修？",
        type=fields.pop("type", "return"),
        priority=fields.pop("priority", "normal"),
        source="phone",
        opened_at=opened,
        by=BY,
        **fields,
    )


def test_historic_ticket_gets_deadlines_on_that_years_calendar():
    make_policy()
    ticket = open_at(at(2025, 9, 30, 17, 0))
    assert ticket.first_response_due == at(2025, 9, 30, 18, 0)  # 1 h: 17-18 on 30 Sep
    assert ticket.resolution_due == at(2025, 10, 9, 17, 0)
    assert ticket.sla_state == "ok"
    applied = ticket.sla_events.get(kind="applied")
    assert applied.detail["policy"] == "standard"


def test_makeup_sunday_counts_for_a_ticket_opened_friday_evening():
    make_policy(first_response_minutes=120)
    ticket = open_at(at(2025, 1, 24, 17, 0))
    assert ticket.first_response_due == at(2025, 1, 26, 10, 0)


def test_first_matching_policy_wins_in_order():
    calendar = make_calendar()
    make_policy(calendar, name="catch-all", position=100, first_response_minutes=240)
    make_policy(calendar, name="urgent complaints", position=1, priorities=["urgent"],
                types=["complaint"], first_response_minutes=15)  # fmt: skip
    urgent = open_at(at(2025, 3, 3, 10, 0), priority="urgent", type="complaint")
    other = open_at(at(2025, 3, 3, 10, 0), priority="urgent", type="inquiry")
    assert urgent.sla_policy.name == "urgent complaints"
    assert urgent.first_response_due == at(2025, 3, 3, 10, 15)
    assert other.sla_policy.name == "catch-all"


def test_no_policy_means_no_deadlines():
    ticket = open_at(at(2025, 3, 3, 10, 0))
    assert ticket.sla_policy is None and ticket.resolution_due is None and ticket.sla_state == ""


def test_waiting_on_the_customer_pauses_the_resolution_clock():
    make_policy()
    ticket = open_at(at(2025, 3, 3, 9, 0))  # Monday; resolution due 18:00 the same day
    assert ticket.resolution_due == at(2025, 3, 3, 18, 0)
    services.add_reply(
        ticket=ticket, body="请寄回手机", waiting=True, by=BY, at=at(2025, 3, 3, 10, 0)
    )
    ticket.refresh_from_db()
    assert ticket.status == Status.WAITING and ticket.sla_state == "paused"
    assert ticket.next_due is None
    # The customer answers on Wednesday 10:00: two working days (8 h each) were paused.
    services.add_customer_message(ticket=ticket, body="已寄出", by=BY, at=at(2025, 3, 5, 10, 0))
    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN
    assert ticket.paused_minutes == 16 * 60
    assert ticket.resolution_due == at(2025, 3, 5, 18, 0)
    # Now a next response is due two working hours after the customer's message.
    assert ticket.next_response_due == at(2025, 3, 5, 12, 0)
    kinds = list(ticket.sla_events.values_list("kind", flat=True))
    assert kinds.count("paused") == 1 and kinds.count("resumed") == 1


def test_first_response_met_and_resolution_missed_are_recorded():
    make_policy()
    ticket = open_at(at(2025, 3, 3, 9, 0))
    services.add_reply(ticket=ticket, body="您好", by=BY, at=at(2025, 3, 3, 9, 30))
    services.change_status(ticket=ticket, status="resolved", by=BY, at=at(2025, 3, 4, 12, 0))
    events = {(e.target, e.kind) for e in ticket.sla_events.all()}
    assert ("first_response", "met") in events
    assert ("resolution", "breach") in events


def test_sla_check_warns_then_breaches_once_and_escalates():
    calendar = make_calendar()
    agent = User.objects.create_user("agent1", email="agent1@example.cn")
    senior = User.objects.create_user("senior", email="senior@example.cn")
    first_line = Queue.objects.create(name="first line")
    first_line.members.add(agent)
    escalation = Queue.objects.create(name="escalation")
    escalation.members.add(senior)
    make_policy(calendar, escalate_to=escalation)
    ticket = open_at(at(2025, 3, 3, 9, 0), queue=first_line)
    assert ticket.assignee == agent
    # 09:40: the first response (due 10:00) is within the 30-minute warning window.
    counts = services.check_slas(by=BY, now=at(2025, 3, 3, 9, 40))
    assert counts == {"warnings": 1, "breaches": 0, "escalated": 0}
    assert services.check_slas(by=BY, now=at(2025, 3, 3, 9, 45))["warnings"] == 0
    ticket.refresh_from_db()
    assert ticket.sla_state == "warning"
    counts = services.check_slas(by=BY, now=at(2025, 3, 3, 10, 1))
    assert counts["breaches"] == 1 and counts["escalated"] == 1
    ticket.refresh_from_db()
    assert ticket.sla_state == "breached"
    assert ticket.queue == escalation and ticket.assignee == senior
    assert services.check_slas(by=BY, now=at(2025, 3, 3, 10, 5))["breaches"] == 0
    escalated = ticket.sla_events.get(kind="escalated")
    assert escalated.detail["from_assignee"] == agent.pk
    # Answering late does not record the same breach twice.
    services.add_reply(ticket=ticket, body="抱歉久等", by=BY, at=at(2025, 3, 3, 10, 30))
    assert (
        SlaEvent.objects.filter(ticket=ticket, target="first_response", kind="breach").count() == 1
    )


def test_round_robin_cycles_through_the_queue():
    queue = Queue.objects.create(name="after-sales")
    users = [User.objects.create_user(f"a{i}") for i in range(3)]
    queue.members.add(*users)
    assigned = [open_at(at(2025, 3, 3, 9, 0), queue=queue).assignee for _ in range(4)]
    assert assigned == [users[0], users[1], users[2], users[0]]


def test_policy_change_recomputes_open_tickets():
    policy = make_policy()
    ticket = open_at(at(2025, 3, 3, 9, 0))
    policy.resolution_minutes = 16 * 60
    policy.save()
    assert services.recompute_deadlines(by=BY) == 1
    ticket.refresh_from_db()
    assert ticket.resolution_due == at(2025, 3, 4, 18, 0)


def test_operator_holiday_file_closes_a_day():
    policy = make_policy()
    services.load_holidays(
        calendar=policy.calendar,
        rows=[{"date": "2025-03-04", "workday": "0", "name": "公司年会"}],
        by=BY,
    )
    ticket = open_at(at(2025, 3, 3, 17, 0))
    assert ticket.resolution_due == at(2025, 3, 5, 17, 0)
    with pytest.raises(ValidationError, match="row 2: date '2025-13-01' is not YYYY-MM-DD"):
        services.load_holidays(
            calendar=policy.calendar, rows=[{"date": "2025-13-01", "workday": "0"}], by=BY
        )


def test_overlapping_calendar_hours_are_refused_on_save():
    calendar = make_calendar()
    calendar.hours = {"mon": [["09:00", "12:00"], ["11:30", "18:00"]]}
    with pytest.raises(ValidationError, match="mon: 09:00-12:00 overlaps 11:30-18:00"):
        services.save_calendar(calendar, by=BY)


def test_statuses_follow_the_allowed_transitions_and_closing_signals():
    make_policy()
    ticket = open_at(at(2025, 3, 3, 9, 0))
    received = []
    services.ticket_closed.connect(lambda sender, ticket, by, **kw: received.append(ticket.pk),
                                   weak=False, dispatch_uid="test-closed")  # fmt: skip
    try:
        with pytest.raises(ValidationError, match="a new ticket cannot become reopened"):
            services.change_status(ticket=ticket, status="reopened", by=BY)
        services.change_status(ticket=ticket, status="resolved", by=BY)
        # A customer's message on a resolved ticket reopens it.
        services.add_customer_message(ticket=ticket, body="还是坏的", by=BY)
        assert Ticket.objects.get(pk=ticket.pk).status == Status.REOPENED
        with pytest.raises(ValidationError):
            services.change_status(ticket=ticket, status="bogus", by=BY)
        from django.test import TestCase

        with TestCase.captureOnCommitCallbacks(execute=True):
            services.change_status(ticket=ticket, status="closed", by=BY)
        assert received == [ticket.pk]
    finally:
        services.ticket_closed.disconnect(dispatch_uid="test-closed")


def test_merge_moves_messages_and_closes_the_duplicate():
    customer = make_customer("李娜")
    first = open_at(at(2025, 3, 3, 9, 0), customer=customer)
    second = open_at(at(2025, 3, 3, 9, 5), customer=customer)
    services.merge_tickets(source=second, target=first, by=BY)
    second.refresh_from_db()
    assert second.status == Status.CLOSED and second.merged_into == first
    assert first.messages.count() == 2
    other = open_at(at(2025, 3, 3, 9, 0))
    with pytest.raises(ValidationError, match="different customers"):
        services.merge_tickets(source=other, target=first, by=BY)


def test_opened_at_must_carry_a_time_zone_and_not_be_in_the_future():
    with pytest.raises(ValidationError, match="give the time zone"):
        open_at(dt.datetime(2025, 3, 3, 9, 0))  # noqa: DTZ001 -- the naive time is the point
    with pytest.raises(ValidationError, match="in the future"):
        open_at(dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
