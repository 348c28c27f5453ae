from django_tasks import task

from kequn.security.actors import system_actor
from kequn.segments.services import refresh_all


@task()
def refresh_segments_task() -> dict:
    """Re-evaluate dynamic segments and tag rules (schedule after the nightly score refresh)."""
    return refresh_all(by=system_actor("segment-refresh"))
