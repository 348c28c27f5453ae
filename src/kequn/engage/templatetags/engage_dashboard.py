"""The dashboard's campaigns panel: the latest sent campaigns with their uplift over the holdout."""

from __future__ import annotations

from typing import Any

from django import template

from kequn.engage import selectors
from kequn.security.permissions import has_permission

register = template.Library()


@register.inclusion_tag("engage/dashboard_panel.html", takes_context=True)
def campaigns_panel(context: dict[str, Any]) -> dict[str, Any]:
    """Return the latest campaigns that sent something, for users who may read campaigns."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not has_permission(user, "engage.view_campaign"):
        return {"show": False}
    reports, preparing = selectors.read_dashboard_reports()
    return {"show": True, "reports": reports, "preparing": preparing}
