"""Reads of tickets: lists, the customer beside a ticket, SLA and response-time reports."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from statistics import median
from typing import Any

from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Q, QuerySet

from kequn.service.models import OPEN_STATUSES, SlaEvent, Ticket

# Sort keys the list offers (API ?sort=, benchmark): each one rides an index with the filters.
SORTS = {
    "-opened_at": ("-opened_at", "-id"),
    "opened_at": ("opened_at", "id"),
    "next_due": ("next_due", "id"),
    "-priority": ("-priority", "-opened_at", "-id"),
}


def filter_tickets(
    queryset: QuerySet[Ticket],
    *,
    status: str | None = None,
    priority: str | None = None,
    type: str | None = None,
    queue_id: int | None = None,
    assignee_id: int | None = None,
    customer_id: int | None = None,
    sla_state: str | None = None,
    is_open: bool | None = None,
) -> QuerySet[Ticket]:
    """Return the tickets matching every filter given."""
    conditions: dict[str, Any] = {}
    for name, value in (
        ("status", status),
        ("priority", priority),
        ("type", type),
        ("queue_id", queue_id),
        ("assignee_id", assignee_id),
        ("customer_id", customer_id),
        ("sla_state", sla_state),
    ):
        if value not in (None, ""):
            conditions[name] = value
    queryset = queryset.filter(**conditions)
    if is_open is True:
        queryset = queryset.filter(status__in=OPEN_STATUSES)
    elif is_open is False:
        queryset = queryset.exclude(status__in=OPEN_STATUSES)
    return queryset


def get_customer_tickets(customer_id: int, limit: int = 20) -> list[Ticket]:
    """Return a customer's open tickets first, then the latest others (at most `limit`)."""
    rows = Ticket.objects.filter(customer_id=customer_id).only(
        "id", "subject", "type", "status", "opened_at", "sla_state", "customer_id"
    )
    open_ = list(rows.filter(status__in=OPEN_STATUSES).order_by("-opened_at")[:limit])
    rest = list(rows.exclude(status__in=OPEN_STATUSES).order_by("-opened_at")[: limit - len(open_)])
    return open_ + rest


def get_customer_summary(customer_id: int | None) -> dict[str, Any]:
    """Return what an agent sees beside a ticket: value, stage, recent orders, open tickets."""
    if customer_id is None:
        return {}
    from kequn.commerce.models import Order  # noqa: PLC0415 -- read only for this side panel
    from kequn.scoring.models import CustomerScore  # noqa: PLC0415 -- read only for this side panel

    score = CustomerScore.objects.filter(customer_id=customer_id).first()
    orders = list(
        Order.objects.filter(customer_id=customer_id)
        .order_by("-ordered_at")
        .only("id", "number", "status", "total_amount", "currency", "ordered_at")[:5]
    )
    return {
        "score": score,
        "clv": score.clv if score else None,
        "revenue": score.revenue if score else None,
        "stage": score.get_lifecycle_stage_display() if score and score.lifecycle_stage else "",
        "orders": orders,
        "open_tickets": Ticket.objects.filter(
            customer_id=customer_id, status__in=OPEN_STATUSES
        ).count(),
    }


@dataclass(frozen=True)
class SlaReport:
    tickets: int
    first_response_met: int
    first_response_missed: int
    resolution_met: int
    resolution_missed: int
    median_first_response_hours: float | None
    median_resolution_hours: float | None
    by_priority: list[dict[str, Any]]

    @property
    def first_response_rate(self) -> float | None:
        """Return the share of first responses on time (None without any)."""
        total = self.first_response_met + self.first_response_missed
        return self.first_response_met / total if total else None

    @property
    def resolution_rate(self) -> float | None:
        """Return the share of resolutions on time (None without any)."""
        total = self.resolution_met + self.resolution_missed
        return self.resolution_met / total if total else None


def compute_sla_report(
    since: dt.datetime | None = None, until: dt.datetime | None = None
) -> SlaReport:
    """Return SLA compliance and first-response and resolution times of tickets opened then."""
    tickets = Ticket.objects.filter(merged_into__isnull=True)
    if since:
        tickets = tickets.filter(opened_at__gte=since)
    if until:
        tickets = tickets.filter(opened_at__lt=until)
    events = SlaEvent.objects.filter(ticket__in=tickets, kind__in=["met", "breach"])
    counts = {
        (row["target"], row["kind"]): row["n"]
        for row in events.values("target", "kind").annotate(n=Count("id"))
    }
    # A deadline missed while still open is a breach too (recorded by the SLA check).
    first_times, resolution_times = [], []
    for opened, responded, resolved in tickets.values_list(
        "opened_at", "first_responded_at", "resolved_at"
    ).iterator(chunk_size=5000):
        if responded:
            first_times.append((responded - opened).total_seconds() / 3600)
        if resolved:
            resolution_times.append((resolved - opened).total_seconds() / 3600)
    by_priority = list(
        tickets.values("priority")
        .annotate(
            tickets=Count("id"),
            breached=Count("id", filter=Q(sla_events__kind="breach"), distinct=True),
        )
        .order_by("priority")
    )
    return SlaReport(
        tickets=tickets.count(),
        first_response_met=counts.get(("first_response", "met"), 0),
        first_response_missed=counts.get(("first_response", "breach"), 0),
        resolution_met=counts.get(("resolution", "met"), 0),
        resolution_missed=counts.get(("resolution", "breach"), 0),
        median_first_response_hours=round(median(first_times), 2) if first_times else None,
        median_resolution_hours=round(median(resolution_times), 2) if resolution_times else None,
        by_priority=[dict(row) for row in by_priority],
    )


PANEL_DAYS = 30


def compute_dashboard(now: dt.datetime, days: int = PANEL_DAYS) -> dict[str, Any]:
    """Return the dashboard panel's figures in a handful of queries.

    SLA compliance and the response and resolution times cover tickets opened in the last
    `days` days; open tickets and current breaches are counted by queue as they stand now.
    """
    since = now - dt.timedelta(days=days)
    recent = Ticket.objects.filter(merged_into__isnull=True, opened_at__gte=since)
    hours = dt.timedelta(hours=1)
    times = recent.aggregate(
        tickets=Count("id"),
        first_response=Avg(
            ExpressionWrapper(
                F("first_responded_at") - F("opened_at"), output_field=DurationField()
            )
        ),
        resolution=Avg(
            ExpressionWrapper(F("resolved_at") - F("opened_at"), output_field=DurationField())
        ),
    )
    # Without recent tickets there are no outcomes to count (one query fewer on the home page).
    counts = {
        (row["target"], row["kind"]): row["n"]
        for row in (SlaEvent.objects.none() if not times["tickets"] else SlaEvent.objects)
        .filter(
            ticket__in=recent,
            kind__in=[SlaEvent.Kind.MET, SlaEvent.Kind.BREACH],
            target__in=[SlaEvent.Target.FIRST_RESPONSE, SlaEvent.Target.RESOLUTION],
        )
        .values("target", "kind")
        .annotate(n=Count("id"))
    }

    def rate(target: str) -> float | None:
        met, missed = counts.get((target, "met"), 0), counts.get((target, "breach"), 0)
        return round(100 * met / (met + missed), 1) if met + missed else None

    queues = get_open_by_queue()
    return {
        "days": days,
        "tickets": times["tickets"],
        "first_response_rate": rate(SlaEvent.Target.FIRST_RESPONSE),
        "resolution_rate": rate(SlaEvent.Target.RESOLUTION),
        "breaches": counts.get((SlaEvent.Target.FIRST_RESPONSE, "breach"), 0)
        + counts.get((SlaEvent.Target.RESOLUTION, "breach"), 0),
        "first_response_hours": round(times["first_response"] / hours, 1)
        if times["first_response"] is not None
        else None,
        "resolution_hours": round(times["resolution"] / hours, 1)
        if times["resolution"] is not None
        else None,
        "queues": queues,
        "open": sum(q["open"] for q in queues),
        "breached_now": sum(q["breached"] for q in queues),
    }


def get_open_by_queue() -> list[dict[str, Any]]:
    """Return each queue's open tickets with those due soon and those past a deadline."""
    return [
        {
            "queue": row["queue__name"] or "",
            "queue_id": row["queue_id"],
            "open": row["open"],
            "breached": row["breached"],
            "warning": row["warning"],
        }
        for row in Ticket.objects.filter(status__in=OPEN_STATUSES, merged_into__isnull=True)
        .values("queue_id", "queue__name")
        .annotate(
            open=Count("id"),
            breached=Count("id", filter=Q(sla_state="breached")),
            warning=Count("id", filter=Q(sla_state="warning")),
        )
        .order_by("-open", "queue__name")
    ]
