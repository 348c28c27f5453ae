"""Loyalty's journey triggers and steps, and its merge fields for message content.

Journeys (and engage) sit below loyalty: loyalty registers with their registries here, from
``LoyaltyConfig.ready()``, and fires its triggers through ``journeys.services.fire_trigger``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from kequn.loyalty.models import LedgerEntry, open_grants_q
from kequn.security.actors import Actor, system_actor

TIER_CHANGED = "loyalty.tier_changed"
POINTS_EXPIRING = "loyalty.points_expiring"
AWARD_POINTS = "loyalty.award_points"
ISSUE_COUPON = "loyalty.issue_coupon"
EXPIRING_NOTICE_DAYS = 14


def _optional(module: str) -> Any:
    """Return a module of an app that may not be installed, or None."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def fire(kind: str, customer_ids: list[int], payload: dict[str, Any], by: Actor) -> int:
    """Start the journeys triggered by `kind` for these customers (0 without journeys)."""
    journeys = _optional("kequn.journeys.services")
    if journeys is None or not customer_ids:
        return 0
    return int(journeys.fire_trigger(kind=kind, customer_ids=customer_ids, payload=payload, by=by))


def on_tier_changed(customer_ids: list[int], payload: dict[str, Any]) -> None:
    """Fire the "tier changed" trigger (after the commit that changed the tier)."""
    key = f"tier:{payload.get('tier')}:{timezone.now():%Y%m%d%H%M%S%f}"
    fire(TIER_CHANGED, customer_ids, {**payload, "key": key}, system_actor("loyalty-tiers"))


def notify_expiring(
    *, by: Actor, days: int = EXPIRING_NOTICE_DAYS, now: datetime | None = None
) -> int:
    """Fire "points expiring" for members with points expiring within `days` (once a day)."""
    now = now or timezone.now()
    ids = sorted(
        set(
            LedgerEntry.objects.filter(
                remaining__gt=0, expires_at__gt=now, expires_at__lte=now + timedelta(days=days)
            ).values_list("member_id", flat=True)
        )
    )
    payload = {"days": days, "key": f"expiring:{timezone.localdate(now).isoformat()}"}
    return fire(POINTS_EXPIRING, ids, payload, by)


def _check_award(config: Mapping[str, Any]) -> list[str]:
    points = config.get("points")
    if not isinstance(points, int) or isinstance(points, bool) or points <= 0:
        return [str(_("points must be a whole number above zero"))]
    return []


def _check_coupon(config: Mapping[str, Any]) -> list[str]:
    if not config.get("reward") and not config.get("amount"):
        return [str(_("name a reward code or an amount for the coupon"))]
    return []


def award_points_step(context: Any) -> Any:
    """Journey step: give the enrolled customer points (once per enrollment and step)."""
    from kequn.journeys.registry import StepResult  # noqa: PLC0415 -- journeys may be absent
    from kequn.loyalty.services import enroll_member, grant_points  # noqa: PLC0415 -- cycle

    enroll_member(customer_id=context.customer_id, by=context.by, now=context.now)
    entry = grant_points(
        customer_id=context.customer_id,
        points=int(context.config.get("points", 0)),
        key=f"journey:{context.dedupe_key}",
        by=context.by,
        reason="journey",
        source="journey",
        now=context.now,
    )
    return StepResult(detail={"entry": entry.pk})


def issue_coupon_step(context: Any) -> Any:
    """Journey step: issue the enrolled customer a coupon (once per enrollment and step)."""
    from decimal import Decimal  # noqa: PLC0415 -- only here

    from kequn.journeys.registry import StepResult  # noqa: PLC0415 -- journeys may be absent
    from kequn.loyalty.services import issue_coupon  # noqa: PLC0415 -- cycle

    config = context.config
    coupon = issue_coupon(
        customer_id=context.customer_id,
        key=f"journey:{context.dedupe_key}",
        by=context.by,
        reward=config.get("reward") or None,
        amount=Decimal(str(config["amount"])) if config.get("amount") else None,
        valid_days=int(config.get("valid_days") or 30),
        source="journey",
        now=context.now,
    )
    return StepResult(detail={"coupon": coupon.pk})


def get_merge_values(customer_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Return the loyalty merge fields of many customers (empty values for non-members).

    Three queries for a whole batch of a campaign: members with their tier, points expiring
    within 30 days, and each member's newest usable coupon.
    """
    from kequn.loyalty.models import Coupon, Member  # noqa: PLC0415 -- models ready by then
    from kequn.loyalty.selectors import EXPIRING_DAYS  # noqa: PLC0415 -- idem

    now = timezone.now()
    values = {
        customer_id: {"tier": "", "points": 0, "points_expiring": 0, "coupon_code": ""}
        for customer_id in customer_ids
    }
    members = Member.objects.filter(customer_id__in=values)
    for customer_id, tier, balance in members.values_list("customer_id", "tier__name", "balance"):
        values[customer_id].update(tier=tier or "", points=balance)
    expiring = (
        LedgerEntry.objects.filter(
            open_grants_q(),
            member_id__in=values,
            expires_at__lte=now + timedelta(days=EXPIRING_DAYS),
        )
        .values("member_id")
        .annotate(points=Sum("remaining"))
        .values_list("member_id", "points")
    )
    for customer_id, points in expiring:
        values[customer_id]["points_expiring"] = int(points)
    coupons = (
        Coupon.objects.filter(member_id__in=values, status=Coupon.Status.ACTIVE, expires_at__gt=now)
        .order_by("member_id", "-issued_at")
        .values_list("member_id", "code")
    )
    for customer_id, code in coupons:
        if not values[customer_id]["coupon_code"]:  # the newest comes first
            values[customer_id]["coupon_code"] = code
    return values


MERGE_LABELS = {
    "tier": _("loyalty tier"),
    "points": _("points balance"),
    "points_expiring": _("points expiring within 30 days"),
    "coupon_code": _("latest coupon code"),
}


def register_integrations() -> None:
    """Register the triggers, steps and merge fields with journeys and engage when present."""
    from kequn.loyalty.services import register_tier_listener  # noqa: PLC0415 -- cycle

    register_tier_listener(on_tier_changed)
    registry = _optional("kequn.journeys.registry")
    if registry is not None:
        registry.register_trigger(
            TIER_CHANGED,
            _("Loyalty tier changed"),
            config_fields={"tier": _("new tier code (empty: any)")},
        )
        registry.register_trigger(
            POINTS_EXPIRING,
            _("Loyalty points about to expire"),
            config_fields={"days": _("days before expiry")},
        )
        registry.register_step(
            AWARD_POINTS,
            _("Award loyalty points"),
            award_points_step,
            config_fields={"points": _("points")},
            check_config=_check_award,
        )
        registry.register_step(
            ISSUE_COUPON,
            _("Issue a coupon"),
            issue_coupon_step,
            config_fields={
                "reward": _("reward code"),
                "amount": _("amount off (no reward)"),
                "valid_days": _("valid for days"),
            },
            check_config=_check_coupon,
        )
    content = _optional("kequn.engage.content")
    if content is not None and hasattr(content, "register_merge_fields"):
        content.register_merge_fields("loyalty", get_merge_values, MERGE_LABELS, bulk=True)
