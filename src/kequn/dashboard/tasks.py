"""The dashboard's jobs for `kequn worker`: refresh the aggregates, write the weekly report.

Jobs sit on top of the dashboard's modules and import only downward (services, reports);
nothing below imports this module.
"""

from __future__ import annotations

from django.db import transaction
from django_tasks import task

from kequn.dashboard.reports import write_weekly_report
from kequn.dashboard.services import refresh_dashboard
from kequn.security.actors import system_actor


@task()
def refresh_dashboard_task() -> int:
    """Recompute the dashboard's aggregates (run after the scores are refreshed)."""
    return refresh_dashboard(by=system_actor("dashboard-refresh")).customers


@task()
def write_weekly_report_task() -> list[str]:
    """Write the weekly summary report files (scheduled weekly by `kequn worker`)."""
    return [str(path) for path in write_weekly_report()]


def enqueue_dashboard_refresh() -> None:
    """Queue a refresh of the aggregates for the worker, once the current transaction commits."""
    transaction.on_commit(refresh_dashboard_task.enqueue)
