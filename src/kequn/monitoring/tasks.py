"""Monitoring jobs run by `kequn worker`."""

from __future__ import annotations

import time

from django.db import transaction
from django.utils import timezone
from django_tasks import task

from kequn.monitoring.models import RuleState
from kequn.monitoring.services import evaluate_rules
from kequn.security.actors import system_actor


@task()
def evaluate_alerts_task() -> dict:
    """Run the security alert rules (scheduled every five minutes by `kequn worker`)."""
    raised = evaluate_rules(by=system_actor("security-alerts"))
    return {"raised": [alert.pk for alert in raised]}


@task()
def probe_task(seconds: float = 0.0, marker: str = "probe") -> int:
    """Wait, then count one completed run under marker (a canary for workers and fault tests)."""
    time.sleep(max(0.0, min(seconds, 600.0)))
    with transaction.atomic():
        state, _created = RuleState.objects.select_for_update().get_or_create(
            rule=f"probe:{marker}"[:40]
        )
        state.data = {"runs": int(state.data.get("runs", 0)) + 1}
        state.last_run_at = timezone.now()
        state.save()
    return state.data["runs"]
