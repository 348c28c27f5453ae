"""Imports that died: a run whose process was killed must not stay "running" for ever.

A running import touches a heartbeat file (<data dir>/imports/run-<id>.alive) after every
batch. A run still marked running whose heartbeat (or, without one, whose start) is older than
KEQUN_IMPORT_STALE_MINUTES (default 15) is marked failed, with an audit entry, by the next
import, the next look at the import list, or the worker's next scheduler pass. Batches it
committed stay imported; running the same file again finishes it (imports are idempotent).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from kequn.conf import read_env
from kequn.ingest.models import ImportRun
from kequn.security.audit import services as audit

DEFAULT_STALE_MINUTES = 15


def get_stale_minutes() -> int:
    """Return KEQUN_IMPORT_STALE_MINUTES (at least 1)."""
    try:
        return max(1, int(read_env("KEQUN_IMPORT_STALE_MINUTES", str(DEFAULT_STALE_MINUTES))))
    except ValueError:
        return DEFAULT_STALE_MINUTES


def get_heartbeat_path(run_id: int) -> Path:
    """Return the heartbeat file of one import run."""
    return Path(settings.DATA_DIR) / "imports" / f"run-{int(run_id)}.alive"


def beat(run_id: int) -> None:
    """Say that the import run is alive (touch its heartbeat file)."""
    path = get_heartbeat_path(run_id)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError:
        pass  # without a heartbeat the run's start time counts: it is failed later, not wrongly


def forget(run_id: int) -> None:
    """Remove the heartbeat of a run that ended."""
    get_heartbeat_path(run_id).unlink(missing_ok=True)


def get_last_sign_of_life(run_id: int, started_at: datetime) -> datetime:
    """Return when the run last beat, or its start if it never did."""
    try:
        mtime = get_heartbeat_path(run_id).stat().st_mtime
    except OSError:
        return started_at
    return max(started_at, datetime.fromtimestamp(mtime, tz=timezone.get_current_timezone()))


def fail_stale_runs(now: datetime | None = None) -> int:
    """Mark running imports without a sign of life for the stale period failed; return how many."""
    now = now or timezone.now()
    minutes = get_stale_minutes()
    limit = now - timedelta(minutes=minutes)
    failed = 0
    running = ImportRun.objects.filter(status=ImportRun.Status.RUNNING, started_at__lt=limit)
    for run in running.only("pk", "started_at", "started_by", "kind", "rows_read", "inserted"):
        if get_last_sign_of_life(run.pk, run.started_at) >= limit:
            continue
        error = (
            f"no sign of life for {minutes} minutes: the import was stopped (killed or crashed); "
            "the batches it committed stay imported: import the same file again to finish it"
        )
        with transaction.atomic():
            # Only one pass wins (another process may be failing the same run right now).
            if not ImportRun.objects.filter(pk=run.pk, status=ImportRun.Status.RUNNING).update(
                status=ImportRun.Status.FAILED, error=error, finished_at=now
            ):
                continue
            audit.record_event(
                audit.IMPORT,
                actor=run.started_by,
                target=run,
                detail={
                    "kind": run.kind,
                    "status": ImportRun.Status.FAILED,
                    "stale": True,
                    "rows_read": run.rows_read,
                    "inserted": run.inserted,
                },
            )
        forget(run.pk)
        failed += 1
    return failed
