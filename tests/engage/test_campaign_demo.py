"""The demo's campaigns: past sends to the sample segments, measured on the orders that followed."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from kequn.customers.services import record_consent
from kequn.demo.engage import create_demo_campaigns
from kequn.engage.models import Campaign, Message
from kequn.engage.selectors import build_report
from kequn.security.actors import system_actor
from kequn.segments.models import Segment
from kequn.segments.services import set_static_members
from tests.factories import make_customer, make_order

BY = system_actor("tests")


def test_demo_campaigns_have_reports_filled_and_nothing_left_to_send(db, settings):
    settings.KEQUN_EMAIL_URL = ""  # the demo has no mail server: nothing may wait for one
    settings.KEQUN_CONTROL_GROUP_PERCENT = 0
    people = [make_customer(email=f"demo{i}@example.com") for i in range(30)]
    for person in people:
        record_consent(person, "email", "marketing", True, "tests", by=BY)
        order = make_order(person, amount="300.00")
        order.ordered_at = timezone.now() - timedelta(days=19)
        order.save()
    segment = Segment.objects.create(name="重要价值客户", kind=Segment.Kind.STATIC)
    set_static_members(segment, [p.pk for p in people], by=BY)

    assert create_demo_campaigns(by=BY) == "Created 1 demo campaigns with their results."
    assert create_demo_campaigns(by=BY) == "Created 0 demo campaigns with their results."
    campaign = Campaign.objects.get()
    report = build_report(campaign)
    assert report["sent"] + report["holdout"] == 30 and report["holdout"] > 0
    assert report["conversions"]["sent"] == report["sent"]  # everyone bought two days later
    assert report["conversions"]["holdout"] == report["holdout"]
    assert not Message.objects.exclude(status="sent").exists()
