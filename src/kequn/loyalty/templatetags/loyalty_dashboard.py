"""The dashboard's loyalty panel: members, tier mix, points liability, redemption and breakage."""

from __future__ import annotations

from typing import Any

from django import template

from kequn.loyalty import selectors
from kequn.security.permissions import has_permission

register = template.Library()


def as_percent(rate: float | None) -> str | None:
    """Return a rate as a percentage with one decimal, or None when it is not measurable."""
    return None if rate is None else f"{rate * 100:.1f}"


@register.inclusion_tag("loyalty/dashboard_panel.html", takes_context=True)
def loyalty_panel(context: dict[str, Any]) -> dict[str, Any]:
    """Return the programme's figures for users who may read members (not shown otherwise)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not has_permission(user, "loyalty.view_member"):
        return {"show": False}
    figures = selectors.read_dashboard()
    members = figures["members"]
    mix = [
        {**row, "share": as_percent(row["members"] / members) if members else None}
        for row in figures["tier_mix"]
    ]
    return {
        "show": True,
        "panel": {
            **figures,
            "tier_mix": mix,
            "redemption_percent": as_percent(figures["redemption_rate"]),
            "breakage_percent": as_percent(figures["breakage_rate"]),
            "repeat_members_percent": as_percent(figures["repeat_rate_members"]),
            "repeat_others_percent": as_percent(figures["repeat_rate_non_members"]),
        },
    }
