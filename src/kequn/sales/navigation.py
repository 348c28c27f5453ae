"""Sales: the back office's sidebar groups (kequn.sidebar adds them before Administration)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _

from kequn.security.menu import can_open_list, has_perms

GROUPS: list[dict[str, Any]] = [
    {
        "title": _("Sales"),
        "separator": True,
        "items": [
            {
                "title": _("Deal board"),
                "icon": "view_kanban",
                "link": reverse_lazy("admin:sales_deal_board"),
                "permission": has_perms("sales.view_deal"),
            },
            {
                "title": _("Deals"),
                "icon": "handshake",
                "link": reverse_lazy("admin:sales_deal_changelist"),
                "permission": can_open_list("sales.deal"),
            },
            {
                "title": _("Activities"),
                "icon": "event_note",
                "link": reverse_lazy("admin:sales_activity_changelist"),
                "permission": can_open_list("sales.activity"),
            },
            {
                "title": _("Tasks"),
                "icon": "task_alt",
                "link": reverse_lazy("admin:sales_task_changelist"),
                "permission": can_open_list("sales.task"),
            },
            {
                "title": _("Accounts and lead pool"),
                "icon": "domain",
                "link": reverse_lazy("admin:sales_accountprofile_changelist"),
                "permission": can_open_list("sales.accountprofile"),
            },
            {
                "title": _("Sales reports"),
                "icon": "query_stats",
                "link": reverse_lazy("admin:sales_reports"),
                "permission": has_perms("sales.view_deal"),
            },
            {
                "title": _("Pipelines"),
                "icon": "linear_scale",
                "link": reverse_lazy("admin:sales_pipeline_changelist"),
                "permission": can_open_list("sales.pipeline"),
            },
            {
                "title": _("Sales teams"),
                "icon": "groups",
                "link": reverse_lazy("admin:sales_team_changelist"),
                "permission": can_open_list("sales.team"),
            },
        ],
    }
]
