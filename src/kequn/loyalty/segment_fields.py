"""Segment rule fields on loyalty: member, tier, points balance, points expiring, coupons used."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils.translation import gettext_lazy as _

from kequn.segments.rules import register_rule_field
from kequn.segments.sqlgen import format_ts

EXPIRING_DAYS = 30


def _member(days: int | None, now: datetime) -> tuple[str, tuple[Any, ...]]:
    return "EXISTS (SELECT 1 FROM loyalty_member m WHERE m.customer_id = c.id)", ()


def _tier(days: int | None, now: datetime) -> tuple[str, tuple[Any, ...]]:
    return (
        "SELECT t.code FROM loyalty_member m JOIN loyalty_tier t ON t.id = m.tier_id "
        "WHERE m.customer_id = c.id",
        (),
    )


def _balance(days: int | None, now: datetime) -> tuple[str, tuple[Any, ...]]:
    return "COALESCE((SELECT m.balance FROM loyalty_member m WHERE m.customer_id = c.id), 0)", ()


def _expiring(days: int | None, now: datetime) -> tuple[str, tuple[Any, ...]]:
    until = now + timedelta(days=days or EXPIRING_DAYS)
    return (
        "COALESCE((SELECT SUM(g.remaining) FROM loyalty_ledgerentry g WHERE g.member_id = c.id "
        "AND g.remaining > 0 AND g.expires_at > %s AND g.expires_at <= %s), 0)",
        (format_ts(now), format_ts(until)),
    )


def _coupons_used(days: int | None, now: datetime) -> tuple[str, tuple[Any, ...]]:
    since = " AND k.used_at >= %s" if days else ""
    return (
        f"SELECT COUNT(*) FROM loyalty_coupon k WHERE k.member_id = c.id AND k.status = 'used'{since}",  # noqa: S608 -- no value in the text: the date is bound
        (format_ts(now - timedelta(days=days)),) if days else (),
    )


def register_segment_fields() -> None:
    """Add the loyalty fields to the segment rule builder."""
    register_rule_field(
        "loyalty_member",
        kind="bool",
        sql=_member,
        label=_("is a loyalty member"),
        group="loyalty",
        group_label=_("Loyalty"),
    )
    register_rule_field(
        "loyalty_tier",
        kind="text",
        sql=_tier,
        label=_("loyalty tier (code)"),
        operators=("eq", "ne", "in", "not_in", "is_empty", "is_not_empty"),
        group="loyalty",
        group_label=_("Loyalty"),
    )
    register_rule_field(
        "loyalty_points",
        kind="number",
        sql=_balance,
        label=_("points balance"),
        group="loyalty",
        group_label=_("Loyalty"),
    )
    register_rule_field(
        "loyalty_points_expiring",
        kind="number",
        sql=_expiring,
        window=True,
        label=_("points expiring within … days (30 if empty)"),
        group="loyalty",
        group_label=_("Loyalty"),
    )
    register_rule_field(
        "loyalty_coupons_used",
        kind="number",
        sql=_coupons_used,
        window=True,
        label=_("coupons used"),
        group="loyalty",
        group_label=_("Loyalty"),
    )
