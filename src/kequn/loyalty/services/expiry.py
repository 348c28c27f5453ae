"""The nightly expiry: set-based SQL over ranges of members, one transaction per range.

Each range locks the members that have overdue grants, writes one expire entry per member
(keyed by the run and the member), one allocation per grant, takes the points off the stored
balance and zeroes the grants' ``remaining``. A range is all or nothing, so a run killed
midway leaves whole ranges done and the next run finishes the rest (it finds only grants
still open); the same run repeated finds nothing to do.
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

from kequn.loyalty.models import Allocation, LedgerEntry, Member
from kequn.security.actors import Actor
from kequn.security.audit import services as audit

ENTRY = LedgerEntry._meta.db_table
ALLOCATION = Allocation._meta.db_table
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
            "order_ref, created_at, created_by, remaining, held) "
            f"SELECT g.member_id, 'expire', -SUM(g.remaining), 0, %s || CAST(g.member_id AS TEXT), "
            f"'expired', 'expiry', '', %s, %s, 0, 0 FROM {ENTRY} g WHERE {OVERDUE} "
            "GROUP BY g.member_id",
            [prefix, now, by.get_username()[:150], *bounds],
        )
        cursor.execute(
            f"INSERT INTO {ALLOCATION} (entry_id, grant_id, points) "  # noqa: S608
            f"SELECT e.id, g.id, -g.remaining FROM {ENTRY} g JOIN {ENTRY} e "
            f"ON e.key = %s || CAST(g.member_id AS TEXT) WHERE {OVERDUE}",
            [prefix, *bounds],
        )
        result.grants = cursor.rowcount
        cursor.execute(
            f"UPDATE {MEMBER} SET balance = {MEMBER}.balance + e.points FROM {ENTRY} e "  # noqa: S608
            f"WHERE e.key = %s || CAST({MEMBER}.customer_id AS TEXT) "
            f"AND {MEMBER}.customer_id >= %s AND {MEMBER}.customer_id < %s",
            [prefix, low, high],
        )
        cursor.execute(
            f"UPDATE {ENTRY} SET remaining = 0 WHERE member_id >= %s AND member_id < %s "  # noqa: S608
            "AND remaining > 0 AND expires_at <= %s",
            bounds,
        )
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
    bounds = LedgerEntry.objects.filter(remaining__gt=0, expires_at__lte=now).aggregate(
        low=Min("member_id"), high=Max("member_id")
    )
    total = ExpiryResult()
    if bounds["low"] is None:
        return total
    low, high = bounds["low"], bounds["high"] + 1
    starts = range(low, high, range_size)
    with tqdm(total=len(starts), unit=" ranges", file=sys.stderr, disable=not progress) as bar:
        for start in starts:
            run = f"{now:%Y%m%d%H%M%S}-{uuid.uuid4().hex[:8]}"
            done = expire_range(start, min(start + range_size, high), now, run, by)
            total.members += done.members
            total.grants += done.grants
            total.points += done.points
            bar.update(1)
    return total
