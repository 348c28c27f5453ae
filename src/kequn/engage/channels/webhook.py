"""Signed webhooks: JSON POSTs with an HMAC-SHA256 signature header, retried with backoff."""

from __future__ import annotations

from django.conf import settings

from kequn.engage.channels.base import Channel, ChannelNotConfiguredError


def build_webhook_channel() -> Channel:
    """Return the webhook channel keyed by KEQUN_WEBHOOK_SECRET."""
    if not settings.KEQUN_WEBHOOK_SECRET:
        raise ChannelNotConfiguredError("webhooks are not configured: set KEQUN_WEBHOOK_SECRET")
    raise ChannelNotConfiguredError("webhook sending is being built")
