"""Background jobs of the feedback app (run by `kequn worker`)."""

from __future__ import annotations

from django_tasks import task

from kequn.feedback.services import analyse_topics, invite_after_orders
from kequn.security.actors import system_actor


@task()
def invite_after_orders_task() -> dict[str, int]:
    """Ask the customers of orders placed a survey's delay ago (hourly; once per order)."""
    return dict(invite_after_orders(by=system_actor("feedback-order-surveys")))


@task()
def analyse_topics_task() -> int:
    """Group the year's comments into topics (nightly)."""
    return len(analyse_topics(by=system_actor("feedback-topics")))
