"""The rules a send obeys, read from the settings: control group, holdout, caps, quiet hours."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# Hash buckets: 10,000 per customer, so percentages with two decimals are exact.
BUCKETS = 10_000

SKIP_REASONS = {
    "restricted": _("Processing restricted on a data-subject request"),
    "merged": _("Merged into another customer"),
    "erased": _("Erased on request"),
    "no_consent": _("No consent for the channel and purpose"),
    "withdrawn": _("Consent withdrawn"),
    "unsubscribed": _("Unsubscribed by link"),
    "no_address": _("No address on the channel"),
    "suppressed": _("Address suppressed (bounce or erasure)"),
    "control_group": _("In the global control group"),
    "frequency_cap": _("Frequency cap reached"),
    "render_error": _("The template could not be filled in"),
}


def bucket_of(*parts: object) -> int:
    """Return a stable bucket in [0, BUCKETS) for the parts (same parts, same bucket)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def is_in_control_group(customer_id: int, percent: float | None = None) -> bool:
    """Return whether the customer is in the global control group (never sent marketing)."""
    if percent is None:
        percent = settings.KEQUN_CONTROL_GROUP_PERCENT
    return bucket_of("control", customer_id) < percent * BUCKETS / 100


def is_in_holdout(campaign_id: int, customer_id: int, percent: float) -> bool:
    """Return whether the customer is held out of the campaign (deterministic per pair)."""
    return bucket_of("holdout", campaign_id, customer_id) < percent * BUCKETS / 100


@dataclass(frozen=True)
class Caps:
    """Most marketing messages per customer: on one channel and on all, per day and per week."""

    channel_day: int = 0  # 0 = no cap
    channel_week: int = 0
    day: int = 0
    week: int = 0


def parse_caps(text: str) -> Caps:
    """Read KEQUN_MARKETING_CAPS ("channel_day=2,channel_week=5,day=3,week=10" or "off")."""
    if text.strip().lower() in ("", "off", "none"):
        return Caps()
    values: dict[str, int] = {}
    for item in text.split(","):
        name, _, number = item.partition("=")
        name = name.strip()
        if name not in Caps.__dataclass_fields__ or not number.strip().isdigit():
            raise ImproperlyConfigured(
                f"KEQUN_MARKETING_CAPS: cannot read {item.strip()!r}; write e.g. "
                "channel_day=2,channel_week=5,day=3,week=10 (0 or off for no cap)"
            )
        values[name] = int(number)
    return Caps(**values)


def parse_quiet_hours(text: str) -> tuple[time, time] | None:
    """Read KEQUN_QUIET_HOURS ("21:00-09:00", or "off"); None means no quiet hours."""
    if text.strip().lower() in ("", "off", "none"):
        return None
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError:
        raise ImproperlyConfigured(
            f"KEQUN_QUIET_HOURS: cannot read {text!r}; write e.g. 21:00-09:00 or off"
        ) from None
    return start, end


def get_caps() -> Caps:
    """Return the configured marketing caps."""
    return parse_caps(settings.KEQUN_MARKETING_CAPS)


def end_of_quiet_hours(now: datetime | None = None, window: str | None = None) -> datetime | None:
    """Return when the quiet hours end if ``now`` is inside them (business time zone), else None."""
    quiet = parse_quiet_hours(settings.KEQUN_QUIET_HOURS if window is None else window)
    if quiet is None:
        return None
    start, end = quiet
    local = timezone.localtime(now or timezone.now())
    moment = local.time()
    inside = (start <= moment or moment < end) if start > end else (start <= moment < end)
    if not inside:
        return None
    opening = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if opening <= local:
        opening += timedelta(days=1)
    return opening
