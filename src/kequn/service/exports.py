"""The service reports as tables for their Excel and PDF files (kequn.security.reportfiles)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from kequn.security.reportfiles import Table


def build_sla_tables(report: Any, queues: list[dict[str, Any]]) -> list[Table]:
    """Return the SLA report (selectors.SlaReport) and the open queues as tables."""
    from kequn.service.models import Priority  # noqa: PLC0415 -- labels only

    def percent(rate: float | None) -> float | None:
        return round(100 * rate, 1) if rate is not None else None

    labels = dict(Priority.choices)
    return [
        (
            _("SLA compliance"),
            [_("Figure"), _("Value")],
            [
                [_("Tickets"), report.tickets],
                [_("First responses on time"), report.first_response_met],
                [_("First responses late"), report.first_response_missed],
                [_("First responses on time (%)"), percent(report.first_response_rate)],
                [_("Resolutions on time"), report.resolution_met],
                [_("Resolutions late"), report.resolution_missed],
                [_("Resolutions on time (%)"), percent(report.resolution_rate)],
                [_("Median first response (hours)"), report.median_first_response_hours],
                [_("Median resolution (hours)"), report.median_resolution_hours],
            ],
        ),
        (
            _("By priority"),
            [_("Priority"), _("Tickets"), _("With a missed deadline")],
            [
                [str(labels.get(row["priority"], row["priority"])), row["tickets"], row["breached"]]
                for row in report.by_priority
            ],
        ),
        (
            _("Open tickets by queue"),
            [_("Queue"), _("Open tickets"), _("Due soon"), _("Breached")],
            [[q["queue"] or _("No queue"), q["open"], q["warning"], q["breached"]] for q in queues],
        ),
    ]
