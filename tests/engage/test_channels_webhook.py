"""Signed webhooks with retries and backoff, against a local receiver that checks signatures."""

from __future__ import annotations

import time

import pytest

from kequn.engage.channels import ChannelNotConfiguredError, OutgoingMessage, get_channel
from kequn.engage.channels.webhook import sign_webhook
from tests.engage.peers import WebhookReceiver, closed_port


@pytest.fixture
def receiver(settings):
    with WebhookReceiver() as server:
        settings.KEQUN_WEBHOOK_SECRET = server.secret
        settings.KEQUN_WEBHOOK_RATE = 0
        yield server


@pytest.fixture
def channel(receiver):
    sender = get_channel("webhook")
    sender.backoff_seconds = 0.01
    yield sender
    sender.close()


def hook(key: str, url: str) -> OutgoingMessage:
    return OutgoingMessage(
        key=key, to=url, payload={"event": "campaign.sent", "customer": 42, "名字": "张三"}
    )


def test_signed_post_verifies_and_carries_the_delivery_key(receiver, channel):
    [result] = channel.send_batch([hook("h-1", f"{receiver.url}/hooks")])
    assert result.status == "sent"
    [request] = receiver.requests
    assert receiver.is_signed(request)
    assert request.headers["x-kequn-delivery"] == "h-1"
    assert abs(int(request.headers["x-kequn-timestamp"]) - time.time()) < 60
    assert receiver.verified == [{"event": "campaign.sent", "customer": 42, "名字": "张三"}]


def test_signature_is_hmac_sha256_of_timestamp_dot_body():
    # Receivers compute exactly this (documented in README).
    assert sign_webhook("k", "1700000000", b'{"a":1}') == (
        "sha256=" + __import__("hmac").new(b"k", b'1700000000.{"a":1}', "sha256").hexdigest()
    )


def test_server_errors_are_retried_with_backoff_then_succeed(receiver, channel):
    receiver.statuses = [500, 503]
    [result] = channel.send_batch([hook("r-1", receiver.url)])
    assert result.status == "sent"
    assert len(receiver.requests) == 3
    assert {r.headers["x-kequn-delivery"] for r in receiver.requests} == {"r-1"}


def test_persistent_errors_leave_it_to_the_caller_and_4xx_fails(receiver, channel):
    receiver.statuses = [500, 500, 500, 404]
    retry, failed = channel.send_batch([hook("p-1", receiver.url), hook("p-2", receiver.url)])
    assert retry.status == "retry" and "HTTP 500" in retry.error and "3 attempts" in retry.error
    assert failed.status == "failed" and "HTTP 404" in failed.error
    assert len(receiver.requests) == 4


def test_wrong_secret_is_rejected_by_the_receiver(receiver, settings):
    settings.KEQUN_WEBHOOK_SECRET = "another"
    [result] = get_channel("webhook").send_batch([hook("w-1", receiver.url)])
    assert result.status == "failed" and "HTTP 401" in result.error
    assert receiver.verified == []


def test_unreachable_and_invalid_urls(channel):
    down, invalid = channel.send_batch(
        [hook("u-1", f"http://127.0.0.1:{closed_port()}/x"), hook("u-2", "ftp://example.com")]
    )
    assert down.status == "retry" and "ConnectionError" in down.error
    assert invalid.status == "failed" and "https://" in invalid.error


def test_unconfigured_names_the_setting(settings):
    settings.KEQUN_WEBHOOK_SECRET = ""
    with pytest.raises(ChannelNotConfiguredError, match="KEQUN_WEBHOOK_SECRET"):
        get_channel("webhook")
