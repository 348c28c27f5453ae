"""One pass of the journeys runner: read what happened, enrol, and move due customers on."""

from __future__ import annotations

import logging
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from kequn.journeys import triggers
from kequn.journeys.models import RunnerCursor
from kequn.journeys.services import run_due
from kequn.security.actors import Actor

logger = logging.getLogger(__name__)

# A chain of quick passes that has not renewed its lease for this long is dead (a killed
# worker): the next scheduled pass starts a new one.
LEASE = timedelta(seconds=60)
CHAIN = "chain"


@dataclass
class PassResult:
    events: int = 0
    stages: int = 0
    segments: int = 0
    first_purchases: int = 0
    dates: int | None = None
    moved: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Return the counts as a dict (a task's result)."""
        return asdict(self)


def run_pass(*, by: Actor, now: datetime | None = None, budget_seconds: float = 20) -> PassResult:
    """Poll the triggers, run the daily date triggers when due, then move due enrollments on."""
    now = now or timezone.now()
    result = PassResult()
    polls = (
        ("events", triggers.poll_events),
        ("stages", triggers.poll_stage_changes),
        ("segments", triggers.poll_segment_changes),
        ("first_purchases", triggers.poll_orders),
    )
    for name, poll in polls:
        try:
            setattr(result, name, poll(now=now, by=by))
        except Exception:  # one broken poll must not stop the others or the runner
            logger.exception("journeys: polling %s failed", name)
    try:
        result.dates = triggers.run_daily(now=now, by=by)
    except Exception:
        logger.exception("journeys: the date triggers failed")
    result.moved = run_due(by=by, budget_seconds=budget_seconds)
    return result


def take_chain(token: str, *, now: datetime | None = None) -> str:
    """Return the token of the chain of quick passes this pass may continue, or "" to stop.

    A chain holds the lease while it renews it; a pass without a token (the scheduled one)
    starts a new chain only when the lease has run out, so several workers keep one chain.
    """
    now = now or timezone.now()
    cursor, _created = RunnerCursor.objects.get_or_create(name=CHAIN)
    if token and cursor.token == token:
        renewed = RunnerCursor.objects.filter(pk=cursor.pk, token=token).update(moment=now)
        return token if renewed else ""
    if cursor.moment is not None and cursor.moment > now - LEASE and cursor.token:
        return ""  # a live chain holds it
    fresh = secrets.token_hex(8)
    won = RunnerCursor.objects.filter(
        pk=cursor.pk, token=cursor.token, moment=cursor.moment
    ).update(token=fresh, moment=now)
    return fresh if won else ""


def stop_chain() -> None:
    """End the chain of quick passes (it stops at its next pass)."""
    RunnerCursor.objects.filter(name=CHAIN).update(token="", moment=None)
