"""Feedback: the back office's sidebar groups (kequn.sidebar adds them before Administration)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _

from kequn.security.menu import can_open_list

GROUPS: list[dict[str, Any]] = [
    {
        "title": _("Feedback"),
        "separator": True,
        "items": [
            {
                "title": _("Surveys"),
                "icon": "sentiment_satisfied",
                "link": reverse_lazy("admin:feedback_survey_changelist"),
                "permission": can_open_list("feedback.survey"),
            },
            {
                "title": _("Survey answers"),
                "icon": "reviews",
                "link": reverse_lazy("admin:feedback_response_changelist"),
                "permission": can_open_list("feedback.response"),
            },
            {
                "title": _("Follow-ups"),
                "icon": "assignment_late",
                "link": reverse_lazy("admin:feedback_followup_changelist"),
                "permission": can_open_list("feedback.followup"),
            },
        ],
    }
]
