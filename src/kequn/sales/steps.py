"""The journey step sales offers: create a follow-up task for the customer's owner."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.utils.translation import gettext_lazy as _

from kequn.customers.models import Customer
from kequn.journeys.registry import StepContext, StepResult
from kequn.sales.models import Task

LABEL = _("Create a sales task")
CONFIG_FIELDS = {"title": _("task title"), "due_days": _("due in days")}


def check_step_config(config: Mapping[str, Any]) -> list[str]:
    """Return what is wrong with a step's settings (empty when fine)."""
    problems = []
    if not str(config.get("title", "")).strip():
        problems.append("title: give the task a title")
    try:
        if int(config.get("due_days", 1)) < 0:
            problems.append("due_days: must be 0 or more")
    except (TypeError, ValueError):
        problems.append("due_days: must be a whole number of days")
    return problems


def run_create_task_step(context: StepContext) -> StepResult:
    """Create the task once per enrollment (keyed by its dedupe key) for the customer's owner."""
    customer = Customer.objects.filter(pk=context.customer_id).only("id", "owner_id").first()
    if customer is None or customer.owner_id is None:
        return StepResult(detail={"task": None, "why": "no owner"})
    ref = f"journey:{context.dedupe_key}"[:200]
    task = Task.objects.filter(notes=ref, owner_id=customer.owner_id).first()
    if task is None:
        days = int(context.config.get("due_days", 1) or 0)
        task = Task.objects.create(
            title=str(context.config.get("title") or "Follow up")[:200],
            notes=ref,
            due_at=context.now + timedelta(days=days),
            owner_id=customer.owner_id,
            account_id=customer.pk,
        )
    return StepResult(detail={"task": task.pk})
