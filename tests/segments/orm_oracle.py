"""A second compiler of segment rules, to the Django ORM (Q with Exists/Subquery): a test oracle.

Kequn evaluates rules with one SQL generator (kequn.segments.sqlgen). This independent
translation, written condition by condition against the models, checks that the generated SQL
selects the same customers (tests/segments/test_rules.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import (
    BooleanField,
    Count,
    DecimalField,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    LessThan,
    LessThanOrEqual,
)
from django.utils import timezone

from kequn.commerce.models import Category, Order, OrderLine
from kequn.customers.models import Consent, Customer, CustomerTag, Tag
from kequn.events.models import Event
from kequn.segments.models import SegmentMember
from kequn.segments.rules import FIELDS, ROOT, RuleError

VIEW_EVENT = "Product Viewed"


@dataclass
class Context:
    """What compiling needs besides the rule: today's date and other segments' rules."""

    now: datetime
    lookup: Any = None  # rules.SegmentLookup
    stack: tuple[int, ...] = field(default_factory=tuple)

    @property
    def today(self) -> date:
        return timezone.localtime(self.now).date()


def make_context(now: datetime | None = None, lookup=None) -> Context:
    """Return a compile context for the given moment (default: now)."""
    return Context(now=now or timezone.now(), lookup=lookup)


def local_midnight_utc(day: date) -> datetime:
    """Return the UTC instant at which a local calendar day starts."""
    aware = timezone.make_aware(datetime.combine(day, time.min))
    return aware.astimezone(UTC)


def resolve_category_ids(codes: Iterable[str]) -> list[int]:
    """Return the ids of the categories with these codes and of all their descendants."""
    rows = list(Category.objects.values_list("id", "parent_id", "code"))
    children: dict[int | None, list[int]] = {}
    for cid, parent, _code in rows:
        children.setdefault(parent, []).append(cid)
    todo = [cid for cid, _p, code in rows if code in set(codes)]
    found: set[int] = set()
    while todo:
        cid = todo.pop()
        if cid not in found:
            found.add(cid)
            todo.extend(children.get(cid, []))
    return sorted(found)


def resolve_tag_ids(path: str, values: list) -> list[int]:
    """Return tag ids for ids or names; an unknown tag is a RuleError naming the path."""
    ids = {v for v in values if isinstance(v, int)}
    names = {v for v in values if isinstance(v, str)}
    found_ids = set(Tag.objects.filter(pk__in=ids).values_list("pk", flat=True))
    by_name: dict[str, list[int]] = {}
    for pk, name in Tag.objects.filter(name__in=names).values_list("pk", "name"):
        by_name.setdefault(name, []).append(pk)
    missing = [repr(v) for v in values if v not in found_ids and v not in by_name]
    if missing:
        raise RuleError([f"{path}: unknown tag {', '.join(missing)}"])
    return sorted(found_ids | {pk for pks in by_name.values() for pk in pks})


def _compare(expr, op: str, value) -> Q:
    if op == "between":
        return Q(GreaterThanOrEqual(expr, value[0])) & Q(LessThanOrEqual(expr, value[1]))
    if op == "ne":
        return ~Q(Exact(expr, value))
    lookup = {
        "eq": Exact,
        "gt": GreaterThan,
        "gte": GreaterThanOrEqual,
        "lt": LessThan,
        "lte": LessThanOrEqual,
    }[op]
    return Q(lookup(expr, value))


def _column(column: str, op: str, value) -> Q:
    match op:
        case "eq":
            return Q(**{column: value})
        case "ne":
            return ~Q(**{column: value})
        case "in":
            return Q(**{f"{column}__in": value})
        case "not_in":
            return ~Q(**{f"{column}__in": value})
        case "contains":
            return Q(**{f"{column}__icontains": value})
        case "starts_with":
            return Q(**{f"{column}__istartswith": value})
        case "gt" | "gte" | "lt" | "lte":
            return Q(**{f"{column}__{op}": value})
        case "between":
            return Q(**{f"{column}__gte": value[0], f"{column}__lte": value[1]})
    raise AssertionError(op)


def _empty(column: str, text: bool) -> Q:
    q = Q(**{f"{column}__isnull": True})
    return q | Q(**{column: ""}) if text else q


def _age(op: str, value, today: date) -> Q:
    # Age is counted by birth year (the age reached this calendar year): only the year is
    # stored in clear, the birthday itself is encrypted.
    def born_in(n) -> int:
        return today.year - int(n)

    match op:
        case "gte":
            return Q(birth_year__lte=born_in(value))
        case "gt":
            return Q(birth_year__lt=born_in(value))
        case "lt":
            return Q(birth_year__gt=born_in(value))
        case "lte":
            return Q(birth_year__gte=born_in(value))
        case "eq":
            return Q(birth_year=born_in(value))
        case "ne":
            return Q(birth_year__isnull=False) & ~Q(birth_year=born_in(value))
        case "between":
            return Q(birth_year__gte=born_in(value[1]), birth_year__lte=born_in(value[0]))
    raise AssertionError(op)


def _date(column: str, op: str, value, ctx: Context, is_datetime: bool) -> Q:
    def bound(text: str, next_day: bool = False):
        day = date.fromisoformat(text) + timedelta(days=1 if next_day else 0)
        return local_midnight_utc(day) if is_datetime else day

    match op:
        case "before":
            return Q(**{f"{column}__lt": bound(value)})
        case "after":
            return Q(**{f"{column}__gte": bound(value, next_day=True)})
        case "between":
            return Q(**{f"{column}__gte": bound(value[0]), f"{column}__lt": bound(value[1], True)})
        case "within_days" | "not_within_days":
            since = ctx.now - timedelta(days=value) if is_datetime else ctx.today - timedelta(value)
            q = Q(**{f"{column}__gte": since})
            return q if op == "within_days" else ~q
        case "is_empty":
            return Q(**{f"{column}__isnull": True})
    raise AssertionError(op)


def _purchases(ctx: Context, days: int | None) -> QuerySet:
    orders = Order.objects.filter(customer=OuterRef("pk"), status__in=Order.PURCHASE_STATUSES)
    if days:
        orders = orders.filter(ordered_at__gte=ctx.now - timedelta(days=days))
    return orders


def _purchase_lines(ctx: Context, days: int | None) -> QuerySet:
    lines = OrderLine.objects.filter(
        order__customer=OuterRef("pk"), order__status__in=Order.PURCHASE_STATUSES
    )
    if days:
        lines = lines.filter(order__ordered_at__gte=ctx.now - timedelta(days=days))
    return lines


def _order_aggregate(ctx: Context, days: int | None, spend: bool):
    orders = _purchases(ctx, days).order_by().values("customer")
    if spend:
        out = DecimalField(max_digits=16, decimal_places=2)
        agg = orders.annotate(v=Sum("total_amount")).values("v")
        return Coalesce(Subquery(agg, output_field=out), Value(Decimal(0)), output_field=out)
    agg = orders.annotate(v=Count("id")).values("v")
    return Coalesce(Subquery(agg, output_field=IntegerField()), Value(0))


def _last_order(op: str, value, ctx: Context) -> Q:
    if op == "is_empty":
        return ~Exists(_purchases(ctx, None))
    if op in ("within_days", "not_within_days"):
        q = Exists(_purchases(ctx, value))
        return Q(q) if op == "within_days" else ~q

    def from_day(text: str, next_day: bool = False):
        day = date.fromisoformat(text) + timedelta(days=1 if next_day else 0)
        return _purchases(ctx, None).filter(ordered_at__gte=local_midnight_utc(day))

    anything = Exists(_purchases(ctx, None))
    if op == "before":  # the latest purchase is before the day: none on or after it
        return Q(anything) & ~Exists(from_day(value))
    if op == "after":
        return Q(Exists(from_day(value, next_day=True)))
    # between: a purchase on or after the first day, none after the last day
    return Q(Exists(from_day(value[0]))) & ~Exists(from_day(value[1], next_day=True))


def _latest_consent(channel: str, purpose: str):
    latest = (
        Consent.objects.filter(customer=OuterRef("pk"), channel=channel, purpose=purpose)
        .order_by("-recorded_at", "-id")
        .values("granted")[:1]
    )
    return Coalesce(Subquery(latest, output_field=BooleanField()), Value(False))


def _condition(cond: dict, path: str, ctx: Context) -> Q:
    name, op, value = cond["field"], cond["operator"], cond.get("value")
    spec = FIELDS[name]
    days = cond.get("days")
    if spec.kind in ("text", "choice") and spec.column:
        if op == "is_empty":
            return _empty(spec.column, True)
        if op == "is_not_empty":
            return ~_empty(spec.column, True)
        return _column(spec.column, op, value)
    if name == "age":
        if op in ("is_empty", "is_not_empty"):
            q = Q(birth_year__isnull=True)
            return q if op == "is_empty" else ~q
        return _age(op, value, ctx.today)
    if spec.kind == "date" and spec.column:
        return _date(spec.column, op, value, ctx, is_datetime=name == "created_at")
    if spec.kind == "number" and spec.column:
        if op in ("is_empty", "is_not_empty"):
            q = Q(**{f"{spec.column}__isnull": True})
            return q if op == "is_empty" else ~q
        if op == "ne":
            return ~Q(**{spec.column: value})
        return _column(spec.column, op, value)
    if name in ("order_count", "spend"):
        if op in ("is_empty", "is_not_empty"):
            q = Exists(_purchases(ctx, days))
            return ~q if op == "is_empty" else Q(q)
        expr = _order_aggregate(ctx, days, spend=name == "spend")
        if name == "spend":
            value = [Decimal(str(v)) for v in value] if op == "between" else Decimal(str(value))
        return _compare(expr, op, value)
    if name == "last_order":
        return _last_order(op, value, ctx)
    if name == "bought_product":
        q = Exists(_purchase_lines(ctx, days).filter(product__sku__in=value))
        return Q(q) if op == "any_of" else ~q
    if name == "bought_category":
        ids = resolve_category_ids(value)
        q = Exists(_purchase_lines(ctx, days).filter(product__category_id__in=ids))
        return Q(q) if op == "any_of" else ~q
    if name == "event":
        q = Exists(_events(ctx, days).filter(name__in=value))
        return Q(q) if op == "any_of" else ~q
    if name == "browsed_not_bought":
        q = Q(Exists(_events(ctx, days).filter(name=VIEW_EVENT))) & ~Exists(_purchases(ctx, days))
        return q if value else ~q
    if name == "tag":
        ids = resolve_tag_ids(path, value)
        links = CustomerTag.objects.filter(customer=OuterRef("pk"))
        if op == "all_of":
            q = Q()
            for tag_id in ids:
                q &= Exists(links.filter(tag_id=tag_id))
            return q
        q = Exists(links.filter(tag_id__in=ids))
        return Q(q) if op == "any_of" else ~q
    if name == "consent":
        q = Q(Exact(_latest_consent(cond["channel"], cond["purpose"]), True))
        return q if value else ~q
    if name == "in_segment":
        q = _in_segment(path, value, ctx)
        return q if op == "in" else ~q
    raise AssertionError(name)


def _events(ctx: Context, days: int | None) -> QuerySet:
    events = Event.objects.filter(customer=OuterRef("pk"))
    if days:
        events = events.filter(occurred_at__gte=ctx.now - timedelta(days=days))
    return events


def _in_segment(path: str, segment_id: int, ctx: Context) -> Q:
    if segment_id in ctx.stack:
        raise RuleError([f"{path}: cycle: segment refers to itself"])
    target = ctx.lookup(segment_id) if ctx.lookup else None
    if target is None:
        raise RuleError([f"{path}: segment #{segment_id} does not exist"])
    rule, dynamic = target
    if dynamic:
        # Inline the other rule so the result is live, not as of its last refresh.
        inner = Context(now=ctx.now, lookup=ctx.lookup, stack=(*ctx.stack, segment_id))
        return _group(rule, ROOT, inner)
    members = SegmentMember.objects.filter(segment_id=segment_id, customer=OuterRef("pk"))
    return Q(Exists(members))


def _group(node: dict, path: str, ctx: Context) -> Q:
    parts = []
    for i, child in enumerate(node["conditions"]):
        child_path = f"{path}.conditions[{i}]"
        if "conditions" in child:
            parts.append(_group(child, child_path, ctx))
        else:
            parts.append(_condition(child, child_path, ctx))
    q = parts[0]
    for part in parts[1:]:
        q = q | part if node.get("match", "all") == "any" else q & part
    return ~q if node.get("negate") else q


def compile_rule(rule: dict, ctx: Context) -> Q:
    """Return the Q object selecting customers that match a validated rule."""
    return _group(rule, ROOT, ctx)


def select_customers(rule: dict, ctx: Context) -> QuerySet:
    """Return the live (not merged) customers matching a validated rule."""
    # Restricted customers (data-subject request) are never segment members.
    live = Customer.objects.filter(merged_into__isnull=True, processing_restricted=False)
    return live.filter(compile_rule(rule, ctx))
