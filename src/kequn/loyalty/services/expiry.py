"""The nightly expiry: set-based SQL over ranges of members, one transaction per range.

A year-end run can expire half the ledger, and rewriting ten million grant rows is most of
what such a night costs. So the run writes no grant: each range locks the members with
overdue grants, writes one expire entry per member (INSERT … SELECT, keyed by the run and
the member) and takes the sums off the stored balances while marking each member with the
run's time and the last ledger id it read (``expired_through``, ``expired_upto_entry``). A
grant under its member's mark counts as expired (``models.open_grants_q``); the member's
next write moves the grants' ``remaining`` to ``expired`` and clears the mark
(``base.settle_expired``). Grants written after the run started (a back-dated import)
lie above the mark, so the next run finds them. A range is all or nothing, so a run killed
midway leaves whole ranges done and the next run finishes the rest; the same run repeated
finds nothing to do.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone
from tqdm import tqdm

from kequn.db import insert_columns
from kequn.loyalty.models import LedgerEntry, Member
from kequn.loyalty.services.base import skipping_row_checks
from kequn.security.actors import Actor
from kequn.security.audit import services as audit

ENTRY = LedgerEntry._meta.db_table
MEMBER = Member._meta.db_table
# Grants of member m (in the range) overdue at the run's time, read by the run, not yet
# under m's mark. Parameters: low, high, now, the run's last entry id.
OVERDUE = (
    "g.member_id >= %s AND g.member_id < %s AND g.remaining > 0 AND g.expires_at <= %s "
    "AND g.id <= %s AND (m.expired_through IS NULL OR g.expires_at > m.expired_through "
    "OR g.id > m.expired_upto_entry)"
)
# Zero-padded member ids keep a range's expire entries one range of the unique key index.
KEY_DIGITS = 12
MAX_WORKERS = 4


@dataclass
class ExpiryResult:
    members: int = 0
    grants: int = 0
    points: int = 0


def expire_range(
    low: int, high: int, now: datetime, run: str, upto: int, by: Actor
) -> ExpiryResult:
    """Expire the overdue grants of members low <= id < high (one transaction)."""
    prefix = f"expire:{run}:"
    bounds: list[Any] = [low, high, now, upto]
    result = ExpiryResult()
    with transaction.atomic(), connection.cursor() as cursor:
        lock = " FOR UPDATE" if connection.vendor == "postgresql" else ""
        cursor.execute(
            f"SELECT m.customer_id FROM {MEMBER} m WHERE m.customer_id >= %s "  # noqa: S608 -- table names are ours
            f"AND m.customer_id < %s AND EXISTS (SELECT 1 FROM {ENTRY} g WHERE "
            f"g.member_id = m.customer_id AND {OVERDUE}) ORDER BY m.customer_id{lock}",
            [low, high, *bounds],
        )
        if not cursor.fetchall():
            return result
        # Read after the locks: a spend that committed meanwhile is seen (READ COMMITTED).
        cursor.execute(
            f"SELECT g.member_id, SUM(g.remaining), COUNT(*) FROM {ENTRY} g "  # noqa: S608
            f"JOIN {MEMBER} m ON m.customer_id = g.member_id AND m.customer_id >= %s "
            f"AND m.customer_id < %s WHERE {OVERDUE} GROUP BY g.member_id ORDER BY g.member_id",
            [low, high, *bounds],
        )
        rows = cursor.fetchall()
        if not rows:  # what was overdue was spent before the lock was ours
            return ExpiryResult()
        members, points, grants = zip(*rows, strict=True)
        result.members, result.points, result.grants = len(rows), int(sum(points)), int(sum(grants))
        with skipping_row_checks(cursor):
            insert_columns(
                LedgerEntry,
                {
                    "member": list(members),
                    "points": [-int(p) for p in points],
                    "key": [prefix + str(m).zfill(KEY_DIGITS) for m in members],
                },
                fixed={
                    "kind": str(LedgerEntry.Kind.EXPIRE),
                    "pending": 0,
                    "reason": "expired",
                    "source": "expiry",
                    "order_ref": "",
                    "reverses": None,
                    "created_at": now,
                    "created_by": by.get_username()[:150],
                    "remaining": 0,
                    "held": 0,
                    "expired": 0,
                },
            )
        keys = [prefix + str(low).zfill(KEY_DIGITS), prefix + str(high).zfill(KEY_DIGITS)]
        cursor.execute(
            f"UPDATE {MEMBER} SET balance = {MEMBER}.balance + e.points, "  # noqa: S608
            "expired_through = %s, expired_upto_entry = %s "
            f"FROM (SELECT member_id, points FROM {ENTRY} WHERE key >= %s AND key < %s) e "
            f"WHERE {MEMBER}.customer_id = e.member_id",
            [now, upto, *keys],
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


def map_ranges(
    work: Callable[[int], ExpiryResult], starts: Sequence[int]
) -> Iterator[ExpiryResult]:
    """Run `work` on each range start, on as many PostgreSQL connections as there are cores.

    The ranges share no member, so they never wait on each other's locks; the database does
    the work, so the threads overlap. SQLite writes one transaction at a time, and a caller
    inside a transaction (a test) must see its own rows: both get one range after another.
    """
    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    if connection.vendor != "postgresql" or connection.in_atomic_block or workers < 2:
        yield from map(work, starts)
        return

    def run_and_close(start: int) -> ExpiryResult:
        try:
            return work(start)
        finally:
            connection.close()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(run_and_close, starts)


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
    # Grants written after this point (by imports running beside the night) wait for the
    # next run: the mark says how far this one read.
    upto = LedgerEntry.objects.aggregate(last=Max("id"))["last"] or 0

    def expire_one(start: int) -> ExpiryResult:
        return expire_range(start, min(start + range_size, high), now, run, upto, by)

    with tqdm(total=len(starts), unit=" ranges", file=sys.stderr, disable=not progress) as bar:
        for done in map_ranges(expire_one, starts):
            total.members += done.members
            total.grants += done.grants
            total.points += done.points
            bar.update(1)
    return total
