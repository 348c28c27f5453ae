"""Follow-ups end to end: the pool's warning reaches the owner by email, reminders survive a
mail server that is down, and recurring tasks repeat however they are marked done."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta

import pytest
from django.core import mail
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import timezone, translation

from kequn.jobs.services import DEFAULT_SCHEDULES
from kequn.sales import services
from kequn.sales.models import AccountProfile, PoolEvent, PoolSettings, Task
from kequn.sales.tasks import nightly_sales_task, send_reminders_task
from tests.sales.helpers import SYSTEM, make_account, make_rep

pytestmark = pytest.mark.django_db
HOME_BOX = Template("{% load sales %}{% overdue_tasks %}")


def home_box(user) -> str:
    request = RequestFactory().get("/admin/")
    request.user = user
    with translation.override("en"):
        return HOME_BOX.render(Context({"request": request}))


def test_the_worker_warns_the_owner_by_email_before_the_account_returns():
    assert DEFAULT_SCHEDULES["sales-nightly"].task_path == "kequn.sales.tasks.nightly_sales_task"
    assert DEFAULT_SCHEDULES["sales-reminders"].interval_minutes == 15
    PoolSettings.objects.create(idle_days=30, warn_days=7)
    rep = make_rep()
    account = make_account(rep, name="深圳远航通讯器材有限公司")
    quiet_since = timezone.now() - timedelta(days=25)
    AccountProfile.objects.filter(customer=account).update(last_activity_at=quiet_since)

    assert nightly_sales_task.call()["warned"] == 1  # what the worker runs at 01:00
    assert send_reminders_task.call() == 1  # and every 15 minutes
    [message] = mail.outbox
    assert message.to == ["rep@example.com"] and account.name in message.subject
    returns_on = timezone.localdate(quiet_since + timedelta(days=30)).isoformat()
    assert f"returns to the lead pool on {returns_on}" in message.body
    assert "Follow up 深圳远航" in home_box(rep)  # shown in the back office too

    # The next night and the next reminder run add nothing.
    assert nightly_sales_task.call()["warned"] == 0
    assert send_reminders_task.call() == 0 and len(mail.outbox) == 1
    # Still quiet on the return day: back to the pool, with the history kept.
    result = services.reclaim_idle_accounts(
        by=SYSTEM, now=quiet_since + timedelta(days=30, hours=1)
    )
    assert result.returned == [account.pk]
    kinds = (
        PoolEvent.objects.filter(account=account)
        .order_by("at", "id")
        .values_list("kind", flat=True)
    )
    assert list(kinds) == ["warned", "reclaimed"]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the socket is closed


def test_a_reminder_the_mail_server_cannot_take_is_sent_at_the_next_run(settings):
    rep = make_rep()
    now = timezone.now()
    task = services.create_task(
        by=rep, title="回访报价", due_at=now + timedelta(hours=2), remind_at=now
    )
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port(), 2
    assert services.send_due_reminders(by=SYSTEM, now=now) == 0
    task.refresh_from_db()
    assert task.reminded_at is None  # not lost: tried again
    assert "回访报价" in home_box(rep)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert services.send_due_reminders(by=SYSTEM, now=now) == 1
    assert services.send_due_reminders(by=SYSTEM, now=now) == 0
    assert [m.subject for m in mail.outbox] == ["[Kequn] 回访报价"]


def test_a_task_marked_done_in_its_form_repeats_and_a_moved_reminder_goes_again():
    rep = make_rep()
    now = timezone.now()
    due = now + timedelta(hours=3)
    task = services.create_task(
        by=rep, title="每周例会", due_at=due, remind_at=now, recurrence="weekly"
    )
    assert services.send_due_reminders(by=SYSTEM, now=now) == 1
    task.refresh_from_db()
    task.remind_at = now + timedelta(hours=1)  # the rep asks to be reminded again later
    assert services.save_task(task, by=rep) is None
    assert services.send_due_reminders(by=SYSTEM, now=now + timedelta(hours=1)) == 1
    task.refresh_from_db()
    task.done_at = now + timedelta(hours=2)
    following = services.save_task(task, by=rep)
    assert following is not None and following.due_at == due + timedelta(weeks=1)
    assert following.remind_at == following.due_at - timedelta(hours=2)
    assert Task.objects.filter(done_at__isnull=True).get() == following


def test_a_late_recurring_task_skips_the_occurrences_it_missed():
    rep = make_rep()
    now = timezone.now()
    daily = services.create_task(
        by=SYSTEM,
        owner=rep,
        title="日报",
        due_at=now - timedelta(days=3, hours=1),
        recurrence="daily",
    )
    following = services.complete_task(daily, by=rep, at=now)
    assert following is not None
    assert following.due_at == daily.due_at + timedelta(days=4)  # tomorrow, not three days ago
    tz = timezone.get_current_timezone()
    month_end = datetime(2026, 1, 31, 9, tzinfo=tz)
    monthly = services.create_task(
        by=SYSTEM, owner=rep, title="月结", due_at=month_end, recurrence="monthly"
    )
    late = services.complete_task(monthly, by=rep, at=datetime(2026, 3, 15, tzinfo=tz))
    assert late is not None and timezone.localtime(late.due_at).date().isoformat() == "2026-03-31"
