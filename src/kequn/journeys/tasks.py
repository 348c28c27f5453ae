"""The journeys runner under `kequn worker`.

The worker's schedule enqueues ``run_journeys_task`` every minute. That pass also starts a
chain of quick passes, each enqueuing the next a few seconds later
(``KEQUN_JOURNEY_POLL_SECONDS``), so an event reaches its journey's first send within seconds;
a lease lets only one chain live however many workers run, and a chain lost with a killed
worker is restarted by the next scheduled pass.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from django_tasks import task

from kequn.journeys.runner import run_pass, take_chain
from kequn.security.actors import system_actor

TASK_PATH = "kequn.journeys.tasks.run_journeys_task"


@task()
def run_journeys_task(chain: str = "") -> dict[str, Any]:
    """Run one pass of the journeys runner, then keep the chain of quick passes going."""
    poll = float(getattr(settings, "KEQUN_JOURNEY_POLL_SECONDS", 2))
    result = run_pass(by=system_actor("journeys"), budget_seconds=max(poll * 5, 10)).as_dict()
    if poll > 0:
        token = take_chain(chain)
        if token:
            run_journeys_task.using(run_after=timezone.now() + timedelta(seconds=poll)).enqueue(
                chain=token
            )
        if not chain:
            _prune_finished()
    return result


def _prune_finished(keep: timedelta = timedelta(minutes=10)) -> None:
    """Delete this task's finished results older than `keep` (the chain leaves one every pass)."""
    from django_tasks_db.models import DBTaskResult  # noqa: PLC0415 -- only the database backend keeps results

    DBTaskResult.objects.filter(
        task_path=TASK_PATH,
        status="SUCCESSFUL",
        finished_at__lt=timezone.now() - keep,
    ).delete()
