"""WeChat Official Account template and subscribe messages to an openid."""

from __future__ import annotations

from django.conf import settings

from kequn.engage.channels.base import Channel, ChannelNotConfiguredError


def build_wechat_channel() -> Channel:
    """Return the WeChat channel from KEQUN_WECHAT_APP_ID and KEQUN_WECHAT_APP_SECRET."""
    if not settings.KEQUN_WECHAT_APP_ID:
        raise ChannelNotConfiguredError(
            "WeChat is not configured: set KEQUN_WECHAT_APP_ID and KEQUN_WECHAT_APP_SECRET"
        )
    raise ChannelNotConfiguredError("WeChat sending is being built")
