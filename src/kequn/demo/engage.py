"""Demo campaigns with results: a few past sends to the sample segments, measured on the demo orders."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from kequn.engage import services
from kequn.engage.models import Campaign
from kequn.engage.selectors import store_dashboard_reports
from kequn.security.actors import Actor
from kequn.segments.models import Segment

# (campaign, segment, channel, days ago, subject, body): sent in the past, so the orders the
# demo generated in the following week are their conversions, for the sent and the holdout.
DEMO_CAMPAIGNS = [
    (
        "重要价值客户 · 新品预览",
        "重要价值客户",
        "email",
        21,
        "{{ salutation }}，新品抢先看",
        '<p>{{ salutation }}，您好！</p><p>作为我们的重要客户，邀您先睹新品：{{ product_1 | default:"新品" }}。</p>'
        '<p><a href="{{ unsubscribe_url }}">退订</a></p>',
    ),
    (
        "流失风险召回 · 专属优惠",
        "深圳流失风险客户",
        "email",
        14,
        "{{ salutation }}，好久不见",
        "<p>{{ salutation }}，好久不见！这是为您准备的专属优惠。</p>"
        '<p><a href="{{ unsubscribe_url }}">退订</a></p>',
    ),
    (
        "短信 · 周末促销",
        "短信营销可触达",
        "sms",
        10,
        "",
        '【客群】{{ first_name | default:"您好" }}，本周末全场满减，回 TD 退订。',
    ),
]


def create_demo_campaigns(*, by: Actor) -> str:
    """Create the demo campaigns (once) and record their past sends; return a line to print."""
    created = 0
    for name, segment_name, channel, days_ago, subject, body in DEMO_CAMPAIGNS:
        segment = Segment.objects.filter(name=segment_name).first()
        if segment is None or Campaign.objects.filter(name=name).exists():
            continue
        with transaction.atomic():  # never left queued for a real channel to send
            created += _create_campaign(name, segment, channel, days_ago, subject, body, by=by)
    if created:
        # The analytics refresh ran before the campaigns existed: store the dashboard's
        # reports of them now, as the nightly refresh will, not on the first visitor's view.
        store_dashboard_reports()
    return f"Created {created} demo campaigns with their results."


def _create_campaign(
    name: str, segment: Segment, channel: str, days_ago: int, subject: str, body: str, *, by: Actor
) -> int:
    """Create one campaign and record its past send; return 1."""
    template = services.create_template(
        name=name, channel=channel, subject_zh=subject, body_zh=body, by=by
    )
    campaign = services.create_campaign(
        name=name, segment=segment, template=template, channel=channel, by=by
    )
    moment = timezone.now() - timedelta(days=days_ago)
    run = services.start_run(campaign, by=by, now=moment, check_channel=False)
    services.record_offline_sends(run, sent_at=moment + timedelta(minutes=5), by=by)
    return 1
