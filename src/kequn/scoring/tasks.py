from django_tasks import task


@task()
def refresh_scores_task() -> int:
    """Recompute every customer's scores (scheduled daily by `kequn worker`)."""
    from kequn.scoring.services import refresh_scores

    return refresh_scores(progress=False).customers
