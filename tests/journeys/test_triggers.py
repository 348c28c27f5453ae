"""Triggers: events, lifecycle stages, segments, first purchases, birthdays and anniversaries."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from django.utils import timezone

from kequn.customers.services import update_customer
from kequn.events.models import Event
from kequn.journeys import triggers
from kequn.journeys.models import CustomerDate, Enrollment, RunnerCursor
from kequn.journeys.runner import run_pass
from kequn.scoring.models import StageChange
from kequn.segments.models import MembershipChange, Segment
from tests.factories import make_customer, make_event, make_order
from tests.journeys.conftest import BY

pytestmark = pytest.mark.django_db

EXIT = [{"id": "x", "kind": "exit"}]


def test_events_enrol_once_each_and_old_or_earlier_events_do_not(make_journey):
    before = make_customer()
    make_event(before)  # stored before the journey starts
    triggers.poll_events(now=timezone.now(), by=BY)  # the cursor starts after it
    journey = make_journey(
        [{"id": "w", "kind": "wait", "config": {"days": 1}}],
        reentry="always",
    )
    viewer, other = make_customer(), make_customer()
    event = make_event(viewer)
    make_event(other, name="Page Viewed")
    old = make_event(other)
    Event.objects.filter(pk=old.pk).update(occurred_at=timezone.now() - timedelta(days=3))
    make_event(None)  # anonymous: nobody to enrol
    now = timezone.now()
    assert triggers.poll_events(now=now, by=BY) == 1
    # Read again (the look-back window): the entry key keeps it to one enrolment.
    RunnerCursor.objects.filter(name="events").update(position=0)
    assert triggers.poll_events(now=now, by=BY) == 0
    enrollment = Enrollment.objects.get(journey=journey)
    assert enrollment.customer_id == viewer.pk
    assert enrollment.entry_key == f"event:{event.pk}"
    assert enrollment.payload["sku"] == "SKU-1"


def test_stage_change_to_at_risk_starts_the_win_back(make_journey):
    journey = make_journey(EXIT, trigger_kind="stage_changed", trigger_config={"to": "at_risk"})
    triggers.poll_stage_changes(now=timezone.now(), by=BY)
    lapsing, fine = make_customer(), make_customer()
    now = timezone.now()
    StageChange.objects.create(
        customer=lapsing, from_stage="active", to_stage="at_risk", changed_at=now
    )
    StageChange.objects.create(customer=fine, from_stage="new", to_stage="active", changed_at=now)
    assert triggers.poll_stage_changes(now=now, by=BY) == 1
    assert list(
        Enrollment.objects.filter(journey=journey).values_list("customer_id", flat=True)
    ) == [lapsing.pk]


def test_segment_entry_and_exit(make_journey):
    segment = Segment.objects.create(name="VIP")
    entered = make_journey(
        EXIT, trigger_kind="segment_entered", trigger_config={"segment": segment.pk}
    )
    left = make_journey(EXIT, trigger_kind="segment_left", trigger_config={"segment": segment.pk})
    triggers.poll_segment_changes(now=timezone.now(), by=BY)
    a, b = make_customer(), make_customer()
    MembershipChange.objects.create(segment=segment, customer=a, change="entered")
    MembershipChange.objects.create(segment=segment, customer=b, change="left")
    assert triggers.poll_segment_changes(now=timezone.now(), by=BY) == 2
    assert Enrollment.objects.get(journey=entered).customer_id == a.pk
    assert Enrollment.objects.get(journey=left).customer_id == b.pk


def test_first_purchase_starts_only_for_a_first_recent_purchase(make_journey):
    journey = make_journey(EXIT, trigger_kind="first_purchase")
    triggers.poll_orders(now=timezone.now(), by=BY)
    newcomer, regular = make_customer(), make_customer()
    make_order(regular, days_ago=400)
    make_order(regular, days_ago=0)
    make_order(newcomer, days_ago=0)
    make_order(newcomer, status="cancelled", days_ago=0)
    assert triggers.poll_orders(now=timezone.now(), by=BY) == 1
    assert Enrollment.objects.get(journey=journey).customer_id == newcomer.pk
    # The first purchase day is kept for the anniversaries.
    day = CustomerDate.objects.get(customer=regular, kind="first_purchase")
    first = timezone.localtime(regular.orders.order_by("ordered_at")[0].ordered_at).date()
    assert (day.day_key, day.year) == (f"{first:%m-%d}", first.year)


def test_birthdays_days_ahead_once_a_year_with_29_february(make_journey):
    journey = make_journey(EXIT, trigger_kind="birthday", trigger_config={"days_before": 3})
    soon = make_customer()
    leap = make_customer()
    later = make_customer()
    update_customer(soon, {"birthday": date(1990, 5, 7)}, by=BY)
    update_customer(leap, {"birthday": date(1992, 2, 29)}, by=BY)
    update_customer(later, {"birthday": date(1985, 5, 8)}, by=BY)
    now = datetime(2027, 5, 4, 8, 0, tzinfo=timezone.get_current_timezone())
    assert triggers.run_daily(now=now, by=BY) == 1
    assert Enrollment.objects.get(journey=journey).customer_id == soon.pk
    # The birthday day is stored as a keyed hash, never as the day itself.
    stored = CustomerDate.objects.get(customer=soon, kind="birthday").day_key
    assert "05" not in stored[:2] and len(stored) == 32
    assert triggers.run_daily(now=now + timedelta(hours=2), by=BY) is None  # once a day
    # 29 February is celebrated on the 28th in a year without one (2027).
    assert set(triggers.find_birthdays(date(2027, 2, 28))) == {leap.pk}
    assert set(triggers.find_birthdays(date(2028, 2, 28))) == set()
    # A birthday changed later is picked up by the next day's sync.
    update_customer(later, {"birthday": date(1985, 5, 10)}, by=BY)
    assert triggers.run_daily(now=now + timedelta(days=3), by=BY) == 1
    assert set(
        Enrollment.objects.filter(journey=journey).values_list("customer_id", flat=True)
    ) == {
        soon.pk,
        later.pk,
    }


def test_anniversaries_of_the_first_purchase(make_journey):
    journey = make_journey(EXIT, trigger_kind="first_purchase_anniversary")
    customer = make_customer()
    order = make_order(customer, days_ago=365)
    triggers.poll_orders(now=timezone.now() - timedelta(days=400), by=BY)
    RunnerCursor.objects.filter(name="orders").update(position=0)
    triggers.poll_orders(now=timezone.now(), by=BY)
    first = timezone.localtime(order.ordered_at).date()
    same_day_next_year = first.replace(year=first.year + 1)
    assert triggers.find_anniversaries(same_day_next_year) == [customer.pk]
    assert triggers.find_anniversaries(first) == []  # the purchase day itself is no anniversary
    now = timezone.make_aware(datetime.combine(same_day_next_year, datetime.min.time()))
    assert triggers.run_date_triggers(today=same_day_next_year, now=now, by=BY) == 1
    assert Enrollment.objects.get(journey=journey).entry_key.startswith(
        "first_purchase_anniversary:"
    )


def test_one_pass_reads_events_and_moves_the_new_enrollments_on(make_journey):
    journey = make_journey([{"id": "t", "kind": "tag", "config": {"tag": "viewed"}}])
    run_pass(by=BY)
    customer = make_customer()
    make_event(customer)
    result = run_pass(by=BY)
    assert (result.events, result.moved) == (1, 1)
    assert Enrollment.objects.get(journey=journey).state == "completed"


def test_a_pass_enrols_many_events_in_one_batch(make_journey):
    journey = make_journey([{"id": "w", "kind": "wait", "config": {"days": 1}}], reentry="always")
    triggers.poll_events(now=timezone.now(), by=BY)
    people = [make_customer() for _ in range(3)]
    first = {p.pk: make_event(p).pk for p in people}
    for person in people:
        make_event(person)  # a second view in the same pass: still one enrolment each
    assert triggers.poll_events(now=timezone.now(), by=BY) == 3
    keys = dict(Enrollment.objects.filter(journey=journey).values_list("customer_id", "entry_key"))
    assert keys == {pk: f"event:{event}" for pk, event in first.items()}
    assert journey.enrollments.filter(history__kind="entered").count() == 3
