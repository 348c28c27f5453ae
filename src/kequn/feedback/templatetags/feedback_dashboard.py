"""The dashboard's feedback panel (filled in by the feedback app)."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def feedback_panel(context: dict[str, Any]) -> str:
    """Return the panel's HTML for users who may read it."""
    return ""
