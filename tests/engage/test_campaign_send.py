"""Sending a campaign to a real SMTP sink: consent, skips by reason, holdout, control group, errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone, translation

from kequn.customers.models import Customer
from kequn.customers.services import record_consent
from kequn.engage import services
from kequn.engage.models import Campaign, Message, Recipient
from kequn.engage.policy import is_in_control_group, is_in_holdout
from kequn.engage.selectors import build_report
from kequn.security.actors import system_actor
from kequn.segments.models import Segment
from kequn.segments.services import set_static_members
from tests.engage.peers import SMTPSink, closed_port
from tests.factories import make_customer

pytest_plugins = ["tests.engage.peers"]  # the SMTP sink fixtures
BY = system_actor("tests")


@pytest.fixture(autouse=True)
def send_settings(settings):
    settings.KEQUN_QUIET_HOURS = "off"
    settings.KEQUN_MARKETING_CAPS = "off"
    settings.KEQUN_CONTROL_GROUP_PERCENT = 0
    settings.KEQUN_PUBLIC_URL = "https://crm.shop.example"


def make_audience(n: int, consent: bool = True, prefix: str = "person") -> list[Customer]:
    people = [make_customer(email=f"{prefix}{i}@example.com") for i in range(n)]
    if consent:
        for person in people:
            record_consent(person, "email", "marketing", True, "tests", by=BY)
    return people


def make_campaign(people: list[Customer], holdout: int = 0, name: str = "Spring sale") -> Campaign:
    segment = Segment.objects.create(name=f"{name} segment", kind=Segment.Kind.STATIC)
    set_static_members(segment, [p.pk for p in people], by=BY)
    template = services.create_template(
        name=f"{name} template",
        channel="email",
        subject_zh="春季特惠",
        body_zh="<p>您好 {{ name }}</p>",
        subject_en="Spring sale",
        body_en="<p>Hello {{ name }}</p>",
        by=BY,
    )
    return services.create_campaign(
        name=name, segment=segment, template=template, holdout_percent=holdout, by=BY
    )


def test_every_eligible_customer_gets_one_message_and_every_skip_has_a_reason(db, email_settings):
    people = make_audience(8)
    no_consent = make_customer(email="noconsent@example.com")
    withdrawn = make_customer(email="withdrawn@example.com")
    record_consent(withdrawn, "email", "marketing", True, "tests", by=BY)
    record_consent(withdrawn, "email", "marketing", False, "shop form", by=BY)
    no_email = make_customer(phone="13800138000")
    record_consent(no_email, "email", "marketing", True, "tests", by=BY)
    bounced = make_audience(1, prefix="bounced")[0]
    services.suppress_address("email", "bounced0@example.com", "550 no such user")
    campaign = make_campaign([*people, no_consent, withdrawn, no_email, bounced])
    restricted = people[1]
    Customer.objects.filter(pk=restricted.pk).update(processing_restricted=True)

    result = services.send_campaign(campaign, by=BY, foreground=True)

    report = build_report(campaign)
    assert result["sent"] == report["sent"] == 7  # 8 consenting, minus the restricted one
    assert len(email_settings.messages) == 7
    assert sorted(email_settings.recipients()) == sorted(
        f"person{i}@example.com" for i in range(8) if i != 1
    )
    assert report["skipped"] == {
        "no_address": 1,
        "no_consent": 1,
        "restricted": 1,
        "suppressed": 1,
        "withdrawn": 1,
    }
    assert report["audience"] == 12
    assert sum(report["skipped"].values()) + report["sent"] + report["holdout"] == 12
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT
    mail = email_settings.messages[0].message
    assert "春季特惠" in str(mail["Subject"])
    assert mail["List-Unsubscribe"] and "crm.shop.example/unsubscribe/" in mail["List-Unsubscribe"]


def test_holdout_and_control_group_are_deterministic_and_not_sent(db, email_settings, settings):
    settings.KEQUN_CONTROL_GROUP_PERCENT = 20
    people = make_audience(40)
    campaign = make_campaign(people, holdout=25)

    services.send_campaign(campaign, by=BY, foreground=True)

    groups = dict(
        Recipient.objects.filter(run__campaign=campaign).values_list("customer_id", "group")
    )
    for person in people:
        if is_in_control_group(person.pk, 20):
            expected = Recipient.Group.CONTROL
        elif is_in_holdout(campaign.pk, person.pk, 25):
            expected = Recipient.Group.HOLDOUT
        else:
            expected = Recipient.Group.TARGET
        assert groups[person.pk] == expected
    sent_to = set(email_settings.recipients())
    targets = {p for p, g in groups.items() if g == Recipient.Group.TARGET}
    assert len(sent_to) == len(targets) == len(email_settings.messages)
    assert 0 < list(groups.values()).count(Recipient.Group.HOLDOUT) < 20
    report = build_report(campaign)
    assert report["skipped"]["control_group"] == list(groups.values()).count("control")


def test_sending_again_in_the_same_run_sends_nothing_twice(db, email_settings):
    campaign = make_campaign(make_audience(3))
    services.start_run(campaign, by=BY)
    first = services.send_due_messages()
    second = services.send_due_messages()
    assert first.counts["sent"] == 3 and not second.counts
    assert len(email_settings.messages) == 3
    for pk, provider_id, sent_at, claimed_until in Message.objects.values_list(
        "pk", "provider_id", "sent_at", "claimed_until"
    ):  # written for the whole group in one statement: each row its own Message-ID
        assert provider_id == f"<{pk}@shop.example>" and sent_at and claimed_until is None


def test_a_deleted_segment_is_a_one_line_error_and_nothing_is_sent(db, email_settings):
    campaign = make_campaign(make_audience(2))
    campaign.segment.delete()
    campaign.refresh_from_db()
    with pytest.raises(ValidationError) as caught, translation.override("en"):
        services.send_campaign(campaign, by=BY, foreground=True)
    message = " ".join(caught.value.messages)
    assert "segment 'Spring sale segment' was deleted" in message and "\n" not in message
    assert not Message.objects.exists() and not email_settings.messages


def test_an_unknown_merge_field_is_refused_before_anything_is_sent(db, email_settings):
    with pytest.raises(ValidationError) as caught:
        services.create_template(
            name="broken",
            channel="email",
            subject_zh="hi",
            body_zh="<p>{{ nosuchfield }}</p>",
            by=BY,
        )
    assert "nosuchfield" in " ".join(caught.value.messages)
    assert not email_settings.messages


def test_a_channel_without_settings_is_a_one_line_error(db, settings):
    settings.KEQUN_EMAIL_URL = ""
    campaign = make_campaign(make_audience(1))
    with pytest.raises(ValidationError) as caught:
        services.send_campaign(campaign, by=BY, foreground=True)
    assert "KEQUN_EMAIL_URL" in " ".join(caught.value.messages)
    assert not Message.objects.exists()


def test_smtp_down_retries_with_the_error_and_resumes(db, email_settings, settings):
    campaign = make_campaign(make_audience(3))
    settings.KEQUN_EMAIL_URL = f"smtp://127.0.0.1:{closed_port()}"
    result = services.send_campaign(campaign, by=BY, foreground=True)
    assert result.get("sent", 0) == 0 and result["retrying"] == 3 and result["errors"]
    retrying = Message.objects.filter(status=Message.Status.RETRYING)
    assert retrying.count() == 3 and all(m.error for m in retrying)
    assert build_report(campaign)["retrying"] == 3
    # The server is back: the messages go out once their retry time has come.
    settings.KEQUN_EMAIL_URL = email_settings.url()
    Message.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert services.send_due_messages().counts["sent"] == 3
    assert len(email_settings.messages) == 3


def test_an_smtp_login_failure_is_a_recorded_retried_failure(db, settings):
    with SMTPSink(users={"shop": "right"}) as sink:
        settings.KEQUN_EMAIL_URL = sink.url("shop", "wrong")
        settings.KEQUN_EMAIL_FROM = "shop@example.com"
        campaign = make_campaign(make_audience(2))
        result = services.send_campaign(campaign, by=BY, foreground=True)
        assert result["retrying"] == 2 and not sink.messages
    errors = set(Message.objects.values_list("error", flat=True))
    assert len(errors) == 1 and "\n" not in errors.pop()
    campaign.refresh_from_db()
    assert campaign.last_error


def test_a_webhook_answering_500_is_retried_and_delivered_once_it_recovers(
    db, webhook_receiver, settings
):
    person = make_audience(1)[0]
    hook = services.create_template(
        name="CRM hook",
        channel="webhook",
        body_zh="{{ name }} 下单提醒",
        template_code=webhook_receiver.url + "/hook",
        purpose="transactional",
        by=BY,
    )
    webhook_receiver.statuses = [500] * 10
    outcome = services.queue_message(
        customer_id=person.pk,
        template_id=hook.pk,
        channel="webhook",
        purpose="transactional",
        source="orders",
        dedupe_key="hook:1",
        by=BY,
    )
    first = services.send_due_messages()
    outcome.message.refresh_from_db()
    assert first.counts["retrying"] == 1 and "HTTP 500" in outcome.message.error
    webhook_receiver.statuses = []
    Message.objects.update(next_attempt_at=timezone.now())
    assert services.send_due_messages().counts["sent"] == 1
    assert [body["customer_id"] for body in webhook_receiver.verified] == [person.pk]
