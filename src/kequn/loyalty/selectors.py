"""Loyalty reads: a member's summary, points expiring soon, the reconciliation, dashboard figures."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Q, Sum
from django.utils import timezone

from kequn.commerce.models import Order
from kequn.loyalty.models import (
    Coupon,
    LedgerEntry,
    Member,
    Programme,
    Redemption,
    Tier,
    open_grants_q,
)

EXPIRING_DAYS = 30


def get_programme_or_none() -> Programme | None:
    """Return the programme's rules if they were ever set up (reads never create them)."""
    return Programme.objects.order_by("pk").first()


def get_member(customer_id: int) -> Member | None:
    """Return a member with its tier, or None."""
    return Member.objects.select_related("tier").filter(customer_id=customer_id).first()


def get_expiring(
    customer_id: int, days: int = EXPIRING_DAYS, now: datetime | None = None
) -> list[dict]:
    """Return the member's available points by expiry date within `days` (earliest first)."""
    now = now or timezone.now()
    rows = (
        LedgerEntry.objects.filter(
            open_grants_q(), member_id=customer_id, expires_at__lte=now + timedelta(days=days)
        )
        .values("expires_at")
        .annotate(points=Sum("remaining"))
        .order_by("expires_at")
    )
    return [{"expires_at": r["expires_at"], "points": int(r["points"])} for r in rows]


def summarise_member(member: Member, now: datetime | None = None) -> dict[str, Any]:
    """Return balance, pending, tier and points expiring soon of one member."""
    expiring = get_expiring(member.customer_id, now=now)
    return {
        "id": member.customer_id,
        "customer_id": member.customer_id,
        "tier": member.tier.code if member.tier else None,
        "tier_name": member.tier.name if member.tier else None,
        "tier_since": member.tier_since,
        "balance": member.balance,
        "pending": member.pending,
        "expiring_points": sum(e["points"] for e in expiring),
        "next_expiry": expiring[0]["expires_at"] if expiring else None,
        "expiring": expiring,
        "referral_code": member.referral_code,
        "joined_at": member.joined_at,
    }


@dataclass
class Difference:
    customer_id: int
    stored_balance: int
    ledger_balance: int
    stored_pending: int
    ledger_pending: int
    open_grants: int

    def describe(self) -> str:
        """Return one line naming the member and what differs."""
        return (
            f"member {self.customer_id}: stored balance {self.stored_balance}, ledger "
            f"{self.ledger_balance}; stored pending {self.stored_pending}, ledger "
            f"{self.ledger_pending}; unspent in grants {self.open_grants}"
        )


def find_differences(batch_size: int = 5000) -> Iterator[Difference]:
    """Yield every member whose stored balance or pending differs from the ledger's sums.

    Also checked: the unspent points of the open grants equal the balance (0 when negative).
    """
    last = 0
    while True:
        members = list(
            Member.objects.filter(customer_id__gt=last)
            .order_by("customer_id")
            .values_list("customer_id", "balance", "pending")[:batch_size]
        )
        if not members:
            return
        ids = [m[0] for m in members]
        sums = {
            r["member_id"]: r
            for r in LedgerEntry.objects.filter(member_id__in=ids)
            .values("member_id")
            .annotate(
                points=Sum("points"),
                pending=Sum("pending"),
                remaining=Sum("remaining", filter=open_grants_q()),
            )
        }
        for customer_id, balance, pending in members:
            row: dict[str, Any] = dict(sums.get(customer_id) or {})
            ledger, held, remaining = (
                int(row.get(k) or 0) for k in ("points", "pending", "remaining")
            )
            if ledger != balance or held != pending or remaining != max(balance, 0):
                yield Difference(customer_id, balance, ledger, pending, held, remaining)
        last = ids[-1]


def count_repeat_buyers() -> dict[bool, list[int]]:
    """Return {member?: [buyers, buyers with more than one purchase]} in one query.

    The database groups the orders by customer and then by membership, so a page showing
    the figures reads two rows, not one per buyer.
    """
    orders, members = Order._meta.db_table, Member._meta.db_table
    statuses = [str(s) for s in Order.PURCHASE_STATUSES]
    marks = ", ".join(["%s"] * len(statuses))
    counts = {True: [0, 0], False: [0, 0]}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT CASE WHEN m.customer_id IS NULL THEN 0 ELSE 1 END, COUNT(*), "  # noqa: S608 -- our tables
            "SUM(CASE WHEN b.n > 1 THEN 1 ELSE 0 END) FROM (SELECT customer_id, COUNT(*) AS n "
            f"FROM {orders} WHERE customer_id IS NOT NULL AND status IN ({marks}) "
            f"GROUP BY customer_id) b LEFT JOIN {members} m ON m.customer_id = b.customer_id "
            "GROUP BY CASE WHEN m.customer_id IS NULL THEN 0 ELSE 1 END",
            statuses,
        )
        for member, buyers, repeat in cursor.fetchall():
            counts[bool(member)] = [int(buyers), int(repeat or 0)]
    return counts


def compute_dashboard(now: datetime | None = None) -> dict[str, Any]:
    """Return the loyalty figures of the dashboard (the lead wires them into its page).

    members, tier mix, points liability (outstanding points × value of a point), redemption
    rate (points spent / points that became available), breakage rate (points expired / points
    that became available), and the repeat-purchase rate of members against non-members.
    """
    now = now or timezone.now()
    programme = get_programme_or_none()
    value = programme.point_value if programme else Decimal("0.01")
    totals = Member.objects.aggregate(n=Count("pk"), balance=Sum("balance"), pending=Sum("pending"))
    tiers = {t.pk: t for t in Tier.objects.all()}
    mix = [
        {
            "tier": tiers[r["tier"]].code if r["tier"] in tiers else None,
            "name": tiers[r["tier"]].name if r["tier"] in tiers else "",
            "members": r["n"],
        }
        for r in Member.objects.values("tier").annotate(n=Count("pk")).order_by("tier")
    ]
    flows = dict(
        LedgerEntry.objects.values_list("kind")
        .annotate(total=Sum("points"))
        .values_list("kind", "total")
    )
    issued = (
        int(flows.get("earn") or 0) + int(flows.get("release") or 0) + int(flows.get("adjust") or 0)
    )
    spent = -int(flows.get("spend") or 0)
    expired = -int(flows.get("expire") or 0)
    outstanding = int(totals["balance"] or 0)
    counts = count_repeat_buyers()
    return {
        "members": int(totals["n"] or 0),
        "tier_mix": mix,
        "points_outstanding": outstanding,
        "points_pending": int(totals["pending"] or 0),
        "points_liability": (Decimal(max(outstanding, 0)) * value).quantize(Decimal("0.01")),
        "redemption_rate": spent / issued if issued else None,
        "breakage_rate": expired / issued if issued else None,
        "redemptions": Redemption.objects.filter(status=Redemption.Status.DONE).count(),
        "coupons_used": Coupon.objects.filter(status=Coupon.Status.USED).count(),
        "repeat_rate_members": counts[True][1] / counts[True][0] if counts[True][0] else None,
        "repeat_rate_non_members": counts[False][1] / counts[False][0]
        if counts[False][0]
        else None,
        "as_of": now,
    }


DASHBOARD_KEY = "kequn:loyalty:dashboard"
# Kept a day and a bit: the nightly job and the dashboard refresh store new figures, so the
# page reads them and never sums the whole ledger or scans the orders itself.
DASHBOARD_SECONDS = 26 * 3600


def read_dashboard() -> dict[str, Any]:
    """Return the stored dashboard figures, computing and storing them when there are none."""
    figures = cache.get_or_set(DASHBOARD_KEY, compute_dashboard, DASHBOARD_SECONDS)
    return figures if figures is not None else compute_dashboard()


def store_dashboard(now: datetime | None = None) -> dict[str, Any]:
    """Compute the dashboard figures now and store them for the page to read."""
    figures = compute_dashboard(now)
    cache.set(DASHBOARD_KEY, figures, DASHBOARD_SECONDS)
    return figures


def filter_coupons(customer_id: int | None = None, status: str | None = None) -> Any:
    """Return coupons, optionally of one customer or status."""
    qs = Coupon.objects.select_related("reward")
    if customer_id:
        qs = qs.filter(member_id=customer_id)
    if status:
        qs = qs.filter(status=status)
    return qs


def count_coupons_used(customer_id: int) -> int:
    """Return how many coupons a customer used."""
    return Coupon.objects.filter(Q(member_id=customer_id) & Q(status=Coupon.Status.USED)).count()
