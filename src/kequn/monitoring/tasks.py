"""Monitoring jobs run by `kequn worker`."""

from __future__ import annotations

from django_tasks import task

from kequn.monitoring.services import evaluate_rules
from kequn.security.actors import system_actor


@task()
def evaluate_alerts_task() -> dict:
    """Run the security alert rules (scheduled every five minutes by `kequn worker`)."""
    raised = evaluate_rules(by=system_actor("security-alerts"))
    return {"raised": [alert.pk for alert in raised]}
