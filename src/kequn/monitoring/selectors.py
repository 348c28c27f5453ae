"""Monitoring reads: the job queue, alerts for the list, the badge and the command line."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Min, QuerySet
from django_tasks_db.models import DBTaskResult

from kequn.monitoring.models import Alert


def get_queue_state() -> tuple[int, datetime | None]:
    """Return how many jobs wait for a worker and when the oldest of them was enqueued."""
    row = DBTaskResult.objects.ready().aggregate(n=Count("id"), oldest=Min("enqueued_at"))
    return row["n"], row["oldest"]


def get_unresolved_alerts() -> QuerySet[Alert]:
    """Return the alerts still open or acknowledged, newest first."""
    return Alert.objects.exclude(status=Alert.Status.RESOLVED)


def list_alerts(status: str | None = None) -> QuerySet[Alert]:
    """Return alerts, newest first, optionally only those in one status."""
    alerts = Alert.objects.all()
    return alerts.filter(status=status) if status else alerts


def count_open_alerts(cap: int = 99) -> int:
    """Return how many alerts nobody has acknowledged yet, counting at most cap + 1.

    Every back-office page draws the badge: reading a few ids is bounded where COUNT(*)
    over a table that grows is not (and the big lists promise no count).
    """
    open_ids = Alert.objects.filter(status=Alert.Status.OPEN).values_list("pk", flat=True)
    return len(open_ids[: cap + 1])
