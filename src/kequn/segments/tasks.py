from django_tasks import task


@task()
def refresh_segments_task() -> dict:
    """Re-evaluate dynamic segments and tag rules (schedule after the nightly score refresh)."""
    from kequn.segments.services import refresh_all

    return refresh_all()
