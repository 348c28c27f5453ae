"""Engagement jobs run by `kequn worker`: the outbox pump (sends, A/B winners, scheduled runs)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from django_tasks import task

from kequn.engage.models import Message
from kequn.engage.services import pump_outbox
from kequn.engage.services.outbox import PENDING, ensure_wakeup, get_lease
from kequn.security.actors import system_actor


@task()
def pump_outbox_task() -> dict[str, Any]:
    """Send the due messages and plan the next pass (idempotent; safe after kill -9)."""
    if Message.objects.filter(status__in=[*PENDING, Message.Status.SENDING]).exists():
        # A watchdog pass: if this worker dies mid-send, the next one resumes after the lease.
        ensure_wakeup(timezone.now() + get_lease())
    return pump_outbox(by=system_actor("engage-outbox"))
