from django_tasks import task


@task()
def refresh_dashboard_task() -> int:
    """Recompute the dashboard's aggregates (run after the scores are refreshed)."""
    from kequn.dashboard.services import refresh_dashboard

    return refresh_dashboard().customers


@task()
def write_weekly_report_task() -> list[str]:
    """Write the weekly summary report files (scheduled weekly by `kequn worker`)."""
    from kequn.dashboard.services import write_weekly_report

    return [str(path) for path in write_weekly_report()]
