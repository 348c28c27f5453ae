"""SMS through a provider: a generic JSON API or Alibaba Cloud SMS (dysmsapi SendSms).

KEQUN_SMS_URL's scheme picks the adapter:
  https://sms.example/api/send   generic: POST {"id", "to", "text", "template_code",
                                 "params", "sign_name"} with "Authorization: Bearer
                                 KEQUN_SMS_TOKEN"; a 2xx answer is sent, its "id" kept
  aliyun://KEY_ID:KEY_SECRET@dysmsapi.aliyuncs.com
                                 Alibaba Cloud's RPC API (HMAC-SHA1 signed), with the
                                 message's template code and parameters and KEQUN_SMS_SIGN_NAME
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import urllib.parse
import uuid
from collections.abc import Sequence
from typing import Any

import requests
from django.conf import settings

from kequn.engage.channels.base import (
    ChannelNotConfiguredError,
    ChannelUnavailableError,
    OutgoingMessage,
    RateLimiter,
    SendResult,
    one_line,
    send_each,
)

TIMEOUT = (5.0, 15.0)  # connect, read (seconds)
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def is_e164(phone: str) -> bool:
    """Return whether ``phone`` is in E.164 form (+ country code and number)."""
    return bool(_E164.match(phone))


def _not_a_phone(key: str) -> SendResult:
    return SendResult(
        key=key,
        status="failed",
        error="sms: not a phone number in E.164 form (+86...)",
        hard_bounce=True,
    )


class GenericSMSChannel:
    """POST each SMS as JSON to a URL with a bearer token."""

    kind = "sms"

    def __init__(
        self, url: str, *, token: str, sign_name: str = "", rate_per_second: float = 0.0
    ) -> None:
        self.url = url
        self.token = token
        self.sign_name = sign_name
        self.rate_per_second = rate_per_second
        self.limiter = RateLimiter(rate_per_second)
        self.session = requests.Session()

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Send each message; one result per message, in order."""
        return send_each(messages, self._send_one, self.limiter)

    def _send_one(self, message: OutgoingMessage) -> SendResult:
        key = message.key
        if not is_e164(message.to):
            return _not_a_phone(key)
        body: dict[str, Any] = {
            "id": key,
            "to": message.to,
            "text": message.text,
            "template_code": message.template_code,
            "params": message.params,
            "sign_name": self.sign_name,
        }
        try:
            answer = self.session.post(
                self.url,
                json=body,
                headers={"Authorization": f"Bearer {self.token}", "Idempotency-Key": key},
                timeout=TIMEOUT,
            )
        except requests.RequestException as exc:
            raise ChannelUnavailableError(
                f"sms: cannot reach the SMS provider at {_origin(self.url)} ({type(exc).__name__}); "
                "check KEQUN_SMS_URL"
            ) from None
        status = answer.status_code
        if status in (401, 403):
            raise ChannelUnavailableError(
                f"sms: the SMS provider refused the token (HTTP {status}); check KEQUN_SMS_TOKEN"
            )
        detail = one_line(answer.text, 160)
        if 200 <= status < 300:
            provider_id = str(_json(answer).get("id") or _json(answer).get("message_id") or "")
            return SendResult(key=key, status="sent", provider_id=provider_id)
        if status in (408, 429) or status >= 500:
            return SendResult(key=key, status="retry", error=f"sms: HTTP {status} {detail}")
        return SendResult(key=key, status="failed", error=f"sms: HTTP {status} {detail}")

    def close(self) -> None:
        """Close the HTTP connections."""
        self.session.close()


# Alibaba Cloud SMS answer codes, by what the caller should do.
ALIYUN_RETRY = {
    "isv.BUSINESS_LIMIT_CONTROL",  # per-number flow control (per minute / hour / day)
    "isv.DAY_LIMIT_CONTROL",
    "Throttling",
    "Throttling.User",
    "isp.SYSTEM_ERROR",
    "isp.RAM_PERMISSION_DENY",
    "ServiceUnavailable",
    "InternalError",
}
ALIYUN_BOUNCE = {"isv.MOBILE_NUMBER_ILLEGAL", "isv.PHONE_NUMBER_ILLEGAL"}
ALIYUN_OUTAGE = {
    "InvalidAccessKeyId.NotFound": "check the key id in KEQUN_SMS_URL",
    "InvalidAccessKeyId.Inactive": "the access key is disabled",
    "SignatureDoesNotMatch": "check the key secret in KEQUN_SMS_URL",
    "isv.AMOUNT_NOT_ENOUGH": "the account balance is too low",
    "isv.OUT_OF_SERVICE": "the account is out of service",
    "isv.ACCOUNT_NOT_EXISTS": "the account does not exist",
    "isv.ACCOUNT_ABNORMAL": "the account is abnormal",
    "isv.SMS_SIGNATURE_ILLEGAL": "check KEQUN_SMS_SIGN_NAME",
    "isv.SMS_SIGN_ILLEGAL": "check KEQUN_SMS_SIGN_NAME",
}


def percent_encode(value: str) -> str:
    """Return ``value`` percent-encoded as Alibaba Cloud's signature wants (RFC 3986, space %20)."""
    return urllib.parse.quote(value, safe="~")


def sign_aliyun(params: dict[str, str], secret: str, method: str = "POST") -> str:
    """Return the signature of an Alibaba Cloud RPC request (HMAC-SHA1, base64)."""
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items())
    )
    to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class AliyunSMSChannel:
    """Alibaba Cloud SMS: SendSms with a sign name, a template code and template parameters."""

    kind = "sms"
    version = "2017-05-25"

    def __init__(
        self,
        endpoint: str,
        *,
        key_id: str,
        key_secret: str,
        sign_name: str,
        rate_per_second: float = 0.0,
    ) -> None:
        self.endpoint = endpoint
        self.key_id = key_id
        self.key_secret = key_secret
        self.sign_name = sign_name
        self.rate_per_second = rate_per_second
        self.limiter = RateLimiter(rate_per_second)
        self.session = requests.Session()

    def request_params(self, message: OutgoingMessage) -> dict[str, str]:
        """Return the signed parameters of one SendSms call."""
        phone = message.to
        # Mainland numbers go without the country code, others with it but without "+".
        number = phone[3:] if phone.startswith("+86") else phone.lstrip("+")
        params = {
            "AccessKeyId": self.key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "RegionId": "cn-hangzhou",
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": self.version,
            "PhoneNumbers": number,
            "SignName": self.sign_name,
            "TemplateCode": message.template_code,
            "OutId": message.key[:64],
        }
        if message.params:
            params["TemplateParam"] = json.dumps(
                message.params, ensure_ascii=False, separators=(",", ":")
            )
        params["Signature"] = sign_aliyun(params, self.key_secret)
        return params

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Send each message; one result per message, in order."""
        return send_each(messages, self._send_one, self.limiter)

    def _send_one(self, message: OutgoingMessage) -> SendResult:
        key = message.key
        if not is_e164(message.to):
            return _not_a_phone(key)
        if not message.template_code:
            return SendResult(
                key=key,
                status="failed",
                error="sms: Alibaba Cloud SMS needs the approved template code (SMS_...)",
            )
        try:
            answer = self.session.post(
                self.endpoint, data=self.request_params(message), timeout=TIMEOUT
            )
        except requests.RequestException as exc:
            raise ChannelUnavailableError(
                f"sms: cannot reach Alibaba Cloud SMS at {_origin(self.endpoint)} ({type(exc).__name__})"
            ) from None
        body = _json(answer)
        code = str(body.get("Code") or f"HTTP {answer.status_code}")
        if code == "OK":
            return SendResult(key=key, status="sent", provider_id=str(body.get("BizId", "")))
        error = f"sms: {code} {one_line(body.get('Message', ''), 120)}".rstrip()
        if code in ALIYUN_OUTAGE:
            raise ChannelUnavailableError(
                f"sms: Alibaba Cloud SMS answered {code}: {ALIYUN_OUTAGE[code]}"
            )
        if code in ALIYUN_RETRY or answer.status_code >= 500:
            return SendResult(key=key, status="retry", error=error)
        return SendResult(key=key, status="failed", error=error, hard_bounce=code in ALIYUN_BOUNCE)

    def close(self) -> None:
        """Close the HTTP connections."""
        self.session.close()


def _json(answer: requests.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _origin(url: str) -> str:
    """Return scheme://host[:port] of a URL, without credentials or path."""
    parts = urllib.parse.urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def build_sms_channel() -> GenericSMSChannel | AliyunSMSChannel:
    """Return the SMS channel from KEQUN_SMS_URL (its scheme picks the adapter)."""
    url = settings.KEQUN_SMS_URL
    if not url:
        raise ChannelNotConfiguredError(
            "SMS is not configured: set KEQUN_SMS_URL (https://… with KEQUN_SMS_TOKEN, or aliyun://KEY_ID:SECRET@dysmsapi.aliyuncs.com)"
        )
    parts = urllib.parse.urlsplit(url)
    rate = float(settings.KEQUN_SMS_RATE)
    if parts.scheme in ("aliyun", "aliyun+http", "aliyun+https"):
        if not (parts.username and parts.password and parts.hostname):
            raise ChannelNotConfiguredError(
                "KEQUN_SMS_URL for Alibaba Cloud must be aliyun://ACCESS_KEY_ID:ACCESS_KEY_SECRET@dysmsapi.aliyuncs.com"
            )
        if not settings.KEQUN_SMS_SIGN_NAME:
            raise ChannelNotConfiguredError(
                "Alibaba Cloud SMS needs KEQUN_SMS_SIGN_NAME (the approved signature)"
            )
        scheme = "http" if parts.scheme == "aliyun+http" else "https"
        port = f":{parts.port}" if parts.port else ""
        return AliyunSMSChannel(
            f"{scheme}://{parts.hostname}{port}/",
            key_id=urllib.parse.unquote(parts.username),
            key_secret=urllib.parse.unquote(parts.password),
            sign_name=settings.KEQUN_SMS_SIGN_NAME,
            rate_per_second=rate,
        )
    if parts.scheme in ("http", "https") and parts.hostname:
        if not settings.KEQUN_SMS_TOKEN:
            raise ChannelNotConfiguredError(
                "the generic SMS API needs KEQUN_SMS_TOKEN (its bearer token)"
            )
        return GenericSMSChannel(
            url,
            token=settings.KEQUN_SMS_TOKEN,
            sign_name=settings.KEQUN_SMS_SIGN_NAME,
            rate_per_second=rate,
        )
    raise ChannelNotConfiguredError(
        f"KEQUN_SMS_URL must start with https:// (generic API) or aliyun:// (Alibaba Cloud), not {parts.scheme or 'nothing'}://"
    )
