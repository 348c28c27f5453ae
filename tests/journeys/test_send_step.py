"""The send step queues through engage's outbox: once per enrollment and step, skips recorded."""

from __future__ import annotations

import pytest
from django.utils import timezone

from kequn.customers.services import record_consent
from kequn.engage.models import Message
from kequn.engage.services import create_template
from kequn.journeys.models import Enrollment, EnrollmentEvent
from kequn.journeys.registry import StepContext
from kequn.journeys.services import fire_trigger, run_due
from kequn.journeys.steps import run_send
from tests.factories import make_customer
from tests.journeys.conftest import BY

pytestmark = pytest.mark.django_db


@pytest.fixture
def template(db):
    return create_template(
        name="welcome", channel="email", subject_zh="欢迎", body_zh="<p>欢迎光临</p>", by=BY
    )


def test_send_queues_one_message_and_a_rerun_queues_none(make_journey, template, settings):
    settings.KEQUN_CONTROL_GROUP_PERCENT = 0
    journey = make_journey(
        [{"id": "hello", "kind": "send", "config": {"template": template.pk, "channel": "email"}}],
        trigger_kind="first_purchase",
    )
    willing = make_customer(email="li@example.com")
    record_consent(willing, "email", "marketing", True, "tests", by=BY)
    unwilling = make_customer(email="wang@example.com")
    fire_trigger(kind="first_purchase", customer_ids=[willing.pk, unwilling.pk], by=BY)
    run_due(by=BY)
    queued = Message.objects.get(customer=willing)
    assert queued.status == Message.Status.QUEUED
    enrollment = Enrollment.objects.get(journey=journey, customer=willing)
    assert queued.dedupe_key == f"journey:{enrollment.pk}:hello"
    assert queued.source == f"journey:{journey.pk}:hello"
    skipped = Message.objects.get(customer=unwilling)
    assert skipped.status == Message.Status.SKIPPED
    step = EnrollmentEvent.objects.get(enrollment__customer=unwilling, step_id="hello", kind="step")
    assert step.branch == "skipped" and step.detail == {"skipped": skipped.skip_reason}
    # A worker killed after queuing and before recording the step runs the step again:
    # the dedupe key returns the same outbox row.
    context = StepContext(
        enrollment=enrollment,
        journey=journey,
        step=journey.steps[0],
        now=timezone.now(),
        by=BY,
        dedupe_key=f"journey:{enrollment.pk}:hello",
    )
    assert run_send(context).detail["message"] == queued.pk
    assert Message.objects.filter(customer=willing).count() == 1


def test_a_send_step_must_name_a_template_and_channel(make_journey):
    from kequn.journeys.services import JourneyError

    with pytest.raises(JourneyError, match="template"):
        make_journey([{"id": "s", "kind": "send", "config": {"channel": "fax"}}])
