"""Open and click tracking: only with consent, counted once, redirecting only where it was signed."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.urls import reverse

from kequn.customers.models import Customer
from kequn.customers.services import record_consent
from kequn.engage import services, tracking
from kequn.engage.mailmerge import render_email_body
from kequn.engage.models import Campaign, Message
from kequn.engage.selectors import build_report
from kequn.security.actors import system_actor
from kequn.segments.models import Segment
from kequn.segments.services import set_static_members
from tests.engage.peers import SMTPSink
from tests.factories import make_customer

pytest_plugins = ["tests.engage.peers"]  # the SMTP sink fixtures
BY = system_actor("tests")
PUBLIC = "https://crm.shop.example"
SALE = "https://shop.example/sale?from=mail&amp;size=m"
BODY = (
    '<p>Hello {{ name }}</p><p><a href="https://shop.example/sale?from=mail&size=m">Sale</a> '
    '<a href="mailto:help@shop.example">Help</a></p>'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
)


@pytest.fixture(autouse=True)
def send_settings(settings):
    settings.KEQUN_QUIET_HOURS = "off"
    settings.KEQUN_MARKETING_CAPS = "off"
    settings.KEQUN_CONTROL_GROUP_PERCENT = 0
    settings.KEQUN_PUBLIC_URL = PUBLIC


def make_person(name: str, tracking_consent: bool | None) -> Customer:
    person = make_customer(email=f"{name}@example.com")
    record_consent(person, "email", "marketing", True, "tests", by=BY)
    if tracking_consent is not None:
        record_consent(person, "email", "tracking", tracking_consent, "tests", by=BY)
    return person


def send_to(people: list[Customer]) -> Campaign:
    segment = Segment.objects.create(name="Tracked segment", kind=Segment.Kind.STATIC)
    set_static_members(segment, [p.pk for p in people], by=BY)
    template = services.create_template(
        name="Tracked template",
        channel="email",
        subject_zh="春季特惠",
        body_zh=BODY,
        subject_en="Spring sale",
        body_en=BODY,
        by=BY,
    )
    campaign = services.create_campaign(
        name="Tracked", segment=segment, template=template, holdout_percent=0, by=BY
    )
    services.send_campaign(campaign, by=BY, foreground=True)
    return campaign


def html_of(sink: SMTPSink, address: str) -> str:
    (mail,) = [m for m in sink.messages if address in m.rcpt_tos]
    return mail.message.get_body(("html",)).get_content()


def path_of(url: str) -> str:
    parts = urlsplit(url.replace("&amp;", "&"))
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC
    return parts.path


def tracked_urls(html: str) -> tuple[str, list[str]]:
    (pixel,) = re.findall(rf'<img src="({PUBLIC}/t/o/[^"]+\.gif)"', html)
    return pixel, re.findall(rf'href="({PUBLIC}/t/c/[^"]+)"', html)


@pytest.fixture
def sent(db, email_settings):
    people = {
        "tracked": make_person("tracked", True),
        "plain": make_person("plain", None),
        "withdrawn": make_person("withdrawn", True),
    }
    record_consent(people["withdrawn"], "email", "tracking", False, "preference centre", by=BY)
    campaign = send_to(list(people.values()))
    return campaign, people, email_settings


def test_only_the_consented_recipient_gets_a_pixel_and_redirected_links(sent):
    campaign, people, sink = sent
    html = html_of(sink, "tracked@example.com")
    _pixel, clicks = tracked_urls(html)
    assert len(clicks) == 1  # the sale link; mailto and the unsubscribe link stay as they are
    assert SALE not in html and 'href="mailto:help@shop.example"' in html
    assert re.search(rf'href="{PUBLIC}/unsubscribe/[^"]+/"', html)
    # The plain-text part keeps the original address.
    mail = next(m for m in sink.messages if "tracked@example.com" in m.rcpt_tos)
    assert (
        "https://shop.example/sale?from=mail&size=m"
        in mail.message.get_body(("plain",)).get_content()
    )

    for name in ("plain", "withdrawn"):
        other = html_of(sink, f"{name}@example.com")
        assert "/t/o/" not in other and "/t/c/" not in other and SALE in other
        # Byte for byte what the body is without tracking.
        message = Message.objects.get(campaign=campaign, customer=people[name])
        context = {"name": people[name].name, "unsubscribe_url": _unsubscribe_of(other)}
        expected, _text = render_email_body(BODY, context)
        assert expected.strip() == other.strip(), name
        assert message.status == Message.Status.SENT


def _unsubscribe_of(html: str) -> str:
    return re.search(rf'href="({PUBLIC}/unsubscribe/[^"]+/)"', html).group(1)


def test_opening_twice_counts_once_and_the_pixel_is_not_cached(sent, client):
    campaign, people, sink = sent
    pixel, _clicks = tracked_urls(html_of(sink, "tracked@example.com"))
    for _ in range(2):
        response = client.get(path_of(pixel))
        assert response.status_code == 200
        assert response["Content-Type"] == "image/gif"
        assert "no-store" in response["Cache-Control"]
        assert response.content == tracking.PIXEL_GIF
    message = Message.objects.get(campaign=campaign, customer=people["tracked"])
    first = message.opened_at
    assert first is not None
    client.get(path_of(pixel))
    message.refresh_from_db()
    assert message.opened_at == first
    report = build_report(campaign)
    assert report["opened"] == 1 and report["clicked"] == 0


def test_a_click_redirects_to_the_original_and_is_counted(sent, client):
    campaign, _people, sink = sent
    _pixel, (click,) = tracked_urls(html_of(sink, "tracked@example.com"))
    for _ in range(2):
        response = client.get(path_of(click))
        assert response.status_code == 302
        assert response["Location"] == "https://shop.example/sale?from=mail&size=m"
    report = build_report(campaign)
    assert report["clicked"] == 1
    assert report["opened"] == 1  # a click also shows the message was opened


def test_tampered_or_foreign_tokens_are_not_found(sent, client):
    campaign, _people, sink = sent
    pixel, (click,) = tracked_urls(html_of(sink, "tracked@example.com"))
    token = path_of(click).rsplit("/", 1)[1]
    # Any other address signed elsewhere: a forged redirect target.
    forged = signing.dumps({"m": 1, "u": "https://evil.example/"}, salt="another.salt")
    unsubscribe = _unsubscribe_of(html_of(sink, "plain@example.com")).rstrip("/").rsplit("/")[-1]
    bad = [token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), forged, unsubscribe, "x"]
    for value in bad:
        response = client.get(reverse("engage-track-click", args=[value]))
        assert response.status_code == 404, value
    open_token = path_of(pixel).rsplit("/", 1)[1].removesuffix(".gif")
    response = client.get(reverse("engage-track-open", args=[open_token + "x"]))
    assert response.status_code == 404
    response = client.get(reverse("engage-track-open", args=[token]))  # a click token
    assert response.status_code == 404
    report = build_report(campaign)
    assert report["opened"] == report["clicked"] == 0


def test_transactional_messages_are_never_tracked(db, email_settings):
    person = make_person("buyer", True)
    template = services.create_template(
        name="Receipt",
        channel="email",
        purpose="transactional",
        subject_zh="收据",
        body_zh='<p><a href="https://shop.example/order/1">订单</a></p>',
        subject_en="Receipt",
        body_en='<p><a href="https://shop.example/order/1">Order</a></p>',
        by=BY,
    )
    services.queue_message(
        customer_id=person.pk,
        template_id=template.pk,
        channel="email",
        purpose="transactional",
        source="order:1",
        dedupe_key="receipt:1",
        by=BY,
    )
    services.send_due_messages()
    html = html_of(email_settings, "buyer@example.com")
    assert 'href="https://shop.example/order/1"' in html
    assert "/t/o/" not in html and "/t/c/" not in html
