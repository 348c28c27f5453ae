"""Background jobs of sales (run by `kequn worker`; the nightly one is scheduled by kequn.jobs)."""

from __future__ import annotations

from typing import Any

from django_tasks import task

from kequn.sales import services
from kequn.security.actors import system_actor


@task()
def nightly_sales_task() -> dict[str, Any]:
    """Warn and return idle pool accounts, then keep today's forecast snapshot."""
    from kequn.sales.forecasting import take_forecast_snapshots  # noqa: PLC0415 -- job only

    result = services.reclaim_idle_accounts(by=system_actor("sales-reclaim"))
    rows = take_forecast_snapshots()
    return {"warned": len(result.warned), "returned": len(result.returned), "snapshots": rows}


@task()
def send_reminders_task() -> int:
    """Email the task reminders that are due."""
    return services.send_due_reminders(by=system_actor("sales-reminders"))
