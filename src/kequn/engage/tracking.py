"""Open and click tracking of marketing email, only for customers who consented to it.

A tracked message gets a 1x1 image whose signed address names the message, and each of its
http(s) links becomes a signed redirect naming the message and the original address. The
signatures (django.core.signing, own salts) keep anyone from counting another message or
sending a visitor anywhere but the address the message held.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core import signing
from django.urls import reverse

OPEN_SALT = "kequn.engage.track.open"
CLICK_SALT = "kequn.engage.track.click"
# The smallest transparent GIF (1x1, one colour, transparent).
PIXEL_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
_LINK = re.compile(r'(<a\b[^>]*?\bhref=")(https?://[^"]*)(")', re.IGNORECASE)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


@functools.lru_cache(maxsize=4)
def _route_parts(public_url: str, name: str) -> tuple[str, str]:
    # Resolved once: reverse() per link would cost more than signing its token.
    head, _, tail = reverse(name, args=["TOKEN"]).partition("TOKEN")
    return public_url.rstrip("/") + head, tail


def _url(name: str, token: str) -> str:
    head, tail = _route_parts(settings.KEQUN_PUBLIC_URL, name)
    return head + token + tail


def make_open_url(message_id: int) -> str:
    """Return the signed address of a message's open pixel."""
    return _url("engage-track-open", signing.dumps(message_id, salt=OPEN_SALT))


def make_click_url(message_id: int, url: str) -> str:
    """Return the signed redirect of a message's link to ``url``."""
    token = signing.dumps({"m": message_id, "u": url}, salt=CLICK_SALT, compress=True)
    return _url("engage-track-click", token)


def read_open_token(token: str) -> int:
    """Return the message an open token names; raise signing.BadSignature when it was altered."""
    data = signing.loads(token, salt=OPEN_SALT)
    if not isinstance(data, int):
        raise signing.BadSignature("malformed open token")
    return data


def read_click_token(token: str) -> tuple[int, str]:
    """Return (message id, address) of a click token; raise signing.BadSignature when altered."""
    data: Any = signing.loads(token, salt=CLICK_SALT)
    if not isinstance(data, dict) or not isinstance(data.get("m"), int):
        raise signing.BadSignature("malformed click token")
    url = data.get("u")
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        raise signing.BadSignature("click token without an http(s) address")
    return data["m"], url


def add_tracking(document: str, message_id: int, keep: Iterable[str] = ()) -> str:
    """Return a prepared HTML document with its http(s) links redirected and an open pixel.

    Links starting with one of ``keep`` (the unsubscribe link) stay as they are.
    """
    kept = tuple(k for k in keep if k)

    def rewrite(found: re.Match[str]) -> str:
        url = html.unescape(found.group(2))
        if kept and url.startswith(kept):
            return found.group(0)
        return found.group(1) + html.escape(make_click_url(message_id, url)) + found.group(3)

    tracked = _LINK.sub(rewrite, document)
    pixel = (
        f'<img src="{html.escape(make_open_url(message_id))}" width="1" height="1" alt=""'
        ' style="display:block;width:1px;height:1px;border:0">'
    )
    tracked, found = _BODY_END.subn(lambda m: pixel + m.group(0), tracked, count=1)
    return tracked if found else tracked + pixel
