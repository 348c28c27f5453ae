"""Schedules are fired once per due time, even by several workers, and keep their rhythm."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from kequn.jobs.models import Schedule
from kequn.jobs.services import fire_due_schedules, install_default_schedules


@pytest.mark.django_db
def test_default_schedules_are_installed_once_and_keep_operator_changes():
    install_default_schedules()
    schedule = Schedule.objects.get(name="analytics-refresh")
    assert schedule.interval_minutes == 24 * 60
    assert schedule.next_run_at > timezone.now()
    schedule.interval_minutes = 60
    schedule.save()
    install_default_schedules()
    assert Schedule.objects.get(name="analytics-refresh").interval_minutes == 60


@pytest.mark.django_db
def test_due_schedule_is_enqueued_once_and_moves_on():
    install_default_schedules()
    now = timezone.now()
    Schedule.objects.filter(name="analytics-refresh").update(next_run_at=now - timedelta(minutes=1))
    assert fire_due_schedules(now) == ["analytics-refresh"]
    assert fire_due_schedules(now) == []  # a second worker at the same moment fires nothing
    assert DBTaskResult.objects.filter(task_path__endswith="nightly_refresh_task").count() == 1
    schedule = Schedule.objects.get(name="analytics-refresh")
    assert now < schedule.next_run_at <= now + timedelta(days=1)


@pytest.mark.django_db
def test_missed_runs_fire_once_and_keep_the_wall_clock_time():
    install_default_schedules()
    now = timezone.now()
    due = now - timedelta(days=3, hours=2)
    Schedule.objects.filter(name="analytics-refresh").update(next_run_at=due)
    assert fire_due_schedules(now) == ["analytics-refresh"]
    schedule = Schedule.objects.get(name="analytics-refresh")
    assert schedule.next_run_at > now
    assert (schedule.next_run_at - due) % timedelta(days=1) == timedelta(0)
    assert DBTaskResult.objects.count() == 1


@pytest.mark.django_db
def test_disabled_schedule_is_not_fired():
    install_default_schedules()
    Schedule.objects.update(next_run_at=timezone.now() - timedelta(hours=1), enabled=False)
    assert fire_due_schedules() == []
