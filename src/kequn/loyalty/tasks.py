"""Loyalty's background jobs (django_tasks; `kequn worker` runs them)."""

from __future__ import annotations

from typing import Any

from django_tasks import task

from kequn.loyalty import selectors, services
from kequn.loyalty.integrations import notify_expiring
from kequn.security.actors import system_actor


@task()
def nightly_loyalty_task() -> dict[str, Any]:
    """Earn on order events, finish tier checks, release and expire points, announce, store figures."""
    by = system_actor("loyalty-nightly")
    from_events = services.earn_for_order_events(by=by)
    upgraded = services.run_tier_checks(by=by)  # left by an import that died before its end
    released = services.release_pending(by=by)
    expired = services.expire_points(by=by)
    notified = notify_expiring(by=by)
    selectors.store_dashboard()
    return {
        "order_events": from_events["events"],
        "earned_from_events": from_events["earned"],
        "upgraded_after_imports": upgraded,
        "released": released,
        "expired_points": expired.points,
        "expired_members": expired.members,
        "expiring_notified": notified,
    }
