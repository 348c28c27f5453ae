"""What every loyalty service shares: the error, the programme, expiry dates, member locks."""

from __future__ import annotations

import calendar
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import ROUND_FLOOR, Decimal
from functools import lru_cache
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from kequn.loyalty.models import LedgerEntry, Member, Programme, Tier

# Unambiguous letters and digits (no 0/O, 1/I/L) for codes people read out at a till.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


class LoyaltyError(ValueError):
    """Bad input or a refused operation: the message says what and how to fix it."""

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.message, self.code = message, code


def get_programme() -> Programme:
    """Return the programme's rules, creating the defaults on first use."""
    programme = Programme.objects.order_by("pk").first()
    if programme is None:
        programme = Programme.objects.create()
    return programme


def make_code(length: int) -> str:
    """Return a random code of unambiguous characters (about 4.9 bits each)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def _month_end(moment: datetime, months: int) -> datetime:
    local = timezone.localtime(moment)
    month_index = local.month - 1 + months
    year, month = local.year + month_index // 12, month_index % 12 + 1
    last = calendar.monthrange(year, month)[1]
    return local.replace(
        year=year, month=month, day=last, hour=23, minute=59, second=59, microsecond=0
    )


def compute_expiry(
    programme: Programme, available_at: datetime, zone: tzinfo | None = None
) -> datetime | None:
    """Return when points that become available at `available_at` expire (None: never).

    ``zone``: the current time zone, when the caller asks for many (looking it up each
    time was a tenth of an import's loyalty work).
    """
    if programme.expiry == Programme.Expiry.NEVER:
        return None
    if programme.expiry == Programme.Expiry.DAYS:
        return available_at + timedelta(days=programme.expiry_days)
    local = available_at.astimezone(zone or timezone.get_current_timezone())
    return _period_end(local.date(), local.tzinfo, programme.expiry, programme.expiry_months)


@lru_cache(maxsize=4096)
def _period_end(day: date, zone: tzinfo | None, expiry: str, months: int) -> datetime:
    """Return the end of the month (or year) `months` after a local day (cached: an import
    asks for the same few days thousands of times)."""
    end = _month_end(datetime.combine(day, time(12), tzinfo=zone), months)
    if expiry == Programme.Expiry.YEAR_END:
        end = end.replace(month=12, day=31)
    return end


def to_points(amount: Decimal) -> int:
    """Return whole points, rounded down (a fraction of a point is never earned)."""
    return int(amount.to_integral_value(rounding=ROUND_FLOOR))


def check_points(points: object, *, field: str = "points", allow_negative: bool = False) -> int:
    """Return points as an int, or raise a LoyaltyError naming the field."""
    if isinstance(points, bool) or not isinstance(points, int | Decimal | float | str):
        raise LoyaltyError(_("%(f)s must be a whole number of points") % {"f": field})
    try:
        value = Decimal(str(points))
    except ArithmeticError:
        raise LoyaltyError(_("%(f)s must be a whole number of points") % {"f": field}) from None
    if value != value.to_integral_value():
        raise LoyaltyError(
            _("%(f)s must be a whole number of points, not %(v)s") % {"f": field, "v": points}
        )
    if value == 0 or (value < 0 and not allow_negative):
        raise LoyaltyError(_("%(f)s must be above zero, not %(v)s") % {"f": field, "v": points})
    if abs(value) > 10**12:
        raise LoyaltyError(_("%(f)s is too large: %(v)s") % {"f": field, "v": points})
    return int(value)


def lock_member(customer_id: int) -> Member:
    """Return the member row locked for this transaction, or raise for a non-member."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("lock_member needs a transaction")
    member = Member.objects.select_for_update().filter(customer_id=customer_id).first()
    if member is None:
        raise LoyaltyError(
            _("customer %(id)s is not a loyalty member: enrol them first") % {"id": customer_id},
            "unknown_member",
        )
    if member.expired_through is not None:
        settle_expired(member)
    return member


def settle_expired(member: Member) -> None:
    """Move what the nightly expiry took from a locked member's grants into the grants.

    The nightly run only marks the member (see services.expiry); once the grants under the
    mark say so themselves, the mark is cleared and every write sees plain counters again.
    """
    LedgerEntry.objects.filter(
        member=member,
        remaining__gt=0,
        expires_at__lte=member.expired_through,
        id__lte=member.expired_upto_entry,
    ).update(expired=F("expired") + F("remaining"), remaining=0)
    member.expired_through = member.expired_upto_entry = None
    member.save(update_fields=["expired_through", "expired_upto_entry"])


def get_base_tier() -> Tier | None:
    """Return the lowest tier (new members start there), if tiers are set up."""
    return Tier.objects.order_by("rank").first()


def new_member(customer_id: int, tier: Tier | None, now: datetime | None = None) -> Member:
    """Return an unsaved member row with a fresh referral code."""
    now = now or timezone.now()
    return Member(
        customer_id=customer_id,
        tier=tier,
        tier_since=now,
        joined_at=now,
        referral_code=make_code(10),
    )


@contextmanager
def skipping_row_checks(cursor: Any) -> Iterator[None]:
    """Skip the per-row foreign-key checks of the inserts inside, then turn them back on.

    For entries of members the caller has just locked (the expiry's range, an import's
    batch): the deferred check at commit, one trigger call per entry (a tenth of a year-end
    night, an eighth of what loyalty adds to an import), can only pass. Needs a PostgreSQL
    superuser (or SET granted on the parameter); without it the checks stay. When the body
    fails, the rollback of the caller's transaction or savepoint undoes the setting.
    """
    skipped = False
    if connection.vendor == "postgresql":
        try:
            with transaction.atomic():  # a refused SET must not abort the caller's transaction
                cursor.execute("SET LOCAL session_replication_role = replica")
            skipped = True
        except DatabaseError:
            pass
    yield
    if skipped:
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")
