"""The dashboard's feedback panel: NPS and CSAT by month, response rate, complaint topics."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils import timezone

from kequn.feedback import selectors
from kequn.security.permissions import has_permission

register = template.Library()


@register.inclusion_tag("feedback/dashboard_panel.html", takes_context=True)
def feedback_panel(context: dict[str, Any]) -> dict[str, Any]:
    """Return the survey figures for users who may read surveys and their answers."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if not has_permission(user, "feedback.view_survey", "feedback.view_response"):
        return {"show": False}
    panel = selectors.compute_dashboard(timezone.now())
    for month in panel["months"]:
        # Bars from the middle: NPS runs from -100 to 100, CSAT from 0 to 100.
        month["nps_width"] = round(abs(month["nps"] or 0) / 2)
        month["csat_width"] = round((month["csat"] or 0) / 2)
    return {"show": True, "panel": panel}
