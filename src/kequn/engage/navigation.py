"""Engagement: the back office's sidebar groups (kequn.sidebar adds them before Administration)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _

from kequn.security.menu import can_open_list

GROUPS: list[dict[str, Any]] = [
    {
        "title": _("Engagement"),
        "separator": True,
        "items": [
            {
                "title": _("Campaigns"),
                "icon": "campaign",
                "link": reverse_lazy("admin:engage_campaign_changelist"),
                "permission": can_open_list("engage.campaign"),
            },
            {
                "title": _("Message templates"),
                "icon": "article",
                "link": reverse_lazy("admin:engage_template_changelist"),
                "permission": can_open_list("engage.template"),
            },
            {
                "title": _("Outbox"),
                "icon": "outbox",
                "link": reverse_lazy("admin:engage_message_changelist"),
                "permission": can_open_list("engage.message"),
            },
            {
                "title": _("Suppressed addresses"),
                "icon": "block",
                "link": reverse_lazy("admin:engage_suppression_changelist"),
                "permission": can_open_list("engage.suppression"),
            },
        ],
    }
]
