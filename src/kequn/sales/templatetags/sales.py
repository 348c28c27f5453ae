"""Template tags of sales: the signed-in rep's overdue tasks and due reminders on the home page."""

from __future__ import annotations

from typing import Any

from django import template

from kequn.sales.selectors import get_due_reminders, get_overdue_tasks
from kequn.sales.templatetags.sales_dashboard import get_panel_context
from kequn.security.permissions import has_permission

register = template.Library()


@register.inclusion_tag("sales/overdue_tasks.html", takes_context=True)
def overdue_tasks(context: dict[str, Any]) -> dict[str, Any]:
    """Render the user's overdue tasks and reminders (nothing for users without sales tasks).

    Reps and managers who do not see the dashboard (or see it before its first refresh) get
    its sales panel here instead.
    """
    request = context.get("request")
    user = getattr(request, "user", None)
    shown: dict[str, Any] = {"tasks": [], "reminders": [], "show": False}
    if user is None:
        return shown
    dashboard = context.get("dashboard") or {}
    if dashboard.get("state") != "ready":  # the dashboard shows its panels only when ready
        shown.update(get_panel_context(user))
    if has_permission(user, "sales.view_task"):
        shown["tasks"] = list(get_overdue_tasks(user, limit=10))
        shown["reminders"] = list(get_due_reminders(user, limit=10))
    return shown
