"""The worker's journeys task: one chain of quick passes, restarted when its worker died."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from kequn.jobs.services import DEFAULT_SCHEDULES
from kequn.journeys.models import RunnerCursor
from kequn.journeys.runner import CHAIN, LEASE, take_chain
from kequn.journeys.tasks import TASK_PATH, run_journeys_task

pytestmark = pytest.mark.django_db


def queued_chains() -> list[str]:
    return [
        r.args_kwargs["kwargs"]["chain"]
        for r in DBTaskResult.objects.filter(task_path=TASK_PATH, status="READY")
    ]


def test_the_worker_schedule_runs_the_journeys_task():
    assert DEFAULT_SCHEDULES["journeys-run"].task_path == TASK_PATH
    assert DEFAULT_SCHEDULES["journeys-run"].interval_minutes == 1


def test_the_scheduled_pass_starts_one_chain_which_continues_itself(settings):
    settings.KEQUN_JOURNEY_POLL_SECONDS = 2
    before = timezone.now()
    run_journeys_task.call()
    [token] = queued_chains()
    queued = DBTaskResult.objects.get(task_path=TASK_PATH, status="READY")
    assert queued.run_after >= before + timedelta(seconds=2)
    # The next scheduled pass (or another worker's) sees a live chain and starts none.
    run_journeys_task.call()
    assert queued_chains() == [token]
    DBTaskResult.objects.all().delete()
    run_journeys_task.call(chain=token)
    assert queued_chains() == [token]


def test_a_dead_chain_is_replaced_and_stops_if_it_comes_back():
    old = take_chain("")
    assert old and take_chain("") == ""
    RunnerCursor.objects.filter(name=CHAIN).update(moment=timezone.now() - LEASE - timedelta(1))
    new = take_chain("")
    assert new and new != old
    assert take_chain(old) == ""  # the old chain's late pass ends it
    assert take_chain(new) == new


def test_no_chain_when_quick_passes_are_off(settings):
    settings.KEQUN_JOURNEY_POLL_SECONDS = 0
    run_journeys_task.call()
    assert queued_chains() == []
