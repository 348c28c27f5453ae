from typing import Any

from django_tasks import task

from kequn.jobs.pipelines import refresh_analytics


@task()
def nightly_refresh_task() -> dict[str, Any]:
    """Refresh scores, segments and the dashboard (scheduled daily by `kequn worker`)."""
    return refresh_analytics().steps
