from django_tasks import task


@task()
def nightly_refresh_task() -> dict:
    """Refresh scores, segments and the dashboard (scheduled daily by `kequn worker`)."""
    from kequn.jobs.pipelines import refresh_analytics

    return refresh_analytics().steps
