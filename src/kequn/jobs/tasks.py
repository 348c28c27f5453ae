from typing import Any

from django_tasks import task

from kequn.jobs.pipelines import refresh_analytics
from kequn.security.actors import system_actor


@task()
def nightly_refresh_task() -> dict[str, Any]:
    """Refresh scores, segments and the dashboard (scheduled daily by `kequn worker`)."""
    return refresh_analytics(by=system_actor("nightly-refresh")).steps
