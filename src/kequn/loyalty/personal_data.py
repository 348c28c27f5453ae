"""The loyalty app's personal data: membership, the points ledger, coupons, redemptions, referrals.

All of it is about one person and is deleted with them on erasure (the rows cascade from
the member, which cascades from the customer).
"""

from __future__ import annotations

from kequn.loyalty.models import (
    Allocation,
    Coupon,
    LedgerEntry,
    Member,
    Redemption,
    Referral,
    TierChange,
    TierCheck,
)
from kequn.security.personal_data import register

register(Member, path="customer", export_as="loyalty_membership", position=200)
register(
    LedgerEntry,
    path="member__customer",
    export_as="loyalty_ledger",
    position=210,
    fields=[
        "id",
        "kind",
        "points",
        "pending",
        "reason",
        "source",
        "order_ref",
        "created_at",
        "available_at",
        "expires_at",
        "remaining",
        "held",
    ],
)
register(Allocation, path="entry__member__customer")
register(
    TierChange,
    path="member__customer",
    export_as="loyalty_tier_history",
    position=220,
    related=["to_tier__name"],
)
register(TierCheck, path="member__customer")
register(Coupon, path="member__customer", export_as="loyalty_coupons", position=230)
register(Redemption, path="member__customer", export_as="loyalty_redemptions", position=240)
register(
    Referral,
    path=("referee", "referrer__customer"),
    export_as="loyalty_referrals",
    position=250,
    fields=[
        "id",
        "referrer_id",
        "referee_id",
        "status",
        "reason",
        "order_ref",
        "created_at",
        "rewarded_at",
    ],
)
