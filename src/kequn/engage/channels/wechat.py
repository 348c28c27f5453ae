"""WeChat Official Account template and subscribe messages to an openid.

A message's ``to`` is the follower's openid, ``template_code`` the template id and
``params`` the template's fields ({"thing1": "…", "time2": "…"}). ``payload`` picks and
extends the kind: {"type": "subscribe", "page": "…"} sends a subscribe message
(/cgi-bin/message/subscribe/bizsend; each consent the follower gave allows one send),
anything else a template message (/cgi-bin/message/template/send) with an optional
"url" or "miniprogram". The access token is fetched with the AppID and AppSecret and
cached (shared by the server and workers through Django's cache) until shortly before it
expires; an answer that it expired (40001, 42001) fetches a new one and sends again once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import requests
from django.conf import settings
from django.core.cache import cache

from kequn.engage.channels.base import (
    ChannelNotConfiguredError,
    ChannelUnavailableError,
    OutgoingMessage,
    RateLimiter,
    SendResult,
    one_line,
    send_each,
)

TIMEOUT = (5.0, 15.0)
TEMPLATE_PATH = "/cgi-bin/message/template/send"
SUBSCRIBE_PATH = "/cgi-bin/message/subscribe/bizsend"
TOKEN_ERRORS = {40001, 40014, 42001}  # invalid or expired access token
RETRY_ERRORS = {-1, 45009, 45011, 45047}  # system busy, API quota or frequency limits
# The follower is unreachable by this channel: recorded as failed, the openid suppressed.
BOUNCE_ERRORS = {40003: "not a follower's openid"}
FAILED_ERRORS = {
    43004: "the user does not follow the account",
    43101: "no subscription left (the user must consent again)",
    40037: "invalid template id",
    47003: "template fields do not match the template",
    41028: "invalid form id",
}
OUTAGE_ERRORS = {
    40013: "check KEQUN_WECHAT_APP_ID",
    40125: "check KEQUN_WECHAT_APP_SECRET",
    40164: "this server's address is not on the account's IP whitelist",
    48001: "the account may not use this API",
    50002: "the account is restricted",
}


class WeChatChannel:
    """Send template and subscribe messages through the Official Account API."""

    kind = "wechat"

    def __init__(
        self, api_url: str, *, app_id: str, app_secret: str, rate_per_second: float = 0.0
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.app_id = app_id
        self.app_secret = app_secret
        self.rate_per_second = rate_per_second
        self.limiter = RateLimiter(rate_per_second)
        self.session = requests.Session()
        digest = hashlib.sha256(f"{self.api_url}|{app_id}".encode()).hexdigest()[:16]
        self.cache_key = f"kequn:wechat-token:{digest}"

    # ------------------------------------------------------------------ token

    def access_token(self, *, refresh: bool = False) -> str:
        """Return a valid access token, fetching a new one when asked or when none is cached."""
        if not refresh:
            token = cache.get(self.cache_key)
            if token:
                return str(token)
        body = self._call(
            "GET",
            "/cgi-bin/token",
            params={
                "grant_type": "client_credential",
                "appid": self.app_id,
                "secret": self.app_secret,
            },
        )
        token = body.get("access_token")
        if not token:
            code = int(body.get("errcode") or 0)
            hint = OUTAGE_ERRORS.get(code, "check KEQUN_WECHAT_APP_ID and KEQUN_WECHAT_APP_SECRET")
            raise ChannelUnavailableError(f"wechat: no access token (errcode {code}): {hint}")
        # Keep it until five minutes before WeChat's expiry, so no send races the deadline.
        expires = max(60, int(body.get("expires_in") or 7200) - 300)
        cache.set(self.cache_key, token, expires)
        return str(token)

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            answer = self.session.request(
                method, f"{self.api_url}{path}", timeout=TIMEOUT, **kwargs
            )
        except requests.RequestException as exc:
            raise ChannelUnavailableError(
                f"wechat: cannot reach the WeChat API at {self.api_url} ({type(exc).__name__}); check KEQUN_WECHAT_API_URL"
            ) from None
        if answer.status_code >= 500:
            raise ChannelUnavailableError(
                f"wechat: the WeChat API answered HTTP {answer.status_code}"
            )
        try:
            body = answer.json()
        except ValueError:
            body = {"errcode": -1, "errmsg": f"HTTP {answer.status_code}, not JSON"}
        return body if isinstance(body, dict) else {"errcode": -1, "errmsg": "unexpected answer"}

    # ------------------------------------------------------------------ messages

    def request_body(self, message: OutgoingMessage) -> tuple[str, dict[str, Any]]:
        """Return the API path and the JSON body of one message."""
        extra = dict(message.payload or {})
        kind = extra.pop("type", "template")
        data = {name: {"value": value} for name, value in message.params.items()}
        body: dict[str, Any] = {
            "touser": message.to,
            "template_id": message.template_code,
            "data": data,
        }
        if kind == "subscribe":
            body["page"] = extra.get("page", "")
            return SUBSCRIBE_PATH, body
        for name in ("url", "miniprogram", "client_msg_id"):
            if name in extra:
                body[name] = extra[name]
        body.setdefault("client_msg_id", message.key[:64])  # WeChat drops a repeated id
        return TEMPLATE_PATH, body

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Send each message; one result per message, in order."""
        return send_each(messages, self._send_one, self.limiter)

    def _send_one(self, message: OutgoingMessage) -> SendResult:
        key = message.key
        if not message.to or not message.template_code:
            return SendResult(
                key=key, status="failed", error="wechat: needs the openid and the template id"
            )
        path, body = self.request_body(message)
        token = self.access_token()
        answer = self._call("POST", path, params={"access_token": token}, json=body)
        code = int(answer.get("errcode") or 0)
        if code in TOKEN_ERRORS:
            token = self.access_token(refresh=True)
            answer = self._call("POST", path, params={"access_token": token}, json=body)
            code = int(answer.get("errcode") or 0)
        if code == 0:
            return SendResult(key=key, status="sent", provider_id=str(answer.get("msgid", "")))
        error = f"wechat: errcode {code} " + (
            FAILED_ERRORS.get(code)
            or BOUNCE_ERRORS.get(code)
            or one_line(answer.get("errmsg", ""), 120)
        )
        if code in OUTAGE_ERRORS:
            raise ChannelUnavailableError(f"wechat: errcode {code}: {OUTAGE_ERRORS[code]}")
        if code in RETRY_ERRORS or code in TOKEN_ERRORS:
            return SendResult(key=key, status="retry", error=error)
        return SendResult(key=key, status="failed", error=error, hard_bounce=code in BOUNCE_ERRORS)

    def close(self) -> None:
        """Close the HTTP connections."""
        self.session.close()


def build_wechat_channel() -> WeChatChannel:
    """Return the WeChat channel from KEQUN_WECHAT_APP_ID and KEQUN_WECHAT_APP_SECRET."""
    if not settings.KEQUN_WECHAT_APP_ID or not settings.KEQUN_WECHAT_APP_SECRET:
        raise ChannelNotConfiguredError(
            "WeChat is not configured: set KEQUN_WECHAT_APP_ID and KEQUN_WECHAT_APP_SECRET"
        )
    return WeChatChannel(
        settings.KEQUN_WECHAT_API_URL,
        app_id=settings.KEQUN_WECHAT_APP_ID,
        app_secret=settings.KEQUN_WECHAT_APP_SECRET,
        rate_per_second=float(settings.KEQUN_WECHAT_RATE),
    )
