"""Engagement channels: email over SMTP, SMS, WeChat and signed webhooks behind one interface.

Callers build OutgoingMessage values, get a sender with get_channel(kind) and call
send_batch; every sender paces itself by its configured rate and returns one SendResult
per message (sent, failed for good, or retry later).
"""

from __future__ import annotations

from kequn.engage.channels.base import (
    Channel,
    ChannelNotConfiguredError,
    ChannelUnavailableError,
    OutgoingMessage,
    SendResult,
)
from kequn.engage.channels.registry import CHANNEL_KINDS, get_channel

__all__ = [
    "CHANNEL_KINDS",
    "Channel",
    "ChannelNotConfiguredError",
    "ChannelUnavailableError",
    "OutgoingMessage",
    "SendResult",
    "get_channel",
]
