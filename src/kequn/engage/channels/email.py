"""Email over SMTP: pooled connections in parallel, one-click unsubscribe, DKIM."""

from __future__ import annotations

from django.conf import settings

from kequn.engage.channels.base import Channel, ChannelNotConfiguredError


def build_email_channel() -> Channel:
    """Return the email channel from KEQUN_EMAIL_URL and KEQUN_EMAIL_FROM."""
    if not settings.KEQUN_EMAIL_URL:
        raise ChannelNotConfiguredError(
            "email is not configured: set KEQUN_EMAIL_URL=smtp://user:password@host:587"
        )
    raise ChannelNotConfiguredError("email sending is being built")
