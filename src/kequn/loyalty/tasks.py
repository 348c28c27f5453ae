"""Loyalty's background jobs (django_tasks; `kequn worker` runs them)."""

from __future__ import annotations

from typing import Any

from django_tasks import task

from kequn.loyalty import services
from kequn.loyalty.integrations import notify_expiring
from kequn.security.actors import system_actor


@task()
def nightly_loyalty_task() -> dict[str, Any]:
    """Release due pending points, expire points past their date, announce points expiring soon."""
    by = system_actor("loyalty-nightly")
    released = services.release_pending(by=by)
    expired = services.expire_points(by=by)
    notified = notify_expiring(by=by)
    return {
        "released": released,
        "expired_points": expired.points,
        "expired_members": expired.members,
        "expiring_notified": notified,
    }
