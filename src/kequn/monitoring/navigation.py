"""Monitoring: the back office's sidebar groups (kequn.sidebar adds them before Administration)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _

from kequn.security.menu import can_open_list

GROUPS: list[dict[str, Any]] = [
    {
        "title": _("Monitoring"),
        "separator": True,
        "collapsible": True,
        "items": [
            {
                "title": _("Security alerts"),
                "icon": "notification_important",
                "link": reverse_lazy("admin:monitoring_alert_changelist"),
                "permission": can_open_list("monitoring.alert"),
                "badge": "kequn.monitoring.admin.open_alerts_badge",
            },
        ],
    }
]
