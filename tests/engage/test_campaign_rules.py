"""Caps, quiet hours, queue_message, one-click unsubscribe, A/B winner and the measured uplift."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from scipy.stats import ttest_ind

from kequn.analytics.uplift import mean_uplift, proportion_uplift, wilson_interval
from kequn.customers.models import Consent
from kequn.customers.services import record_consent
from kequn.engage import services
from kequn.engage.models import Message, Recipient, Run
from kequn.engage.policy import end_of_quiet_hours, parse_caps
from kequn.engage.selectors import build_report
from kequn.security.actors import system_actor
from kequn.segments.models import Segment
from kequn.segments.services import set_static_members
from tests.factories import make_customer, make_order

pytest_plugins = ["tests.engage.peers"]  # the SMTP sink fixtures
BY = system_actor("tests")
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def open_settings(settings):
    settings.KEQUN_QUIET_HOURS = "off"
    settings.KEQUN_MARKETING_CAPS = "off"
    settings.KEQUN_CONTROL_GROUP_PERCENT = 0


def consenting(n: int, prefix: str) -> list:
    people = [make_customer(email=f"{prefix}{i}@example.com") for i in range(n)]
    for person in people:
        record_consent(person, "email", "marketing", True, "tests", by=BY)
    return people


def template(name: str, body: str = "<p>{{ name }}</p>"):
    return services.create_template(
        name=name, channel="email", subject_zh=name, body_zh=body, by=BY
    )


def campaign_to(people, name: str, holdout: int = 0, **kwargs):
    segment = Segment.objects.create(name=f"{name} audience", kind=Segment.Kind.STATIC)
    set_static_members(segment, [p.pk for p in people], by=BY)
    return services.create_campaign(
        name=name,
        segment=segment,
        template=template(name),
        holdout_percent=holdout,
        **kwargs,
        by=BY,
    )


def test_quiet_hours_window_in_the_business_time_zone():
    at = datetime(2026, 5, 4, 22, 30, tzinfo=SHANGHAI)
    assert end_of_quiet_hours(at, "21:00-09:00") == datetime(2026, 5, 5, 9, 0, tzinfo=SHANGHAI)
    early = datetime(2026, 5, 4, 3, 0, tzinfo=SHANGHAI)
    assert end_of_quiet_hours(early, "21:00-09:00") == datetime(2026, 5, 4, 9, 0, tzinfo=SHANGHAI)
    assert end_of_quiet_hours(datetime(2026, 5, 4, 12, 0, tzinfo=SHANGHAI), "21:00-09:00") is None
    assert end_of_quiet_hours(at, "off") is None


def test_bad_cap_setting_names_the_setting_and_the_fix():
    with pytest.raises(Exception, match=r"KEQUN_MARKETING_CAPS.*channel_day=2"):
        parse_caps("daily=two")
    assert parse_caps("channel_day=1,week=4").week == 4


def test_marketing_in_quiet_hours_is_held_then_sent_when_the_window_opens(
    db, email_settings, settings
):
    settings.KEQUN_QUIET_HOURS = "00:00-23:59"
    campaign = campaign_to(consenting(2, "quiet"), "Night")
    result = services.send_campaign(campaign, by=BY, foreground=True)
    assert result["held"] == 2 and not email_settings.messages
    held = Message.objects.filter(status=Message.Status.HELD)
    assert held.count() == 2 and all(m.next_attempt_at > timezone.now() for m in held)
    settings.KEQUN_QUIET_HOURS = "off"
    held.update(next_attempt_at=timezone.now())  # the window opened
    assert services.send_due_messages().counts["sent"] == 2
    assert len(email_settings.messages) == 2


def test_a_daily_cap_skips_the_second_marketing_message_with_its_reason(
    db, email_settings, settings
):
    settings.KEQUN_MARKETING_CAPS = "channel_day=1"
    people = consenting(2, "capped")
    services.send_campaign(campaign_to(people, "First"), by=BY, foreground=True)
    second = campaign_to(people, "Second")
    services.send_campaign(second, by=BY, foreground=True)
    assert len(email_settings.messages) == 2
    assert build_report(second)["skipped"] == {"frequency_cap": 2}


def test_queue_message_is_idempotent_and_transactional_bypasses_the_control_group(
    db, email_settings, settings
):
    settings.KEQUN_CONTROL_GROUP_PERCENT = 100  # everyone in the control group
    person = consenting(1, "journey")[0]
    welcome = template("Welcome")
    marketing = services.queue_message(
        customer_id=person.pk,
        template_id=welcome.pk,
        channel="email",
        source="journey:1",
        dedupe_key="journey:1:step:1:customer:1",
        by=BY,
    )
    assert marketing.skip_reason == "control_group" and not marketing.is_queued
    receipt = template("Receipt")
    first = services.queue_message(
        customer_id=person.pk,
        template_id=receipt.pk,
        channel="email",
        purpose="transactional",
        source="orders",
        dedupe_key="receipt:1",
        by=BY,
    )
    again = services.queue_message(
        customer_id=person.pk,
        template_id=receipt.pk,
        channel="email",
        purpose="transactional",
        source="orders",
        dedupe_key="receipt:1",
        by=BY,
    )
    assert first.is_queued and first.created and not again.created
    assert again.message.pk == first.message.pk
    services.send_due_messages()
    assert len(email_settings.messages) == 1
    # A transactional message carries no unsubscribe link.
    assert email_settings.messages[0].message["List-Unsubscribe"] is None


def test_one_click_unsubscribe_withdraws_consent_and_the_next_send_skips(
    db, email_settings, client
):
    person = consenting(1, "leaver")[0]
    services.send_campaign(campaign_to([person], "News"), by=BY, foreground=True)
    link = email_settings.messages[0].message["List-Unsubscribe"].strip().strip("<>")
    path = urlsplit(link).path
    page = client.get(path)
    assert page.status_code == 200 and b"unsubscribe-confirm" in page.content
    assert Consent.objects.filter(customer=person).count() == 1  # a GET changes nothing
    done = client.post(path, {"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    latest = Consent.objects.filter(customer=person).order_by("-id").first()
    assert latest.granted is False and latest.source.startswith("unsubscribe")
    later = campaign_to([person], "More news")
    services.send_campaign(later, by=BY, foreground=True)
    assert build_report(later)["skipped"] == {"unsubscribed": 1}
    assert client.post(path[:-5] + "XXXX/").status_code == 400


def test_ab_test_sends_variants_then_the_winner_to_the_rest(db, email_settings):
    people = consenting(20, "ab")
    variants = [
        template("Variant A", "<p>A {{ name }}</p>"),
        template("Variant B", "<p>B {{ name }}</p>"),
    ]
    campaign = campaign_to(people, "AB", variants=variants, ab_test_percent=40, ab_window_hours=24)
    services.send_campaign(campaign, by=BY, foreground=True)
    run = Run.objects.get(campaign=campaign)
    assert len(email_settings.messages) == 8  # 40 % of 20, split A/B
    waiting = Recipient.objects.filter(run=run, group=Recipient.Group.WAITING)
    assert waiting.count() == 12
    # B's recipients buy after their message; A's do not.
    for message in Message.objects.filter(campaign=campaign, variant="B"):
        order = make_order(message.customer, amount="100.00", days_ago=0)
        order.ordered_at = message.sent_at + timedelta(hours=1)
        order.save()
    assert services.choose_winner(run, by=BY) == "B"
    services.send_due_messages()
    assert len(email_settings.messages) == 20
    assert Message.objects.filter(campaign=campaign, variant="B").count() == 16
    report = build_report(campaign)
    assert report["variants"]["B"]["conversions"] == 4 and report["winners"] == {1: "B"}


def test_report_measures_conversions_against_the_holdout_with_the_last_touch(db, email_settings):
    people = consenting(40, "measure")
    campaign = campaign_to(people, "Measured", holdout=50)
    services.send_campaign(campaign, by=BY, foreground=True)
    sent = {
        m.customer_id: m.sent_at for m in Message.objects.filter(campaign=campaign, status="sent")
    }
    holdout = list(
        Recipient.objects.filter(run__campaign=campaign, group="holdout").values_list(
            "customer_id", flat=True
        )
    )
    assert sent and holdout
    buyers = list(sent)[: len(sent) // 2]
    for customer_id in buyers:
        order = make_order(next(p for p in people if p.pk == customer_id), amount="200.00")
        order.ordered_at = sent[customer_id] + timedelta(days=1)
        order.save()
    late = list(sent)[-1]  # bought after the window: not a conversion
    order = make_order(next(p for p in people if p.pk == late), amount="50.00")
    order.ordered_at = sent[late] + timedelta(days=30)
    order.save()
    # A later message from another campaign takes the last touch of one buyer's purchase.
    stolen = buyers[0]
    other = campaign_to([p for p in people if p.pk == stolen], "Other")
    services.start_run(other, by=BY)
    services.send_due_messages()
    Message.objects.filter(campaign=other).update(sent_at=sent[stolen] + timedelta(hours=12))

    report = build_report(campaign)
    assert report["conversions"] == {"sent": len(buyers) - 1, "holdout": 0}
    assert report["measured"] == {"sent": len(sent), "holdout": len(holdout)}
    assert report["revenue"]["sent"] == pytest.approx(200.0 * (len(buyers) - 1))
    uplift = report["conversion_uplift"]
    assert uplift["difference"] == pytest.approx((len(buyers) - 1) / len(sent))
    assert uplift["low"] < uplift["difference"] < uplift["high"]


def test_uplift_intervals_match_known_values():
    # Newcombe (1998), table II example: 56/70 vs 48/80 -> 0.2 (0.0524, 0.3339).
    result = proportion_uplift(56, 70, 48, 80)
    assert result.difference == pytest.approx(0.2)
    assert result.low == pytest.approx(0.0524, abs=5e-4)
    assert result.high == pytest.approx(0.3339, abs=5e-4)
    assert result.is_significant
    low, high = wilson_interval(0, 10)
    assert low == pytest.approx(0, abs=1e-12) and high == pytest.approx(0.2775, abs=5e-4)
    # Welch from sums and sums of squares equals SciPy's Welch test on the values themselves.
    a, b = [3.0, 4.0, 5.0, 6.0], [1.0, 2.0, 2.0, 3.0, 2.0]
    welch = mean_uplift(
        len(a), sum(a), sum(x * x for x in a), len(b), sum(b), sum(x * x for x in b)
    )
    expected = ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert welch.difference == pytest.approx(2.5)
    assert welch.low == pytest.approx(expected.low) and welch.high == pytest.approx(expected.high)
    assert proportion_uplift(1, 10, 0, 0).difference is None


def test_the_worker_pass_runs_due_recurring_campaigns_and_fails_broken_ones_with_a_reason(
    db, email_settings
):
    past = timezone.now() - timedelta(minutes=5)
    daily = campaign_to(consenting(2, "daily"), "Daily", schedule="daily", next_run_at=past)
    broken = campaign_to(consenting(1, "broken"), "Broken", schedule="at", next_run_at=past)
    broken.segment.delete()

    result = services.pump_outbox(by=BY)

    assert result["started"] == [daily.pk] and result["sent"] == 2
    daily.refresh_from_db()
    assert daily.status == "scheduled" and daily.next_run_at > timezone.now()
    assert daily.next_run_at - past == timedelta(days=1)
    broken.refresh_from_db()
    assert broken.status == "failed" and "Broken audience" in broken.last_error
    assert services.pump_outbox(by=BY)["started"] == []  # not due again until tomorrow
    assert len(email_settings.messages) == 2


def test_delivery_open_and_click_reports_count_once_in_the_report(db, email_settings):
    campaign = campaign_to(consenting(2, "opens"), "Opens")
    services.send_campaign(campaign, by=BY, foreground=True)
    first, second = Message.objects.filter(campaign=campaign).order_by("id")
    assert services.record_message_event(message_id=first.pk, kind="delivered")
    assert services.record_message_event(message_id=first.pk, kind="opened")
    assert not services.record_message_event(message_id=first.pk, kind="opened")  # once
    Message.objects.filter(pk=second.pk).update(provider_id="prov-2")
    assert services.record_message_event(provider_id="prov-2", kind="clicked")
    assert not services.record_message_event(provider_id="nobody", kind="clicked")
    with pytest.raises(ValueError, match="unknown message event"):
        services.record_message_event(message_id=first.pk, kind="liked")
    report = build_report(campaign)
    assert (report["delivered"], report["opened"], report["clicked"]) == (1, 1, 1)
