"""The customer 360 page's loyalty panel: membership, balance, expiring points, ledger, coupons."""

from __future__ import annotations

from typing import Any

from kequn.customers.models import Customer
from kequn.customers.profile import register_profile_panel
from kequn.loyalty.models import Coupon, LedgerEntry
from kequn.loyalty.selectors import get_member, summarise_member

RECENT_ENTRIES = 15
RECENT_COUPONS = 10


def get_loyalty_context(customer: Customer) -> dict[str, Any]:
    """Return the member's summary, latest ledger entries and coupons (None for non-members)."""
    member = get_member(customer.pk)
    if member is None:
        return {"loyalty": None}
    return {
        "loyalty": {
            **summarise_member(member),
            "entries": list(
                LedgerEntry.objects.filter(member=member).order_by("-id")[:RECENT_ENTRIES]
            ),
            "coupons": list(Coupon.objects.filter(member=member).order_by("-id")[:RECENT_COUPONS]),
        }
    }


def register_profile_panels() -> None:
    """Add the loyalty panel to the 360 page."""
    register_profile_panel(
        "loyalty",
        order=40,
        template="admin/loyalty/panels/loyalty.html",
        get_context=get_loyalty_context,
        region="timeline",
    )
