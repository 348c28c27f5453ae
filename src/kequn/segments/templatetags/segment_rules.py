"""Template tags: the segment and tag rules that name an object about to be deleted."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse

from kequn.commerce.models import Category
from kequn.customers.models import Tag
from kequn.segments.models import Segment
from kequn.segments.services import find_rules_using

register = template.Library()


@register.simple_tag
def rules_using(objects: Any) -> list[dict]:
    """Return the segments and tag rules naming these tags, categories or segments (for links)."""
    items = list(objects) if hasattr(objects, "__iter__") else [objects]
    users = find_rules_using(
        tags=[o for o in items if isinstance(o, Tag)],
        categories=[o for o in items if isinstance(o, Category)],
        segments=[o for o in items if isinstance(o, Segment)],
    )
    rows = []
    for obj in users:
        if isinstance(obj, Segment):
            url = reverse("admin:segments_segment_change", args=[obj.pk])
        else:
            url = reverse("admin:segments_tagrule_change", args=[obj.pk])
        rows.append({"obj": obj, "url": url, "kind": obj._meta.verbose_name})
    return rows
