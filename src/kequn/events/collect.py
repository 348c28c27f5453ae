"""Event collection compatible with the Segment HTTP tracking API (/v1/track, /v1/batch ...).

Point a Segment library at this server (host only) and give it a write key made with
`kequn source create NAME`. Keys go in HTTP basic auth as the user name, password empty.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
import zlib
from datetime import datetime
from typing import NamedTuple

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from kequn.events.models import Source
from kequn.events.services import (
    CollectionError,
    collect_events,
    get_sources_generation,
    hash_write_key,
)
from kequn.security.inputs import (
    DATETIME_YEARS,
    BadInputError,
    clean_json,
    describe_year_range,
    is_in_years,
)

MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
TYPES = ("identify", "track", "page", "screen", "group", "alias")


class KeyInfo(NamedTuple):
    id: int
    name: str
    key_type: str


# Write keys are checked on every request; a copy in memory spares a query per batch. Each
# copy carries the shared generation token it was read under and is dropped as soon as the
# token changes (a source was revoked or changed, by any worker), else after _KEY_TTL seconds.
_KEY_CACHE: dict[str, tuple[float, str, KeyInfo | None]] = {}
_KEY_TTL = 30.0
_KEY_CACHE_SIZE = 10_000


class NonFiniteNumberError(ValueError):
    """NaN, Infinity or a number too large for a float: JSON has no such values."""


def _refuse_constant(name: str) -> float:
    raise NonFiniteNumberError(
        f"body holds {name}, which is not a JSON number and cannot be stored: send a number or null"
    )


def _parse_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise NonFiniteNumberError(
            f"body holds the number {text[:40]}, too large to store: send a smaller number or null"
        )
    return value


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"success": False, "message": message}, status=status)


def _write_key(request: HttpRequest, body: dict) -> str:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            user, _sep, _password = base64.b64decode(header[6:]).decode().partition(":")
            return user
        except (ValueError, UnicodeDecodeError):
            return ""
    return str(body.get("writeKey") or "")


def _find_source(key: str) -> KeyInfo | None:
    """Return the active source of a write key; None for an unknown or revoked key."""
    if not key or len(key) > 200:
        return None
    digest = hash_write_key(key)
    generation = get_sources_generation()  # None: no shared cache, so no copies either
    cached = _KEY_CACHE.get(digest)
    now = time.monotonic()
    if cached and cached[1] == generation and now - cached[0] < _KEY_TTL:
        return cached[2]
    row = (
        Source.objects.filter(key_digest=digest, is_active=True)
        .values_list("pk", "name", "key_type")
        .first()
    )
    info = KeyInfo(*row) if row else None
    if generation is not None:
        if len(_KEY_CACHE) >= _KEY_CACHE_SIZE:  # made-up keys must not grow it without end
            _KEY_CACHE.clear()
        _KEY_CACHE[digest] = (now, generation, info)
    return info


def _read_body(request: HttpRequest) -> bytes:
    raw = request.body
    encoding = request.headers.get("Content-Encoding", "").lower()
    if encoding == "gzip":
        # Decompress no further than the limit, so a small bomb cannot fill memory.
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        raw = decompressor.decompress(raw, MAX_BATCH_BYTES + 1)
    elif encoding not in ("", "identity"):
        raise CollectionError(f"unsupported Content-Encoding {encoding!r}: send JSON or gzip")
    return raw


def _check_timestamp(value: object) -> str | None:
    # An unreadable timestamp falls back to the time of receipt; a readable one far out of
    # range overflowed the conversion to UTC (year 1 at +14:00, year 9999 at -14:00).
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if is_in_years(parsed, DATETIME_YEARS):
        return None
    return (
        f"has timestamp {value[:40]!r}: send an ISO 8601 time {describe_year_range(DATETIME_YEARS)}"
        ", its UTC offset within ±14:00"
    )


@csrf_exempt
def collect(request: HttpRequest, kind: str) -> JsonResponse:
    """Accept one Segment call (identify, track, page, screen, group, alias) or a batch."""
    if request.method != "POST":
        return _error(405, "use POST with a JSON body")
    if int(request.headers.get("Content-Length") or 0) > MAX_BATCH_BYTES * 4:
        return _error(400, "request larger than 500 KB: send smaller batches")
    try:
        raw = _read_body(request)
    except (CollectionError, OSError, zlib.error, gzip.BadGzipFile) as exc:
        return _error(400, f"cannot read body: {exc}")
    if len(raw) > MAX_BATCH_BYTES:
        return _error(400, "batch larger than 500 KB: send at most 500 KB per request")
    try:
        body = json.loads(raw, parse_constant=_refuse_constant, parse_float=_parse_float)
    except NonFiniteNumberError as exc:
        # Refused whole: storing the rest while answering success would lose the event.
        return _error(400, str(exc))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _error(400, "body is not valid JSON")
    except RecursionError:
        return _error(400, "body nests too deep: flatten the properties")
    if not isinstance(body, dict):
        return _error(400, "body must be a JSON object")
    try:
        # Control characters go (event names, traits); NULs, lone surrogates and deep
        # nesting cannot be stored and are refused.
        body = clean_json(body)
    except BadInputError as exc:
        return _error(400, str(exc))
    source = _find_source(_write_key(request, body))
    if source is None:
        return _error(401, "unknown or revoked write key: send it as the basic-auth user name")
    if source.key_type == Source.KeyType.SERVER and request.headers.get("Origin"):
        # A web page sent it, so the key sits in the page for anyone to copy: refuse it.
        return _error(
            403,
            "a server write key cannot be used from a browser: give web pages and apps "
            "a client key (kequn source create NAME)",
        )
    if kind == "batch":
        messages = body.get("batch")
        if not isinstance(messages, list):
            return _error(400, "a batch needs a 'batch' list of messages")
    else:
        messages = [{**body, "type": kind}]
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            return _error(400, f"message {index} is not a JSON object")
        size = len(json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode())
        if size > MAX_EVENT_BYTES:
            return _error(
                400, f"message {index} is {size} bytes, over the 32 KB limit per event: trim it"
            )
        if message.get("type") not in TYPES:
            return _error(400, f"message {index} has unknown type {message.get('type')!r}")
        if not (message.get("userId") or message.get("anonymousId")):
            return _error(400, f"message {index} needs a userId or an anonymousId")
        if problem := _check_timestamp(message.get("timestamp")):
            return _error(400, f"message {index} {problem}")
    try:
        collect_events(
            source=Source(pk=source.id, name=source.name, key_type=source.key_type),
            messages=messages,
        )
    except CollectionError as exc:
        return _error(400, str(exc))
    return JsonResponse({"success": True})


urlpatterns = [
    path(kind, collect, {"kind": kind}, name=f"segment_{kind}") for kind in (*TYPES, "batch")
]
