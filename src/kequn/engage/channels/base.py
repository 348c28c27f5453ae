"""The channel interface: one outgoing message, its result, and what every sender offers."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Status = Literal["sent", "failed", "retry"]


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to one recipient, ready for a channel to send."""

    key: str  # unique idempotency key (the outbox row id); also in Message-ID / provider out_id
    to: str  # email address, phone (E.164), WeChat openid, or webhook URL
    subject: str = ""
    html: str = ""  # email body (sanitised and CSS-inlined by the email channel)
    text: str = ""  # plain text (email alternative part, SMS text); derived from html if empty
    template_code: str = ""  # SMS provider template code / WeChat template id
    params: dict[str, str] = field(default_factory=dict)  # template params for SMS / WeChat
    unsubscribe_url: str = ""  # set for marketing: List-Unsubscribe + List-Unsubscribe-Post
    headers: dict[str, str] = field(default_factory=dict)
    payload: dict[str, Any] | None = None  # webhook JSON body
    html_ready: bool = False  # html is already an inlined, sanitised document (and text set)


@dataclass(frozen=True)
class SendResult:
    """What became of one message: sent, failed for good, or worth retrying later."""

    key: str
    status: Status  # failed = permanent (5xx, invalid number); retry = transient
    provider_id: str = ""
    error: str = ""  # one line, no personal data
    hard_bounce: bool = False  # the caller suppresses the address

    @property
    def is_sent(self) -> bool:
        """Return whether the provider accepted the message."""
        return self.status == "sent"


class Channel(Protocol):
    """A configured sender; send_batch never raises for one message's error."""

    kind: str  # "email" | "sms" | "wechat" | "webhook"
    rate_per_second: float  # configured rate limit; 0 means unlimited

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Send the messages in order and return one result per message, in the same order."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class ChannelNotConfiguredError(Exception):
    """The channel has no settings; the message names the KEQUN_* setting to set."""


class ChannelUnavailableError(Exception):
    """The whole channel is down (connection or login refused): the caller retries later."""


class RateLimiter:
    """Pace calls to at most ``rate_per_second`` across threads (0 = no limit)."""

    def __init__(self, rate_per_second: float) -> None:
        self.interval = 1.0 / rate_per_second if rate_per_second > 0 else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until the next call is allowed."""
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            # No credit for idle time: after a pause the next slot is now, not a burst.
            slot = max(self._next, now)
            self._next = slot + self.interval
        delay = slot - now
        if delay > 0:
            time.sleep(delay)


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_NUMBER = re.compile(r"\+?\d[\d -]{6,}\d")


def one_line(text: object, limit: int = 300) -> str:
    """Return ``text`` on one line, shortened, without addresses or phone numbers.

    Providers quote the recipient in their answers ("550 <li@example.com>: no such user");
    the error is stored and shown, so personal data is replaced by a placeholder.
    """
    flat = " ".join(str(text).split())
    flat = _NUMBER.sub("<number>", _EMAIL.sub("<address>", flat))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def send_each(
    messages: Sequence[OutgoingMessage],
    send_one: Callable[[OutgoingMessage], SendResult],
    limiter: RateLimiter,
) -> list[SendResult]:
    """Send messages one by one, paced; a channel-wide outage ends the batch.

    send_one raises ChannelUnavailableError when the whole channel is down (credentials
    refused, provider unreachable). Before anything was sent that propagates, so the caller
    retries the whole batch; after, the rest of the batch is reported "retry".
    """
    results: list[SendResult] = []
    for message in messages:
        limiter.wait()
        try:
            results.append(send_one(message))
        except ChannelUnavailableError as exc:
            if not results:
                raise
            reason = one_line(exc)
            results += [
                SendResult(key=m.key, status="retry", error=reason)
                for m in messages[len(results) :]
            ]
            break
    return results
