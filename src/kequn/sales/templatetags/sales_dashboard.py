"""The dashboard's sales panel: forecast against quota, win rate and the open pipeline by stage."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse

from kequn.sales import selectors
from kequn.security.permissions import has_permission

register = template.Library()


def get_panel_context(user: Any) -> dict[str, Any]:
    """Return the panel's figures for a user who reads deals (a rep's own, a manager's team's)."""
    if user is None or not has_permission(user, "sales.view_deal"):
        return {"show": False}
    panel = selectors.get_dashboard_panel(user)
    board = reverse("admin:sales_deal_board")
    for bar in panel.stages:
        bar.link = f"{board}{bar.link}"
    return {
        "show": True,
        "panel": panel,
        "periods": [panel.month, panel.quarter],
        "board_url": board,
        "reports_url": reverse("admin:sales_reports"),
    }


@register.inclusion_tag("sales/dashboard_panel.html", takes_context=True)
def sales_panel(context: dict[str, Any]) -> dict[str, Any]:
    """Return the viewer's sales figures if they read deals."""
    return get_panel_context(getattr(context.get("request"), "user", None))
