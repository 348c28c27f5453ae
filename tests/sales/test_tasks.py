"""Activities and tasks: visits need a place, recurring tasks repeat, reminders go once by email."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from kequn.sales import selectors, services
from kequn.sales.models import AccountProfile, Task
from tests.sales.helpers import SYSTEM, make_account, make_rep

pytestmark = pytest.mark.django_db


def test_visit_needs_a_location_and_updates_last_activity():
    rep = make_rep()
    account = make_account(rep)
    with pytest.raises(ValidationError, match="location"):
        services.log_activity(
            services.ActivityInput(kind="visit", subject="拜访", account_id=account.pk), by=rep
        )
    when = timezone.now() + timedelta(minutes=1)
    services.log_activity(
        services.ActivityInput(
            kind="visit",
            subject="拜访",
            account_id=account.pk,
            location="深圳南山",
            occurred_at=when,
        ),
        by=rep,
    )
    assert AccountProfile.objects.get(customer=account).last_activity_at == when


def test_activity_on_another_reps_account_is_refused():
    rep, other = make_rep(), make_rep()
    theirs = make_account(other)
    with pytest.raises(ValidationError, match="no such account of yours"):
        services.log_activity(
            services.ActivityInput(kind="call", subject="x", account_id=theirs.pk), by=rep
        )


def test_monthly_task_repeats_on_the_last_day_when_needed():
    rep = make_rep()
    due = datetime(2026, 1, 31, 10, 0, tzinfo=timezone.get_current_timezone())
    task = services.create_task(
        by=rep,
        title="月度回访",
        due_at=due,
        remind_at=due - timedelta(hours=1),
        recurrence="monthly",
    )
    following = services.complete_task(task, by=rep, at=due)  # done on time
    assert following is not None
    assert timezone.localtime(following.due_at).date().isoformat() == "2026-02-28"
    assert following.due_at - following.remind_at == timedelta(hours=1)
    assert services.complete_task(task, by=rep) is None  # done once


def test_reminders_are_sent_once():
    rep = make_rep()
    now = timezone.now()
    services.create_task(by=rep, title="打电话", due_at=now + timedelta(hours=1), remind_at=now)
    assert services.send_due_reminders(by=SYSTEM, now=now) == 1
    assert services.send_due_reminders(by=SYSTEM, now=now) == 0
    assert len(mail.outbox) == 1 and "打电话" in mail.outbox[0].subject


def test_overdue_tasks_are_the_owners_own():
    rep, other = make_rep(), make_rep()
    past = timezone.now() - timedelta(days=1)
    services.create_task(by=SYSTEM, owner=rep, title="逾期", due_at=past)
    services.create_task(by=SYSTEM, owner=other, title="别人的", due_at=past)
    services.create_task(
        by=SYSTEM, owner=rep, title="未来", due_at=timezone.now() + timedelta(days=1)
    )
    assert [t.title for t in selectors.get_overdue_tasks(rep)] == ["逾期"]


def test_reminder_after_due_is_refused():
    rep = make_rep()
    now = timezone.now()
    with pytest.raises(ValidationError, match="remind_at"):
        services.create_task(by=rep, title="x", due_at=now, remind_at=now + timedelta(hours=1))
    assert not Task.objects.exists()


def test_journey_step_creates_one_task_for_the_owner():
    from types import SimpleNamespace

    from kequn.journeys.registry import StepContext, get_step

    rep = make_rep()
    account = make_account(rep)
    step = get_step("sales.create_task")
    assert step is not None
    context = StepContext(
        enrollment=SimpleNamespace(customer_id=account.pk),
        journey=None,
        step={"id": "s1", "kind": "sales.create_task", "config": {"title": "跟进", "due_days": 2}},
        now=timezone.now(),
        by=SYSTEM,
        dedupe_key="j1:e1:s1",
    )
    first = step.handler(context)
    again = step.handler(context)  # a re-run after a crash creates nothing new
    assert first.detail["task"] == again.detail["task"]
    assert Task.objects.get(owner=rep).title == "跟进"
    assert step.check_config({"title": ""}) == ["title: give the task a title"]
