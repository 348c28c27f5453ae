"""Segment rule fields on feedback: the last NPS score, poor answers, open follow-ups."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils.translation import gettext_lazy as _

from kequn.segments.rules import register_rule_field
from kequn.segments.sqlgen import format_ts


def _last_nps(days: int | None, now: datetime) -> tuple[str, tuple[Any, ...]]:
    # The latest NPS answer's score; customers who never answered have none (NULL).
    return (
        "SELECT r.score FROM feedback_response r JOIN feedback_survey s ON s.id = r.survey_id "
        "WHERE r.customer_id = c.id AND s.kind = 'nps' ORDER BY r.answered_at DESC, r.id DESC "
        "LIMIT 1",
        (),
    )


def _poor_answers(days: int | None, now: datetime) -> tuple[str, tuple[Any, ...]]:
    sql = (
        "SELECT COUNT(*) FROM feedback_response r WHERE r.customer_id = c.id "
        "AND r.category IN ('detractor', 'unhappy')"
    )
    if not days:
        return sql, ()
    return f"{sql} AND r.answered_at >= %s", (format_ts(now - timedelta(days=days)),)


def _open_follow_ups(days: int | None, now: datetime) -> tuple[str, tuple[Any, ...]]:
    return (
        "EXISTS (SELECT 1 FROM feedback_followup f JOIN feedback_response r "
        "ON r.id = f.response_id WHERE r.customer_id = c.id AND f.status = 'open')",
        (),
    )


def register_segment_fields() -> None:
    """Add the feedback fields to the segment rule builder."""
    common: dict[str, Any] = {"group": "feedback", "group_label": _("Feedback")}
    register_rule_field(
        "last_nps", kind="number", sql=_last_nps, label=_("last NPS score"), **common
    )
    register_rule_field(
        "poor_survey_answers",
        kind="number",
        sql=_poor_answers,
        window=True,
        label=_("poor survey answers (detractor or unhappy)"),
        **common,
    )
    register_rule_field(
        "open_survey_follow_up",
        kind="bool",
        sql=_open_follow_ups,
        label=_("has an open survey follow-up"),
        **common,
    )
