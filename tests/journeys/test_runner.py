"""The runner: enrolment by trigger, steps in order, waits, exits, re-entry and idempotency."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from kequn.customers.models import CustomerTag, Tag
from kequn.journeys.models import Enrollment, EnrollmentEvent, Journey
from kequn.journeys.registry import StepResult, register_step
from kequn.journeys.services import (
    JourneyError,
    advance_enrollment,
    fire_trigger,
    pause_journey,
    resume_journey,
    run_due,
)
from tests.factories import make_customer, make_order
from tests.journeys.conftest import BY

pytestmark = pytest.mark.django_db

TAG_THEN_WAIT = [
    {"id": "tag", "kind": "tag", "config": {"tag": "welcomed"}, "next": "wait"},
    {"id": "wait", "kind": "wait", "config": {"days": 1}, "next": "untag"},
    {"id": "untag", "kind": "tag", "config": {"tag": "welcomed", "action": "remove"}},
]


def test_a_fired_trigger_walks_steps_waits_and_completes(make_journey):
    journey = make_journey(TAG_THEN_WAIT, trigger_kind="first_purchase")
    customer = make_customer()
    assert fire_trigger(kind="first_purchase", customer_ids=[customer.pk], by=BY) == 1
    now = timezone.now()
    assert run_due(now=now, by=BY) == 1
    enrollment = Enrollment.objects.get(journey=journey, customer=customer)
    assert enrollment.state == Enrollment.State.WAITING
    assert enrollment.current_step == "wait"
    assert CustomerTag.objects.filter(customer=customer, tag__name="welcomed").exists()
    # Nothing is due before the day is over.
    assert run_due(now=now + timedelta(hours=23), by=BY) == 0
    assert run_due(now=now + timedelta(days=1, seconds=1), by=BY) == 1
    enrollment.refresh_from_db()
    assert enrollment.state == Enrollment.State.COMPLETED
    assert not CustomerTag.objects.filter(customer=customer, tag__name="welcomed").exists()
    kinds = list(enrollment.history.values_list("kind", "step_id"))
    assert kinds == [
        ("entered", ""),
        ("step", "tag"),
        ("wait", "wait"),
        ("step", "wait"),
        ("step", "untag"),
        ("completed", "untag"),
    ]


def test_reentry_once_after_days_and_always(make_journey):
    customer = make_customer()
    once = make_journey([{"id": "x", "kind": "exit"}], trigger_kind="first_purchase")
    later = make_journey(
        [{"id": "x", "kind": "exit"}],
        trigger_kind="first_purchase",
        reentry=Journey.Reentry.AFTER_DAYS,
        reentry_days=7,
    )
    always = make_journey(
        [{"id": "x", "kind": "exit"}], trigger_kind="first_purchase", reentry="always"
    )
    now = timezone.now()
    for offset in (0, 1, 8):
        moment = now + timedelta(days=offset)
        fire_trigger(kind="first_purchase", customer_ids=[customer.pk], by=BY, now=moment)
        run_due(now=moment, by=BY)
    assert Enrollment.objects.filter(journey=once).count() == 1
    assert Enrollment.objects.filter(journey=later).count() == 2  # day 0 and day 8
    assert Enrollment.objects.filter(journey=always).count() == 3


def test_same_entry_key_enrols_once_and_open_enrollment_blocks(make_journey):
    journey = make_journey(
        [{"id": "w", "kind": "wait", "config": {"days": 3}}],
        trigger_kind="first_purchase",
        reentry="always",
    )
    customer = make_customer()
    assert (
        fire_trigger(
            kind="first_purchase", customer_ids=[customer.pk], payload={"key": "k1"}, by=BY
        )
        == 1
    )
    assert (
        fire_trigger(
            kind="first_purchase", customer_ids=[customer.pk], payload={"key": "k1"}, by=BY
        )
        == 0
    )
    # Still in the journey: a second entry waits until the first has left.
    assert (
        fire_trigger(
            kind="first_purchase", customer_ids=[customer.pk], payload={"key": "k2"}, by=BY
        )
        == 0
    )
    assert Enrollment.objects.filter(journey=journey).count() == 1


def test_restricted_customers_and_paused_journeys_are_left_alone(make_journey):
    journey = make_journey(TAG_THEN_WAIT, trigger_kind="first_purchase")
    restricted = make_customer()
    restricted.processing_restricted = True
    restricted.save()
    fine = make_customer()
    assert fire_trigger(kind="first_purchase", customer_ids=[restricted.pk, fine.pk], by=BY) == 1
    pause_journey(journey, by=BY)
    assert run_due(by=BY) == 0
    assert fire_trigger(kind="first_purchase", customer_ids=[make_customer().pk], by=BY) == 0
    resume_journey(journey, by=BY)
    assert run_due(by=BY) == 1


def test_goal_reached_exits_before_the_next_step(make_journey):
    journey = make_journey(
        [
            {"id": "w", "kind": "wait", "config": {"hours": 24}, "next": "tag"},
            {"id": "tag", "kind": "tag", "config": {"tag": "no purchase"}},
        ],
        goal={"kind": "purchase"},
    )
    buyer, browser = make_customer(), make_customer()
    start = timezone.now() - timedelta(days=2)
    fire_trigger(kind="event", customer_ids=[buyer.pk, browser.pk], by=BY, now=start)
    run_due(now=start, by=BY)
    make_order(buyer, days_ago=1)  # bought the day after viewing
    run_due(by=BY)
    assert Enrollment.objects.get(journey=journey, customer=buyer).exit_reason == "goal reached"
    assert Enrollment.objects.get(journey=journey, customer=browser).state == "completed"
    assert list(Tag.objects.get(name="no purchase").customers.all()) == [browser]


def test_branch_and_split_choose_by_rule_and_stably_by_customer(make_journey):
    in_beijing = {
        "match": "all",
        "conditions": [{"field": "city", "operator": "eq", "value": "北京"}],
    }
    journey = make_journey(
        [
            {"id": "b", "kind": "branch", "config": {"rule": in_beijing, "yes": "ab", "no": "out"}},
            {
                "id": "ab",
                "kind": "split",
                "config": {
                    "variants": [
                        {"name": "A", "percent": 50, "next": "a"},
                        {"name": "B", "percent": 50, "next": "bb"},
                    ]
                },
            },
            {"id": "a", "kind": "tag", "config": {"tag": "A"}},
            {"id": "bb", "kind": "tag", "config": {"tag": "B"}},
            {"id": "out", "kind": "exit", "config": {"reason": "not in Beijing"}},
        ],
        trigger_kind="first_purchase",
    )
    beijing = [make_customer(city="北京") for _ in range(40)]
    shanghai = make_customer(city="上海")
    fire_trigger(kind="first_purchase", customer_ids=[c.pk for c in [*beijing, shanghai]], by=BY)
    run_due(by=BY)
    assert (
        Enrollment.objects.get(journey=journey, customer=shanghai).exit_reason == "not in Beijing"
    )
    a = set(Tag.objects.get(name="A").customers.values_list("pk", flat=True))
    b = set(Tag.objects.get(name="B").customers.values_list("pk", flat=True))
    assert a | b == {c.pk for c in beijing} and not a & b
    assert 8 <= len(a) <= 32  # a 50/50 split of 40, far from all-or-nothing
    branches = EnrollmentEvent.objects.filter(journey=journey, step_id="ab").values_list(
        "branch", flat=True
    )
    assert sorted(set(branches)) == ["A", "B"]


def test_bad_definitions_are_refused_with_the_place_named(make_journey):
    with pytest.raises(JourneyError, match=r"steps\[1\]: unknown kind 'teleport'"):
        make_journey(
            [{"id": "a", "kind": "wait", "config": {"days": 1}}, {"id": "b", "kind": "teleport"}]
        )
    with pytest.raises(JourneyError, match="goes to 'nowhere'"):
        make_journey([{"id": "a", "kind": "wait", "config": {"days": 1}, "next": "nowhere"}])
    with pytest.raises(JourneyError, match="round in a circle"):
        make_journey(
            [
                {"id": "a", "kind": "wait", "config": {"days": 1}, "next": "b"},
                {"id": "b", "kind": "wait", "config": {"days": 1}, "next": "a"},
            ]
        )
    with pytest.raises(JourneyError, match="trigger: unknown kind 'moon'"):
        make_journey([{"id": "a", "kind": "exit"}], trigger_kind="moon")
    with pytest.raises(JourneyError, match="a wait needs"):
        make_journey([{"id": "a", "kind": "wait", "config": {}}])


def test_a_failing_step_is_recorded_and_only_that_customer_leaves(make_journey):
    calls = []

    def explode(context):
        calls.append(context.customer_id)
        if len(calls) == 1:
            raise RuntimeError("provider said no")
        return StepResult("next")

    register_step("tests.explode", "Explode", explode)
    journey = make_journey([{"id": "x", "kind": "tests.explode"}], trigger_kind="first_purchase")
    first, second = make_customer(), make_customer()
    fire_trigger(kind="first_purchase", customer_ids=[first.pk, second.pk], by=BY)
    run_due(by=BY)
    states = dict(Enrollment.objects.filter(journey=journey).values_list("customer_id", "state"))
    assert sorted(states.values()) == ["completed", "exited"]
    error = EnrollmentEvent.objects.get(journey=journey, kind="error")
    assert error.detail == {"error": "provider said no"}


def test_a_done_step_is_not_run_again(make_journey):
    journey = make_journey(TAG_THEN_WAIT, trigger_kind="first_purchase")
    customer = make_customer()
    fire_trigger(kind="first_purchase", customer_ids=[customer.pk], by=BY)
    enrollment = Enrollment.objects.get(journey=journey)
    now = timezone.now()
    assert advance_enrollment(enrollment.pk, now=now, by=BY) == "waiting"
    # A second worker (or a retry after a crash) finds it no longer due.
    assert advance_enrollment(enrollment.pk, now=now, by=BY) == ""
    assert EnrollmentEvent.objects.filter(enrollment=enrollment, step_id="tag").count() == 1
