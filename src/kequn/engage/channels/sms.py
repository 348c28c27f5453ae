"""SMS through a provider: a generic JSON API or Alibaba Cloud SMS (dysmsapi SendSms)."""

from __future__ import annotations

from django.conf import settings

from kequn.engage.channels.base import Channel, ChannelNotConfiguredError


def build_sms_channel() -> Channel:
    """Return the SMS channel from KEQUN_SMS_URL (its scheme picks the adapter)."""
    if not settings.KEQUN_SMS_URL:
        raise ChannelNotConfiguredError("SMS is not configured: set KEQUN_SMS_URL")
    raise ChannelNotConfiguredError("SMS sending is being built")
