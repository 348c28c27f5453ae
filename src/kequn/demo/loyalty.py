"""The demo's loyalty programme: tiers 普通/银卡/金卡/钻石, rewards, members in every tier.

Buyers of the demo become members and earn on their orders through the same service the
importer calls, so balances, pending and expiring points, tiers and their history are real
ledger results. A few redemptions, coupons, adjustments and a referral follow. Deterministic
for a seed; skipped when the programme already has members.
"""

from __future__ import annotations

import random
from decimal import Decimal

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from kequn.commerce.models import Order
from kequn.loyalty import services
from kequn.loyalty.models import Member, Programme, Reward, Tier, TierChange
from kequn.security.actors import Actor

TIERS = [
    ("normal", "普通", 0, "0", "1.00", "0", 0),
    ("silver", "银卡", 1, "3000", "1.20", "2", 100),
    ("gold", "金卡", 2, "10000", "1.50", "5", 300),
    ("diamond", "钻石", 3, "30000", "2.00", "8", 800),
]
REWARDS = [
    (
        "coupon-20",
        "满 200 减 20 元券",
        Reward.Kind.COUPON_AMOUNT,
        1000,
        "20",
        "0",
        "200",
        None,
        None,
    ),
    ("coupon-9off", "9 折券", Reward.Kind.COUPON_PERCENT, 3000, "0", "10", "500", None, 2),
    ("case-gift", "手机壳赠品", Reward.Kind.GIFT, 2000, "0", "0", "0", 500, 1),
    ("film-store", "门店贴膜服务", Reward.Kind.IN_STORE, 800, "0", "0", "0", None, None),
]
MAX_MEMBERS = 20_000


def create_programme() -> Programme:
    """Set up the programme's rules, tiers and reward catalogue (idempotent)."""
    programme = services.get_programme()
    programme.name = "客群会员俱乐部 Kequn Club"
    programme.category_multipliers = {"accessories": 2}
    programme.event_points = {"review": 20, "sign_in": 5, "profile": 50, "birthday": 100}
    programme.save()
    for code, name, rank, threshold, multiplier, discount, birthday in TIERS:
        Tier.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "rank": rank,
                "threshold": Decimal(threshold),
                "earn_multiplier": Decimal(multiplier),
                "discount_percent": Decimal(discount),
                "birthday_points": birthday,
            },
        )
    for code, name, kind, cost, amount, percent, min_spend, stock, limit in REWARDS:
        Reward.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "kind": kind,
                "points_cost": cost,
                "amount": Decimal(amount),
                "percent": Decimal(percent),
                "min_spend": Decimal(min_spend),
                "stock": stock,
                "per_member_limit": limit,
            },
        )
    return programme


def create_demo_loyalty(*, by: Actor, seed: int = 42, members: int = MAX_MEMBERS) -> str:
    """Create the programme and its members from the demo's buyers; return a one-line summary."""
    if Member.objects.exists():
        return "Loyalty programme already has members; keeping it."
    create_programme()
    rng = random.Random(seed)
    buyers = list(
        Order.objects.filter(status__in=Order.PURCHASE_STATUSES, customer__isnull=False)
        .values_list("customer_id", flat=True)
        .distinct()
        .order_by("customer_id")[:members]
    )
    for start in range(0, len(buyers), 500):
        chunk = buyers[start : start + 500]
        order_ids = list(Order.objects.filter(customer_id__in=chunk).values_list("pk", flat=True))
        with transaction.atomic():
            services.earn_for_orders(order_ids, by)
    services.release_pending(by=by)
    _fill_every_tier(rng, by)
    redeemed = _redeem_some(rng, by)
    _refer_one(buyers, by)
    expired = services.expire_points(by=by)
    counts = dict(Member.objects.values_list("tier__code").order_by().annotate(n=Count("pk")))
    mix = ", ".join(f"{name} {counts.get(code, 0)}" for code, name, *_ in TIERS)
    return (
        f"Loyalty: {Member.objects.count():,} members ({mix}), {redeemed} redemptions, "
        f"{expired.points:,} points expired."
    )


def _fill_every_tier(rng: random.Random, by: Actor) -> None:
    """Make sure every tier has members, as the demo shows each (a few promoted by hand)."""
    now = timezone.now()
    for code, _name, *_rest in TIERS:
        tier = Tier.objects.get(code=code)
        if Member.objects.filter(tier=tier).exists():
            continue
        candidates = list(Member.objects.filter(tier__rank__lt=tier.rank).order_by("-balance")[:5])
        for member in candidates:
            TierChange.objects.create(
                member=member,
                from_tier=member.tier,
                to_tier=tier,
                reason="demo: promoted by hand",
                changed_at=now,
            )
            member.tier, member.tier_since = tier, now
            member.save(update_fields=["tier", "tier_since"])


def _redeem_some(rng: random.Random, by: Actor) -> int:
    """Redeem rewards for some members with enough points; use and cancel a few coupons."""
    done = 0
    rich = list(Member.objects.filter(balance__gte=1000).order_by("customer_id")[:200])
    for member in rng.sample(rich, min(len(rich), 60)):
        reward = rng.choice(["coupon-20", "film-store", "case-gift"])
        try:
            redemption = services.redeem_reward(
                customer_id=member.pk, reward=reward, key=f"demo-redeem-{member.pk}", by=by
            )
        except services.LoyaltyError:
            continue
        done += 1
        coupon = redemption.coupon
        if rng.random() < 0.5:
            services.use_coupon(code=coupon.code, order_ref=f"DEMO-{member.pk}", by=by)
        elif rng.random() < 0.2:
            services.cancel_redemption(redemption_id=redemption.pk, by=by)
    for member in rich[:10]:
        services.adjust_points(
            customer_id=member.pk,
            points=100,
            reason="客服补偿 goodwill",
            key=f"demo-adjust-{member.pk}",
            by=by,
        )
    return done


def _refer_one(buyers: list[int], by: Actor) -> None:
    """Record one referral between two demo members (shows in the referral list)."""
    if len(buyers) < 2:
        return
    referrer = Member.objects.get(pk=buyers[0])
    services.register_referral(referral_code=referrer.referral_code, referee_id=buyers[-1], by=by)
