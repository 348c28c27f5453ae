"""Service: the back office's sidebar groups (kequn.sidebar adds them before Administration)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _

from kequn.security.menu import can_open_list, has_perms

GROUPS: list[dict[str, Any]] = [
    {
        "title": _("Service"),
        "separator": True,
        "items": [
            {
                "title": _("Tickets"),
                "icon": "support_agent",
                "link": reverse_lazy("admin:service_ticket_changelist"),
                "permission": can_open_list("service.ticket"),
            },
            {
                "title": _("SLA compliance"),
                "icon": "timer",
                "link": reverse_lazy("admin:service_ticket_sla_report"),
                "permission": has_perms("service.view_ticket"),
            },
            {
                "title": _("Inbound email"),
                "icon": "mail",
                "link": reverse_lazy("admin:service_inboundemail_changelist"),
                "permission": can_open_list("service.inboundemail"),
            },
            {
                "title": _("Queues"),
                "icon": "groups",
                "link": reverse_lazy("admin:service_queue_changelist"),
                "permission": can_open_list("service.queue"),
            },
            {
                "title": _("SLA policies"),
                "icon": "rule",
                "link": reverse_lazy("admin:service_slapolicy_changelist"),
                "permission": can_open_list("service.slapolicy"),
            },
            {
                "title": _("Business calendars"),
                "icon": "calendar_month",
                "link": reverse_lazy("admin:service_businesscalendar_changelist"),
                "permission": can_open_list("service.businesscalendar"),
            },
        ],
    }
]
