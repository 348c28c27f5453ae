"""The dashboard's service panel: SLA compliance, response times, open tickets by queue."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils import timezone

from kequn.security.permissions import has_permission
from kequn.service import selectors

register = template.Library()


@register.inclusion_tag("service/dashboard_panel.html", takes_context=True)
def service_panel(context: dict[str, Any]) -> dict[str, Any]:
    """Return the service figures for users who may read the SLA setup (agents, analysts)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    # Reps may see their own accounts' tickets only, so the panel asks for the SLA policies'
    # read permission, which only the roles that read every ticket hold.
    if not has_permission(user, "service.view_ticket", "service.view_slapolicy"):
        return {"show": False}
    return {"show": True, "panel": selectors.compute_dashboard(timezone.now())}
