"""Build a channel from the settings by its kind."""

from __future__ import annotations

from collections.abc import Callable

from kequn.engage.channels.base import Channel
from kequn.engage.channels.email import build_email_channel
from kequn.engage.channels.sms import build_sms_channel
from kequn.engage.channels.webhook import build_webhook_channel
from kequn.engage.channels.wechat import build_wechat_channel

BUILDERS: dict[str, Callable[[], Channel]] = {
    "email": build_email_channel,
    "sms": build_sms_channel,
    "wechat": build_wechat_channel,
    "webhook": build_webhook_channel,
}
CHANNEL_KINDS = tuple(BUILDERS)


def get_channel(kind: str) -> Channel:
    """Return the configured sender for ``kind`` (email, sms, wechat or webhook).

    Raises ChannelNotConfiguredError naming the KEQUN_* setting when it has no settings.
    """
    try:
        build = BUILDERS[kind]
    except KeyError:
        raise ValueError(
            f"unknown channel {kind!r}: use one of {', '.join(CHANNEL_KINDS)}"
        ) from None
    return build()
