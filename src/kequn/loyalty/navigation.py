"""Loyalty: the back office's sidebar groups (kequn.sidebar adds them before Administration)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _

from kequn.security.menu import can_open_list

GROUPS: list[dict[str, Any]] = [
    {
        "title": _("Loyalty"),
        "separator": True,
        "items": [
            {
                "title": _("Members"),
                "icon": "loyalty",
                "link": reverse_lazy("admin:loyalty_member_changelist"),
                "permission": can_open_list("loyalty.member"),
            },
            {
                "title": _("Points ledger"),
                "icon": "receipt_long",
                "link": reverse_lazy("admin:loyalty_ledgerentry_changelist"),
                "permission": can_open_list("loyalty.ledgerentry"),
            },
            {
                "title": _("Rewards"),
                "icon": "redeem",
                "link": reverse_lazy("admin:loyalty_reward_changelist"),
                "permission": can_open_list("loyalty.reward"),
            },
            {
                "title": _("Coupons"),
                "icon": "confirmation_number",
                "link": reverse_lazy("admin:loyalty_coupon_changelist"),
                "permission": can_open_list("loyalty.coupon"),
            },
            {
                "title": _("Tiers"),
                "icon": "workspace_premium",
                "link": reverse_lazy("admin:loyalty_tier_changelist"),
                "permission": can_open_list("loyalty.tier"),
            },
            {
                "title": _("Programme"),
                "icon": "tune",
                "link": reverse_lazy("admin:loyalty_programme_changelist"),
                "permission": can_open_list("loyalty.programme"),
            },
        ],
    }
]
