"""The nightly expiry: set-based SQL over ranges of members, one transaction per range.

Each range locks the members that have overdue grants, then runs three statements whatever
the range's size: one INSERT … SELECT writes an expire entry per member (keyed by the run and
the member), one UPDATE … FROM takes the same sums off the stored balances, and one UPDATE
moves each overdue grant's ``remaining`` to its ``expired`` (so the grant itself says what
expired, and no row is written per grant). A range is all or nothing, so a run killed midway
leaves whole ranges done and the next run finishes the rest (it finds only grants still
open); the same run repeated finds nothing to do.
"""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone
from tqdm import tqdm

from kequn.loyalty.models import LedgerEntry, Member
from kequn.security.actors import Actor
from kequn.security.audit import services as audit

ENTRY = LedgerEntry._meta.db_table
MEMBER = Member._meta.db_table
OVERDUE = "g.member_id >= %s AND g.member_id < %s AND g.remaining > 0 AND g.expires_at <= %s"


@dataclass
class ExpiryResult:
    members: int = 0
    grants: int = 0
    points: int = 0


def expire_range(low: int, high: int, now: datetime, run: str, by: Actor) -> ExpiryResult:
    """Expire the overdue grants of members low <= id < high (one transaction)."""
    prefix = f"expire:{run}:"
    bounds: list[Any] = [low, high, now]
    result = ExpiryResult()
    with transaction.atomic(), connection.cursor() as cursor:
        lock = " FOR UPDATE" if connection.vendor == "postgresql" else ""
        cursor.execute(
            f"SELECT customer_id FROM {MEMBER} WHERE customer_id IN "  # noqa: S608 -- table names are ours
            f"(SELECT g.member_id FROM {ENTRY} g WHERE {OVERDUE}) ORDER BY customer_id{lock}",
            bounds,
        )
        result.members = len(cursor.fetchall())
        if not result.members:
            return result
        sql = f"SELECT COALESCE(SUM(g.remaining), 0) FROM {ENTRY} g WHERE {OVERDUE}"  # noqa: S608
        cursor.execute(sql, bounds)
        result.points = int(cursor.fetchone()[0])
        cursor.execute(
            f"INSERT INTO {ENTRY} (member_id, kind, points, pending, key, reason, source, "  # noqa: S608
            "order_ref, created_at, created_by, remaining, held, expired) "
            f"SELECT g.member_id, 'expire', -SUM(g.remaining), 0, %s || CAST(g.member_id AS TEXT), "
            f"'expired', 'expiry', '', %s, %s, 0, 0, 0 FROM {ENTRY} g WHERE {OVERDUE} "
            "GROUP BY g.member_id",
            [prefix, now, by.get_username()[:150], *bounds],
        )
        cursor.execute(
            f"UPDATE {MEMBER} SET balance = {MEMBER}.balance - d.total FROM "  # noqa: S608
            f"(SELECT g.member_id, SUM(g.remaining) AS total FROM {ENTRY} g WHERE {OVERDUE} "
            f"GROUP BY g.member_id) d WHERE {MEMBER}.customer_id = d.member_id",
            bounds,
        )
        cursor.execute(
            f"UPDATE {ENTRY} SET expired = expired + remaining, remaining = 0 "  # noqa: S608
            "WHERE member_id >= %s AND member_id < %s AND remaining > 0 AND expires_at <= %s",
            bounds,
        )
        result.grants = cursor.rowcount
        audit.record_event(
            audit.CHANGE,
            actor=by,
            target_type="loyalty.member",
            detail={
                "loyalty": "expire",
                "members": result.members,
                "grants": result.grants,
                "points": result.points,
                "run": run,
            },
        )
    return result


def expire_points(
    *,
    by: Actor,
    now: datetime | None = None,
    range_size: int = 20_000,
    progress: bool = False,
) -> ExpiryResult:
    """Expire every grant whose expiry has passed; return the members, grants and points."""
    now = now or timezone.now()
    # The members' primary key gives the ranges at once; finding the lowest and highest
    # member with an overdue grant would read the whole ledger.
    bounds = Member.objects.aggregate(low=Min("customer_id"), high=Max("customer_id"))
    total = ExpiryResult()
    if bounds["low"] is None:
        return total
    low, high = bounds["low"], bounds["high"] + 1
    starts = range(low, high, range_size)
    run = f"{now:%Y%m%d%H%M%S}-{uuid.uuid4().hex[:8]}"
    with tqdm(total=len(starts), unit=" ranges", file=sys.stderr, disable=not progress) as bar:
        for start in starts:
            done = expire_range(start, min(start + range_size, high), now, run, by)
            total.members += done.members
            total.grants += done.grants
            total.points += done.points
            bar.update(1)
    return total
