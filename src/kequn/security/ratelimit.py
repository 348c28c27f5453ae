"""Fixed-window rate limits kept in Django's default cache (shared by all server workers).

A rate reads "600/min": at most 600 hits per calendar minute for one key. Windows are
aligned to the clock, so every worker agrees on them without talking to each other.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from kequn.conf import ConfigError

_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*$")


@dataclass(frozen=True)
class Rate:
    limit: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.limit}/{self.seconds}s"


def parse_rate(text: str, name: str = "rate") -> Rate | None:
    """Parse "600/min", "10/s" or "1000/5min"; empty, "0" or "off" disables the limit."""
    if not text or text.strip().lower() in {"0", "off", "none"}:
        return None
    match = _RATE.match(text.lower())
    if not match or match.group(3) not in _UNITS:
        raise ConfigError(
            f"{name}={text!r} is not a rate: write it like 600/min, 10/s or 1000/hour (or off)"
        )
    count, multiple, unit = match.groups()
    seconds = int(multiple or 1) * _UNITS[unit]
    if int(count) < 1 or seconds < 1:
        raise ConfigError(f"{name}={text!r}: the count and the period must be positive")
    return Rate(int(count), seconds)


def get_rate(setting: str) -> Rate | None:
    """Return the rate configured in a setting (e.g. KEQUN_API_RATE), read at call time."""
    return parse_rate(str(getattr(settings, setting, "") or ""), setting)


def hit(scope: str, ident: str, rate: Rate | None, now: float | None = None) -> int | None:
    """Count one hit; return the seconds to wait if the key is over its limit, else None."""
    if rate is None:
        return None
    now = time.time() if now is None else now
    window = int(now // rate.seconds)
    # Hash the identity: it may be a token or a user name, which do not belong in cache keys.
    digest = hashlib.blake2b(ident.encode(), digest_size=12).hexdigest()
    key = f"rl:{scope}:{digest}:{rate.seconds}:{window}"
    # incr() first: in the usual case the window's counter exists and one call is enough.
    # It is atomic on Redis and in memory; on the file cache two workers may rarely both
    # count the same hit once, which only makes the limit slightly stricter.
    try:
        count = cache.incr(key)
    except ValueError:  # first hit of the window
        # add() fails when another worker created the counter meanwhile: count on it.
        count = 1 if cache.add(key, 1, timeout=rate.seconds + 5) else cache.incr(key)
    if count <= rate.limit:
        return None
    return max(1, math.ceil((window + 1) * rate.seconds - now))
