"""Journeys: the back office's sidebar groups (kequn.sidebar adds them before Administration)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _

from kequn.security.menu import can_open_list

GROUPS: list[dict[str, Any]] = [
    {
        "title": _("Journeys"),
        "separator": True,
        "items": [
            {
                "title": _("Journeys"),
                "icon": "route",
                "link": reverse_lazy("admin:journeys_journey_changelist"),
                "permission": can_open_list("journeys.journey"),
            },
            {
                "title": _("Journey enrollments"),
                "icon": "group",
                "link": reverse_lazy("admin:journeys_enrollment_changelist"),
                "permission": can_open_list("journeys.enrollment"),
            },
        ],
    }
]
