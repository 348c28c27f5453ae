"""Fast parts of the fault checks (benchmarks/faults.py runs the real kill -9 and outages)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from kequn.jobs.recovery import HOST, is_worker_alive, make_worker_id, recover_abandoned_jobs
from kequn.monitoring.models import RuleState
from kequn.monitoring.tasks import probe_task


def dead_pid() -> int:
    """Return the pid of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def running_job(worker_ids: list[str]) -> DBTaskResult:
    result = probe_task.enqueue(seconds=0, marker="t")
    DBTaskResult.objects.filter(pk=result.id).update(
        status=TaskResultStatus.RUNNING, worker_ids=worker_ids
    )
    return DBTaskResult.objects.get(pk=result.id)


def test_worker_ids_tell_live_dead_and_unknown_workers():
    assert make_worker_id().startswith(f"{HOST}:{os.getpid()}:")
    assert len(make_worker_id()) <= 64
    assert is_worker_alive(make_worker_id()) is True
    assert is_worker_alive(f"{HOST}:{dead_pid()}:abc") is False
    assert is_worker_alive("other-host:1:abc") is None
    assert is_worker_alive("K3j9randomid") is None  # django-tasks' own random ids


@pytest.mark.django_db
def test_a_job_whose_worker_died_is_requeued_once_then_failed():
    dead = f"{HOST}:{dead_pid()}:aaaa"
    alive = running_job([make_worker_id()])
    unknown = running_job(["elsewhere:123:bbbb"])
    orphan = running_job([dead])
    assert recover_abandoned_jobs() == [str(orphan.pk)]
    orphan.refresh_from_db()
    assert orphan.status == TaskResultStatus.READY and orphan.started_at is None
    assert orphan.worker_ids == [dead]  # the attempt is remembered
    for job in (alive, unknown):
        job.refresh_from_db()
        assert job.status == TaskResultStatus.RUNNING
    # The retry's worker dies too: given up, not retried for ever.
    second_dead = f"{HOST}:{dead_pid()}:cccc"
    DBTaskResult.objects.filter(pk=orphan.pk).update(
        status=TaskResultStatus.RUNNING, worker_ids=[dead, second_dead]
    )
    assert recover_abandoned_jobs() == [str(orphan.pk)]
    orphan.refresh_from_db()
    assert orphan.status == TaskResultStatus.FAILED
    assert "died 2 times" in orphan.traceback
    assert recover_abandoned_jobs() == []


@pytest.mark.django_db
def test_probe_job_counts_each_completed_run():
    assert probe_task.call(seconds=0, marker="canary") == 1
    assert probe_task.call(seconds=0, marker="canary") == 2
    assert RuleState.objects.get(rule="probe:canary").data == {"runs": 2}
