"""Jobs whose worker died (kill -9, power loss) are run once more, then given up on.

django-tasks' database worker marks a job "running" when it takes it and never looks back,
so a job whose worker was killed stayed "running" for ever. Kequn's workers name themselves
host:pid:random; a running job whose worker on this host has no live process is put back in
the queue (its worker list keeps the dead worker), and a job that lost its worker twice is
marked failed instead of being retried for ever. Jobs are written to be safe to run again
(they commit their work in one transaction, or resume).
"""

from __future__ import annotations

import os
import socket
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.crypto import get_random_string
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

# A job is attempted at most this many times when its workers die under it.
MAX_ATTEMPTS = 2
HOST = socket.gethostname()[:40]


def make_worker_id() -> str:
    """Return this process's worker id: host, pid and a random part (at most 64 characters)."""
    return f"{HOST}:{os.getpid()}:{get_random_string(8)}"


def is_worker_alive(worker_id: str) -> bool | None:
    """Return whether a worker's process lives; None when that cannot be told from here."""
    host, sep, rest = worker_id.partition(":")
    pid_text = rest.split(":", 1)[0]
    if not sep or host != HOST or not pid_text.isdigit():
        return None  # another machine's worker, or a worker started without Kequn's id
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # a live process of another user
    return True


def recover_abandoned_jobs(now: datetime | None = None) -> list[str]:
    """Requeue running jobs whose worker died (once), fail those that lost two; return ids."""
    now = now or timezone.now()
    changed = []
    for job_id, workers in DBTaskResult.objects.running().values_list("id", "worker_ids"):
        if not workers or is_worker_alive(workers[-1]) is not False:
            continue
        with transaction.atomic():
            job = DBTaskResult.objects.select_for_update().filter(pk=job_id).first()
            if job is None or job.status != TaskResultStatus.RUNNING:
                continue
            if len(job.worker_ids) >= MAX_ATTEMPTS:
                job.status = TaskResultStatus.FAILED
                job.finished_at = now
                job.exception_class_path = "kequn.jobs.recovery.WorkerDied"
                job.traceback = (
                    f"WorkerDied: the worker running this job died {len(job.worker_ids)} times "
                    f"({', '.join(job.worker_ids)}); not retried again"
                )
                job.save(
                    update_fields=["status", "finished_at", "exception_class_path", "traceback"]
                )
            else:
                job.status = TaskResultStatus.READY
                job.started_at = None
                job.save(update_fields=["status", "started_at"])
        changed.append(str(job_id))
    return changed
