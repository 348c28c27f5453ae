"""Keep the built-in schedules in the database and enqueue the tasks that are due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.utils import timezone
from django.utils.module_loading import import_string

from kequn.ingest.stale import fail_stale_runs
from kequn.jobs.models import Schedule


@dataclass(frozen=True)
class ScheduleSpec:
    task_path: str
    interval_minutes: int
    first_run_at_local: time


# The schedules every installation has; operators may change interval or disable them.
DEFAULT_SCHEDULES = {
    # Segments and the dashboard are built on the scores, so one task refreshes them in order.
    "analytics-refresh": ScheduleSpec("kequn.jobs.tasks.nightly_refresh_task", 24 * 60, time(3)),
    "recommendations-train": ScheduleSpec(
        "kequn.recommend.tasks.train_recommendations_task", 24 * 60, time(4)
    ),
    "dashboard-weekly-report": ScheduleSpec(
        "kequn.dashboard.tasks.write_weekly_report_task", 7 * 24 * 60, time(6)
    ),
    # Pending points released, expired points cleared, "points expiring" journeys started.
    "loyalty-nightly": ScheduleSpec("kequn.loyalty.tasks.nightly_loyalty_task", 24 * 60, time(1)),
    # Before the analytics refresh, so the snapshot is taken while the database is quiet.
    "database-backup": ScheduleSpec("kequn.security.tasks.nightly_backup_task", 24 * 60, time(2)),
    # Sales: idle accounts back to the lead pool (owners warned first), forecast snapshot.
    "sales-nightly": ScheduleSpec("kequn.sales.tasks.nightly_sales_task", 24 * 60, time(1)),
    "sales-reminders": ScheduleSpec("kequn.sales.tasks.send_reminders_task", 15, time(0)),
    # Journeys: a pass a minute, keeping a chain of quick passes going (kequn.journeys.tasks).
    "journeys-run": ScheduleSpec("kequn.journeys.tasks.run_journeys_task", 1, time(0)),
    # Surveys a few days after an order (hourly), and the comments' topics (nightly).
    "feedback-order-surveys": ScheduleSpec(
        "kequn.feedback.tasks.invite_after_orders_task", 60, time(0)
    ),
    "feedback-topics": ScheduleSpec("kequn.feedback.tasks.analyse_topics_task", 24 * 60, time(5)),
    # Service: SLA warnings and breaches (every 5 minutes), the inbound mailbox (every 2).
    "service-sla-check": ScheduleSpec("kequn.service.tasks.sla_check_task", 5, time(0)),
    "service-fetch-mail": ScheduleSpec("kequn.service.tasks.fetch_mail_task", 2, time(0)),
    # Security alert rules (kequn.monitoring), every five minutes from the next midnight.
    "security-alerts": ScheduleSpec("kequn.monitoring.tasks.evaluate_alerts_task", 5, time(0)),
}


def next_local_time(at: time, now: datetime | None = None) -> datetime:
    """Return the next moment at the given local wall-clock time."""
    now = timezone.localtime(now or timezone.now())
    candidate = now.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    return candidate if candidate > now else candidate + timedelta(days=1)


def install_default_schedules() -> None:
    """Create missing built-in schedules (existing ones keep the operator's settings)."""
    for name, spec in DEFAULT_SCHEDULES.items():
        Schedule.objects.get_or_create(
            name=name,
            defaults={
                "task_path": spec.task_path,
                "interval_minutes": spec.interval_minutes,
                "next_run_at": next_local_time(spec.first_run_at_local),
            },
        )


def fire_due_schedules(now: datetime | None = None) -> list[str]:
    """Enqueue each due task once, even with several workers; return the names fired."""
    now = now or timezone.now()
    fired = []
    fail_stale_runs(now)  # each scheduler pass also closes imports whose process died
    for schedule in Schedule.objects.filter(enabled=True, next_run_at__lte=now):
        step = timedelta(minutes=max(schedule.interval_minutes, 1))
        following = schedule.next_run_at + step
        if following <= now:  # the worker was down: run once now, keep the wall-clock rhythm
            following += step * ((now - following) // step + 1)
        # Compare-and-set on next_run_at: only one worker wins the update and enqueues.
        won = Schedule.objects.filter(pk=schedule.pk, next_run_at=schedule.next_run_at).update(
            next_run_at=following, last_enqueued_at=now
        )
        if won:
            import_string(schedule.task_path).enqueue()
            fired.append(schedule.name)
    return fired
