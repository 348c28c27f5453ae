"""Signed webhooks: JSON POSTs with an HMAC-SHA256 signature header, retried with backoff.

Each call carries X-Kequn-Timestamp (Unix seconds) and X-Kequn-Signature:
sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed by KEQUN_WEBHOOK_SECRET>; the
receiver recomputes it over the raw body and rejects old timestamps (replays).
X-Kequn-Delivery carries the message key, the same on every retry, so a receiver can drop
repeats. A timeout, 408, 429 or 5xx answer is tried again after a short, growing pause; a
few failed attempts make the result "retry" (the caller tries later), another 4xx "failed".
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse
from collections.abc import Sequence

import requests
from django.conf import settings

from kequn.engage.channels.base import (
    ChannelNotConfiguredError,
    OutgoingMessage,
    RateLimiter,
    SendResult,
    one_line,
    send_each,
)

TIMEOUT = (5.0, 10.0)


def sign_webhook(secret: str, timestamp: str, body: bytes) -> str:
    """Return the X-Kequn-Signature value of a body sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookChannel:
    """POST signed JSON to each message's URL."""

    kind = "webhook"

    def __init__(
        self,
        *,
        secret: str,
        rate_per_second: float = 0.0,
        attempts: int = 3,
        backoff_seconds: float = 0.5,
    ) -> None:
        self.secret = secret
        self.rate_per_second = rate_per_second
        self.attempts = max(1, attempts)
        self.backoff_seconds = backoff_seconds
        self.limiter = RateLimiter(rate_per_second)
        self.session = requests.Session()

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Send each message; one result per message, in order."""
        return send_each(messages, self._send_one, self.limiter)

    def _send_one(self, message: OutgoingMessage) -> SendResult:
        key = message.key
        url = message.to
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return SendResult(
                key=key, status="failed", error="webhook: the URL must start with https://"
            )
        payload = (
            message.payload if message.payload is not None else {"key": key, "text": message.text}
        )
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode()
        error = ""
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(self.backoff_seconds * 2 ** (attempt - 1))
            stamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "Kequn-Webhook/1",
                "X-Kequn-Timestamp": stamp,
                "X-Kequn-Signature": sign_webhook(self.secret, stamp, body),
                "X-Kequn-Delivery": key,
                **{
                    k: v for k, v in message.headers.items() if not k.lower().startswith("x-kequn-")
                },
            }
            try:
                answer = self.session.post(url, data=body, headers=headers, timeout=TIMEOUT)
            except requests.RequestException as exc:
                error = f"webhook: {type(exc).__name__} calling {parts.hostname}"
                continue
            status = answer.status_code
            if 200 <= status < 300:
                return SendResult(
                    key=key, status="sent", provider_id=answer.headers.get("X-Request-Id", "")
                )
            error = f"webhook: HTTP {status} from {parts.hostname}: {one_line(answer.text, 120)}"
            if 400 <= status < 500 and status not in (408, 425, 429):
                return SendResult(key=key, status="failed", error=error)
        return SendResult(
            key=key, status="retry", error=f"{error} (after {self.attempts} attempts)"
        )

    def close(self) -> None:
        """Close the HTTP connections."""
        self.session.close()


def build_webhook_channel() -> WebhookChannel:
    """Return the webhook channel keyed by KEQUN_WEBHOOK_SECRET."""
    if not settings.KEQUN_WEBHOOK_SECRET:
        raise ChannelNotConfiguredError(
            "webhooks are not configured: set KEQUN_WEBHOOK_SECRET (the key receivers check signatures with)"
        )
    return WebhookChannel(
        secret=settings.KEQUN_WEBHOOK_SECRET, rate_per_second=float(settings.KEQUN_WEBHOOK_RATE)
    )
