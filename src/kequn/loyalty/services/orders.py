"""Points on orders: earned once per order (key ``order:<number>``), taken back on a refund.

Commerce calls :func:`earn_for_orders_listener` (registered as an order listener) with the
orders an import wrote, inside the writer's transaction; tier upgrades wait for the end of
the import (``tiers.run_tier_checks``, its run finisher). :func:`earn_for_orders` does the
same for order ids. It is set-based for the common case (new orders of members): a handful
of queries per batch, whatever its size.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import cast

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from kequn.commerce.hooks import is_writing_many_orders
from kequn.commerce.models import Order, OrderLine
from kequn.db import field_in, insert_columns, insert_objects
from kequn.db.lookups import to_array_literal
from kequn.events.models import Event
from kequn.loyalty.models import LedgerEntry, Member, Programme, TierChange
from kequn.loyalty.services.base import (
    compute_expiry,
    get_base_tier,
    get_programme,
    lock_member,
    new_member,
    skipping_row_checks,
)
from kequn.loyalty.services.ledger import reverse_locked
from kequn.loyalty.services.referrals import qualify_referrals
from kequn.loyalty.services.tiers import queue_tier_checks, upgrade_members
from kequn.security.actors import Actor
from kequn.security.audit import services as audit

Kind = LedgerEntry.Kind
PURCHASE = {str(s) for s in Order.PURCHASE_STATUSES}
TAKEN_BACK = {str(Order.Status.REFUNDED), str(Order.Status.CANCELLED)}


def earn_key(number: str) -> str:
    """Return the idempotency key of an order's points."""
    return f"order:{number}"


def compute_order_points(
    programme: Programme,
    total: Decimal,
    multiplier: Decimal,
    lines: list[tuple[Decimal, str]] | None = None,
    campaign: str = "",
) -> int:
    """Return an order's points: net paid × points per unit × tier, category and campaign multipliers."""
    base = Decimal(total) * programme.points_per_unit * multiplier
    categories = programme.category_multipliers or {}
    if lines and categories:
        line_total = sum((amount for amount, _code in lines), Decimal(0))
        if line_total > 0:
            weighted = sum(
                (amount * Decimal(str(categories.get(code, 1))) for amount, code in lines),
                Decimal(0),
            )
            base = base * weighted / line_total
    if campaign:
        base *= Decimal(str((programme.campaign_multipliers or {}).get(campaign, 1)))
    return max(0, int(base))


def _line_categories(order_ids: list[int]) -> dict[int, list[tuple[Decimal, str]]]:
    lines: dict[int, list[tuple[Decimal, str]]] = defaultdict(list)
    for order_id, amount, code, parent in OrderLine.objects.filter(
        field_in("order_id", order_ids)
    ).values_list(
        "order_id", "amount", "product__category__code", "product__category__parent__code"
    ):
        lines[order_id].append((amount, code or parent or ""))
    return lines


# One order as earning sees it: (order id or None, number, customer, status, total, ordered at).
OrderFacts = tuple[int | None, str, int, str, Decimal, datetime]


def earn_for_orders(order_ids: list[int], by: Actor, now: datetime | None = None) -> dict[str, int]:
    """Earn points on purchases and take them back on refunds; return what was done."""
    if not order_ids:
        return {"earned": 0, "points": 0, "reversed": 0, "enrolled": 0}
    orders = list(
        Order.objects.filter(field_in("pk", order_ids), customer_id__isnull=False).values_list(
            "pk", "number", "customer_id", "status", "total_amount", "ordered_at"
        )
    )
    return earn_for_facts(cast("list[OrderFacts]", orders), by, now)


def earn_for_facts(
    orders: list[OrderFacts], by: Actor, now: datetime | None = None
) -> dict[str, int]:
    """Earn (once per order number) or take back points for orders from any source."""
    done = {"earned": 0, "points": 0, "reversed": 0, "enrolled": 0}
    programme = get_programme()
    if not programme.is_active or not orders:
        return done
    now = now or timezone.now()
    # An order named twice in one batch (an event sent again) earns once: first one wins.
    purchases = list({earn_key(o[1]): o for o in reversed(orders) if o[3] in PURCHASE}.values())
    to_reverse = _find_unreversed([o for o in orders if o[3] in TAKEN_BACK])
    if not purchases and not to_reverse:
        return done
    customer_ids = sorted({o[2] for o in purchases} | {o[2] for o in to_reverse})
    # Plain rows, not model instances: building objects cost more than the import's own work.
    members = _lock_members(customer_ids)
    if programme.auto_enroll:
        tier = get_base_tier()
        fresh = [new_member(c, tier, now) for c in {o[2] for o in purchases} - members.keys()]
        if fresh:
            Member.objects.bulk_create(fresh, ignore_conflicts=True, batch_size=1000)
            if tier is not None:
                insert_objects(
                    TierChange,
                    [
                        TierChange(
                            member_id=m.customer_id, to_tier=tier, reason="enrolled", changed_at=now
                        )
                        for m in fresh
                    ],
                )
            members.update(_lock_members(sorted(m.customer_id for m in fresh)))
            done["enrolled"] = len(fresh)
    earns = _Earns(programme, now, members)
    earns.add(purchases)
    actor = by.get_username()[:150]
    try:
        # Most orders are new: insert without first asking which earned already (a tenth of
        # an import's loyalty work); a duplicate key undoes only the insert's savepoint.
        earns.insert(actor)
    except IntegrityError:
        # Some of these orders earned before (imported again, or sent as events): earn the rest.
        keys = [earn_key(o[1]) for o in purchases]
        earned = set(
            LedgerEntry.objects.filter(field_in("key", keys)).values_list("key", flat=True)
        )
        earns = _Earns(programme, now, members)
        earns.add([o for o in purchases if earn_key(o[1]) not in earned])
        earns.insert(actor)
    add_to_members(earns.deltas)
    done["earned"], done["points"] = earns.count, earns.points
    for _pk, number, customer_id, _status, _total, _at in to_reverse:
        grant = LedgerEntry.objects.get(key=earn_key(number))
        reverse_locked(
            lock_member(customer_id),
            grant,
            key=f"{earn_key(number)}:reverse",
            now=now,
            by=by,
            reason="order refunded or cancelled",
            source="order",
        )
        done["reversed"] += 1
    audit.record_event(
        audit.CHANGE, actor=by, target_type="loyalty.member", detail={"loyalty": "orders", **done}
    )
    earners = sorted(earns.deltas)
    if earners:
        if is_writing_many_orders():
            queue_tier_checks({i: members[i][2] for i in earners})
        else:
            ranks = {i: row[2] for i, row in members.items()}
            upgrade_members(earners, by=by, now=now, ranks=ranks)
        qualify_referrals(earners, by=by, now=now)
    return done


# A locked member as earning reads it: (balance, earn multiplier, rank of its tier).
MemberFacts = tuple[int, Decimal, int | None]


def _lock_members(customer_ids: list[int]) -> dict[int, MemberFacts]:
    """Lock the members among these customers; return balance, earn multiplier, tier rank."""
    return {
        customer_id: (balance, multiplier if multiplier is not None else Decimal(1), rank)
        for customer_id, balance, multiplier, rank in (
            Member.objects.select_for_update(of=("self",))
            .filter(field_in("customer_id", customer_ids))
            .order_by("customer_id")
            .values_list("customer_id", "balance", "tier__earn_multiplier", "tier__rank")
        )
    }


def _find_unreversed(taken_back: list[OrderFacts]) -> list[OrderFacts]:
    """Return the refunded or cancelled orders whose points were earned and not yet taken back."""
    if not taken_back:
        return []
    earned = dict(
        LedgerEntry.objects.filter(
            field_in("key", [earn_key(o[1]) for o in taken_back])
        ).values_list("key", "pk")
    )
    reversed_ids = set(
        LedgerEntry.objects.filter(field_in("reverses_id", list(earned.values()))).values_list(
            "reverses_id", flat=True
        )
    )
    return [
        o
        for o in taken_back
        if (pk := earned.get(earn_key(o[1]))) is not None and pk not in reversed_ids
    ]


class _Earns:
    """A batch's earn entries as columns, and what they add to each member."""

    NAMES = (
        "member", "points", "pending", "key", "order_ref", "available_at", "expires_at",
        "remaining", "held",
    )  # fmt: skip

    def __init__(
        self,
        programme: Programme,
        now: datetime,
        members: dict[int, MemberFacts],
    ) -> None:
        self.programme, self.now, self.members = programme, now, members
        # Running: a negative balance absorbs what is earned.
        self.balances = {customer_id: row[0] for customer_id, row in members.items()}
        self.columns: dict[str, list] = {name: [] for name in self.NAMES}
        self.deltas: dict[int, tuple[int, int]] = {}  # member -> (available, pending)
        self.count = self.points = 0

    def add(self, orders: list[OrderFacts]) -> None:
        """Add the entries the orders of members earn."""
        programme, now, columns = self.programme, self.now, self.columns
        lines = (
            _line_categories([o[0] for o in orders if o[0] is not None])
            if programme.category_multipliers
            else {}
        )
        pending_delay = timedelta(days=programme.pending_days)
        zone = timezone.get_current_timezone()
        for pk, number, customer_id, _status, total, ordered_at in orders:
            if customer_id not in self.balances:
                continue  # not a member and no automatic enrolment
            points = compute_order_points(
                programme,
                total,
                self.members[customer_id][1],
                lines.get(pk) if pk is not None else None,
            )
            if points <= 0:
                continue
            available_at = ordered_at + pending_delay
            if available_at > now:
                row = (0, points, 0, points)  # points, pending, remaining, held
            else:
                balance = self.balances[customer_id]
                row = (points, 0, max(0, points + min(0, balance)), 0)
                self.balances[customer_id] = balance + points
            for name, value in zip(("points", "pending", "remaining", "held"), row, strict=True):
                columns[name].append(value)
            columns["member"].append(customer_id)
            columns["key"].append(earn_key(number))
            columns["order_ref"].append(number[:64])
            columns["available_at"].append(available_at)
            columns["expires_at"].append(compute_expiry(programme, available_at, zone))
            old = self.deltas.get(customer_id, (0, 0))
            self.deltas[customer_id] = (old[0] + row[0], old[1] + row[1])
            self.count += 1
            self.points += points

    def insert(self, actor: str) -> None:
        """Write the entries with the importers' bulk writer (no model objects), in a savepoint.

        Every entry names a member locked by the caller: their foreign-key checks are skipped
        (the savepoint also undoes that setting when the insert fails).
        """
        if not self.count:
            return
        connection = transaction.get_connection()
        adapt = connection.ops.adapt_datetimefield_value  # the values are aware datetimes
        columns = dict(self.columns)
        for name in ("available_at", "expires_at"):
            columns[name] = [adapt(v) for v in columns[name]]
        with transaction.atomic(), connection.cursor() as cursor, skipping_row_checks(cursor):
            insert_columns(
                LedgerEntry,
                columns,
                fixed={
                    "kind": str(Kind.EARN),
                    "reason": "",
                    "source": "order",
                    "reverses": None,
                    "created_at": self.now,
                    "created_by": actor,
                    "expired": 0,
                },
            )


def add_to_members(deltas: dict[int, tuple[int, int]], chunk: int = 500) -> None:
    """Add (balance, pending) deltas to locked members in a few set-based UPDATEs.

    Django's bulk_update writes a CASE per row and costs more than the import it follows.
    PostgreSQL gets the three columns as arrays (one statement, three parameters); SQLite
    an UPDATE ... FROM (VALUES) a chunk.
    """
    items = sorted(deltas.items())
    if not items:
        return
    table = Member._meta.db_table
    head = (
        f"UPDATE {table} SET balance = {table}.balance + v.points, "  # noqa: S608 -- our table name, values bound
        f"pending = {table}.pending + v.pending FROM "
    )
    tail = f" WHERE {table}.customer_id = v.id"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            columns = [
                to_array_literal(list(c))
                for c in zip(*((i, p, q) for i, (p, q) in items), strict=True)
            ]
            cursor.execute(
                head + "unnest(CAST(%s AS BIGINT[]), CAST(%s AS BIGINT[]), CAST(%s AS BIGINT[])) "
                "AS v(id, points, pending)" + tail,
                columns,
            )
            return
        for start in range(0, len(items), chunk):
            part = items[start : start + chunk]
            values = ", ".join(["(%s, %s, %s)"] * len(part))
            cursor.execute(
                head + "(SELECT column1 AS id, column2 AS points, column3 AS pending "  # noqa: S608 -- placeholders only
                f"FROM (VALUES {values})) AS v" + tail,
                [x for member_id, (points, pending) in part for x in (member_id, points, pending)],
            )


def earn_for_orders_listener(orders: list[Order], by: Actor) -> None:
    """The commerce order listener: earn (or take back) points in the writer's transaction."""
    facts = [
        (o.pk, o.number, o.customer_id, str(o.status), o.total_amount, o.ordered_at)
        for o in orders
        if o.customer_id is not None
    ]
    with transaction.atomic():
        earn_for_facts(cast("list[OrderFacts]", facts), by)


ORDER_EVENTS = {
    "Order Completed": str(Order.Status.COMPLETED),
    "Order Refunded": str(Order.Status.REFUNDED),
    "Order Cancelled": str(Order.Status.CANCELLED),
}


def _event_facts(event: Event) -> OrderFacts | None:
    """Return an order event's facts (Segment's order_id is the shop's order number), or None."""
    properties = event.properties if isinstance(event.properties, dict) else {}
    number = str(properties.get("order_id") or "").strip()[:64]
    if not number or event.customer_id is None:
        return None
    raw = properties.get("total", properties.get("revenue", 0))
    try:
        total = Decimal(str(raw if raw is not None else 0))
    except ArithmeticError:
        return None  # a total that is not a number earns nothing (the event stays as it is)
    if not total.is_finite() or total < 0:
        return None
    return (None, number, event.customer_id, ORDER_EVENTS[event.name], total, event.occurred_at)


def earn_for_order_events(
    *, by: Actor, now: datetime | None = None, batch_size: int = 1000
) -> dict[str, int]:
    """Earn on "Order Completed" events sent through the event API; take back on refunds.

    Reads the events after the programme's cursor, a batch per transaction, and earns under
    the same key as an imported order of that number (``order:<order_id>``): an order sent
    twice, or both sent and imported, earns once.
    """
    total = {"events": 0, "earned": 0, "points": 0, "reversed": 0, "enrolled": 0}
    programme = get_programme()
    if not programme.is_active:
        return total
    while True:
        with transaction.atomic():
            cursor = (
                Programme.objects.select_for_update().filter(pk=programme.pk).first() or programme
            )
            events = list(
                Event.objects.filter(
                    pk__gt=cursor.events_cursor, name__in=list(ORDER_EVENTS), type="track"
                )
                .only("pk", "name", "customer_id", "properties", "occurred_at")
                .order_by("pk")[:batch_size]
            )
            if not events:
                return total
            facts = [f for f in map(_event_facts, events) if f is not None]
            # Earn first, then take back: a refund in the same batch finds its earn.
            for part in (
                [f for f in facts if f[3] in PURCHASE],
                [f for f in facts if f[3] in TAKEN_BACK],
            ):
                for name, value in earn_for_facts(part, by, now).items():
                    total[name] += value
            Programme.objects.filter(pk=cursor.pk).update(events_cursor=events[-1].pk)
            total["events"] += len(events)
