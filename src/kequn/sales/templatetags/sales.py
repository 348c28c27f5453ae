"""Template tags of sales: the signed-in rep's overdue tasks and due reminders on the home page."""

from __future__ import annotations

from typing import Any

from django import template

from kequn.sales.selectors import get_due_reminders, get_overdue_tasks
from kequn.security.permissions import has_permission

register = template.Library()


@register.inclusion_tag("sales/overdue_tasks.html", takes_context=True)
def overdue_tasks(context: dict[str, Any]) -> dict[str, Any]:
    """Render the user's overdue tasks and reminders (nothing for users without sales tasks)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not has_permission(user, "sales.view_task"):
        return {"tasks": [], "reminders": []}
    return {
        "tasks": list(get_overdue_tasks(user, limit=10)),
        "reminders": list(get_due_reminders(user, limit=10)),
    }
