"""Membership tiers, the points ledger with expiry, rewards, coupons and referrals."""
