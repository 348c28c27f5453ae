"""Segment rule fields on service: open tickets, and complaints within a window."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils.translation import gettext_lazy as _

from kequn.segments.rules import register_rule_field
from kequn.segments.sqlgen import format_ts

OPEN = "('new', 'open', 'waiting', 'reopened')"


def _open_tickets(days: int | None, now: datetime) -> tuple[str, tuple[Any, ...]]:
    return (
        f"SELECT COUNT(*) FROM service_ticket t WHERE t.customer_id = c.id AND t.status IN {OPEN}",  # noqa: S608 -- constant text
        (),
    )


def _complaints(days: int | None, now: datetime) -> tuple[str, tuple[Any, ...]]:
    sql = (
        "SELECT COUNT(*) FROM service_ticket t WHERE t.customer_id = c.id "
        "AND t.type = 'complaint' AND t.merged_into_id IS NULL"
    )
    if not days:
        return sql, ()
    return sql + " AND t.opened_at >= %s", (format_ts(now - timedelta(days=days)),)


def register_segment_fields() -> None:
    """Add the service fields to the segment rule builder."""
    common: dict[str, Any] = {"group": "service", "group_label": _("Service")}
    register_rule_field(
        "open_tickets", kind="number", sql=_open_tickets, label=_("open tickets"), **common
    )
    register_rule_field(
        "complaints",
        kind="number",
        sql=_complaints,
        window=True,
        label=_("complaints (within … days, or ever)"),
        **common,
    )
