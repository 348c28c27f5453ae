"""Loyalty's write services, one module per job; the names below are what callers use."""

from kequn.loyalty.services.base import LoyaltyError, compute_expiry, get_programme
from kequn.loyalty.services.expiry import ExpiryResult, expire_points
from kequn.loyalty.services.ledger import (
    adjust_points,
    award_event_points,
    enroll_member,
    grant_points,
    release_pending,
    reverse_entry,
    spend_points,
)
from kequn.loyalty.services.orders import (
    earn_for_order_events,
    earn_for_orders,
    earn_for_orders_listener,
)
from kequn.loyalty.services.referrals import qualify_referrals, register_referral
from kequn.loyalty.services.rewards import (
    cancel_redemption,
    check_coupon,
    find_coupon,
    issue_coupon,
    redeem_reward,
    use_coupon,
)
from kequn.loyalty.services.tiers import (
    register_tier_listener,
    review_tiers,
    run_tier_checks,
    upgrade_members,
)

__all__ = [
    "ExpiryResult",
    "LoyaltyError",
    "adjust_points",
    "award_event_points",
    "cancel_redemption",
    "check_coupon",
    "compute_expiry",
    "earn_for_order_events",
    "earn_for_orders",
    "earn_for_orders_listener",
    "enroll_member",
    "expire_points",
    "find_coupon",
    "get_programme",
    "grant_points",
    "issue_coupon",
    "qualify_referrals",
    "redeem_reward",
    "register_referral",
    "register_tier_listener",
    "release_pending",
    "reverse_entry",
    "review_tiers",
    "run_tier_checks",
    "spend_points",
    "upgrade_members",
    "use_coupon",
]
