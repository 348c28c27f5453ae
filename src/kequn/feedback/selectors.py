"""Reads for reports: NPS and CSAT over time, response rates, the closed loop's outcome, topics."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from django.db.models import Avg, Count, Q, QuerySet
from django.db.models.functions import TruncMonth
from django.utils import timezone

from kequn.commerce.models import Order, OrderLine
from kequn.feedback.models import FollowUp, Invitation, Response, Survey
from kequn.segments.models import Segment, SegmentMember
from kequn.service.models import Ticket

BREAKDOWN_ROWS = 10


def summarize_scores(responses: QuerySet[Response]) -> dict[str, Any]:
    """Return counts by category, the NPS (promoters % − detractors %) and the mean score."""
    row = responses.aggregate(
        n=Count("id"),
        promoters=Count("id", filter=Q(category="promoter")),
        passives=Count("id", filter=Q(category="passive")),
        detractors=Count("id", filter=Q(category="detractor")),
        happy=Count("id", filter=Q(category="happy")),
        unhappy=Count("id", filter=Q(category="unhappy")),
        mean=Avg("score"),
    )
    nps_n = row["promoters"] + row["passives"] + row["detractors"]
    row["nps"] = round(100 * (row["promoters"] - row["detractors"]) / nps_n, 1) if nps_n else None
    csat_n = responses.filter(survey__kind=Survey.Kind.CSAT).count()
    row["csat_percent"] = (
        round(
            100 * responses.filter(survey__kind=Survey.Kind.CSAT, score__gte=4).count() / csat_n, 1
        )
        if csat_n
        else None
    )
    row["mean"] = round(row["mean"], 2) if row["mean"] is not None else None
    return row


def get_scores_by_month(responses: QuerySet[Response]) -> list[dict[str, Any]]:
    """Return the NPS and mean score of each month, oldest first."""
    months = (
        responses.annotate(month=TruncMonth("answered_at"))
        .values("month")
        .annotate(
            n=Count("id"),
            promoters=Count("id", filter=Q(category="promoter")),
            detractors=Count("id", filter=Q(category="detractor")),
            nps_n=Count("id", filter=Q(survey__kind=Survey.Kind.NPS)),
            mean=Avg("score"),
        )
        .order_by("month")
    )
    return [
        {
            "month": m["month"].date().isoformat()[:7] if m["month"] else "",
            "n": m["n"],
            "nps": round(100 * (m["promoters"] - m["detractors"]) / m["nps_n"], 1)
            if m["nps_n"]
            else None,
            "mean": round(m["mean"], 2) if m["mean"] is not None else None,
        }
        for m in months
    ]


def _score_rows(groups: dict[str, list[tuple[int | None, str]]]) -> list[dict[str, Any]]:
    """Return NPS/CSAT figures per group label, the largest groups first."""
    rows: list[dict[str, Any]] = []
    for label, answers in groups.items():
        nps = [c for _score, c in answers if c in ("promoter", "passive", "detractor")]
        # CSAT 4–5 or CES 1–3 (one survey has one kind)
        csat = [c for _score, c in answers if c in ("happy", "neutral", "unhappy")]
        scores = [score for score, _c in answers if score is not None]
        rows.append(
            {
                "label": label,
                "n": len(answers),
                "nps": _nps(nps.count("promoter"), nps.count("detractor"), len(nps)),
                "satisfied_percent": _percent(csat.count("happy"), len(csat)),
                "mean": round(sum(scores) / len(scores), 2) if scores else None,
            }
        )
    rows.sort(key=lambda row: (-row["n"], row["label"]))
    return rows[:BREAKDOWN_ROWS]


def get_scores_by(responses: QuerySet[Response]) -> dict[str, list[dict[str, Any]]]:
    """Return NPS, the satisfied share and mean score by store, product, agent and segment.

    An answer counts for the store and products of the order it was asked about, the agent
    of the ticket it was asked about, and every named segment its customer belongs to.
    """
    answers = list(responses.values_list("score", "category", "invitation__about", "customer_id"))
    orders: dict[int, list[int]] = {}
    tickets: dict[int, list[int]] = {}
    for n, (_score, _category, about, _customer) in enumerate(answers):
        kind, _sep, ref = (about or "").partition(":")
        if ref.isdigit() and kind in ("order", "ticket"):
            (orders if kind == "order" else tickets).setdefault(int(ref), []).append(n)
    by: dict[str, dict[str, list[tuple[int | None, str]]]] = {
        "store": {},
        "product": {},
        "agent": {},
        "segment": {},
    }

    def add(dimension: str, label: str, n: int) -> None:
        score, category = answers[n][0], answers[n][1]
        by[dimension].setdefault(label, []).append((score, category))

    for order_id, store in Order.objects.filter(pk__in=orders, channel__isnull=False).values_list(
        "pk", "channel__name"
    ):
        for n in orders[order_id]:
            add("store", store, n)
    seen: set[tuple[int, str]] = set()
    for order_id, product in OrderLine.objects.filter(order_id__in=orders).values_list(
        "order_id", "product__name"
    ):
        if (order_id, product) not in seen:  # two lines of one product count the answer once
            seen.add((order_id, product))
            for n in orders[order_id]:
                add("product", product, n)
    for ticket_id, agent in Ticket.objects.filter(
        pk__in=tickets, assignee__isnull=False
    ).values_list("pk", "assignee__username"):
        for n in tickets[ticket_id]:
            add("agent", agent, n)
    customers: dict[int, list[int]] = {}
    for n, answer in enumerate(answers):
        customers.setdefault(answer[3], []).append(n)
    names = dict(Segment.objects.values_list("pk", "name"))
    for segment_id, customer_id in SegmentMember.objects.filter(
        customer_id__in=customers
    ).values_list("segment_id", "customer_id"):
        for n in customers[customer_id]:
            add("segment", names.get(segment_id, str(segment_id)), n)
    return {dimension: _score_rows(groups) for dimension, groups in by.items()}


def get_response_rate(survey: Survey) -> dict[str, Any]:
    """Return invitations made, sent and answered, and the answered share of those sent."""
    row = Invitation.objects.filter(survey=survey).aggregate(
        invited=Count("id"),
        sent=Count("id", filter=Q(sent_at__isnull=False)),
        answered=Count("id", filter=Q(answered_at__isnull=False)),
    )
    base = row["sent"] or row["invited"]
    row["rate"] = round(100 * row["answered"] / base, 1) if base else None
    return row


def get_loop_outcome(survey: Survey | None = None) -> dict[str, Any]:
    """Return the closed loop's numbers: follow-ups open, resolved, late, and whether it worked.

    "Worked" compares a followed-up customer's next answer (any later response) with the poor
    one: recovered when the later answer is no longer poor.
    """
    follow_ups = FollowUp.objects.select_related("response")
    if survey is not None:
        follow_ups = follow_ups.filter(response__survey=survey)
    rows = list(follow_ups)
    resolved = [f for f in rows if f.status == FollowUp.Status.RESOLVED]
    late = sum(1 for f in resolved if f.resolved_at and f.resolved_at > f.due_at)
    customers = {f.response.customer_id: f.response.answered_at for f in resolved}
    later: dict[int, str] = {}
    for customer_id, category, answered_at in (
        Response.objects.filter(customer_id__in=list(customers))
        .order_by("answered_at")
        .values_list("customer_id", "category", "answered_at")
    ):
        if answered_at > customers[customer_id] and customer_id not in later:
            later[customer_id] = category
    outcome = Counter(
        "poor" if c in ("detractor", "unhappy") else "recovered" for c in later.values()
    )
    return {
        "open": len(rows) - len(resolved),
        "resolved": len(resolved),
        "resolved_late": late,
        "answered_again": len(later),
        "recovered": outcome["recovered"],
        "still_poor": outcome["poor"],
    }


def get_top_topics(responses: QuerySet[Response], limit: int = 10) -> list[dict[str, Any]]:
    """Return the topics of poor answers, most frequent first, with up to three example comments."""
    poor = responses.filter(category__in=["detractor", "unhappy"]).exclude(topic="")
    topics = poor.values("topic").annotate(n=Count("id")).order_by("-n", "topic")[:limit]
    result = []
    for topic in topics:
        examples = list(
            poor.filter(topic=topic["topic"])
            .order_by("-answered_at")
            .values_list("comment", flat=True)[:3]
        )
        result.append({"topic": topic["topic"], "n": topic["n"], "examples": examples})
    return result


def get_last_scores(customer_ids: list[int]) -> dict[int, Response]:
    """Return each customer's latest answer."""
    latest: dict[int, Response] = {}
    for response in (
        Response.objects.filter(customer_id__in=customer_ids)
        .select_related("survey")
        .order_by("answered_at", "id")
    ):
        latest[response.customer_id] = response
    return latest


PANEL_MONTHS = 6
PANEL_TOPICS = 3


def _months_back(now: dt.datetime, months: int) -> dt.datetime:
    """Return the local start of the month `months - 1` months before now's."""
    local = timezone.localtime(now)
    index = local.year * 12 + local.month - 1 - (months - 1)
    return local.replace(
        year=index // 12, month=index % 12 + 1, day=1, hour=0, minute=0, second=0, microsecond=0
    )


def compute_dashboard(now: dt.datetime, months: int = PANEL_MONTHS) -> dict[str, Any]:
    """Return the dashboard panel's figures: NPS and CSAT by month, response rate, topics."""
    since = _months_back(now, months)
    responses = Response.objects.filter(answered_at__gte=since)
    rows = (
        responses.annotate(month=TruncMonth("answered_at"))
        .values("month")
        .annotate(
            promoters=Count("id", filter=Q(category="promoter")),
            detractors=Count("id", filter=Q(category="detractor")),
            nps_n=Count("id", filter=Q(survey__kind=Survey.Kind.NPS)),
            happy=Count("id", filter=Q(survey__kind=Survey.Kind.CSAT, score__gte=4)),
            csat_n=Count("id", filter=Q(survey__kind=Survey.Kind.CSAT)),
        )
        .order_by("month")
    )
    by_month: dict[str, dict[str, Any]] = {
        row["month"].date().isoformat()[:7]: dict(row) for row in rows if row["month"]
    }
    month_rows, totals = [], Counter[str]()
    for offset in range(months):
        index = since.year * 12 + since.month - 1 + offset
        key = f"{index // 12:04d}-{index % 12 + 1:02d}"
        row: dict[str, Any] = by_month.get(key, {})
        for name in ("promoters", "detractors", "nps_n", "happy", "csat_n"):
            totals[name] += row.get(name, 0)
        month_rows.append(
            {
                "month": key,
                "nps_n": row.get("nps_n", 0),
                "nps": _nps(row.get("promoters", 0), row.get("detractors", 0), row.get("nps_n", 0)),
                "csat_n": row.get("csat_n", 0),
                "csat": _percent(row.get("happy", 0), row.get("csat_n", 0)),
            }
        )
    invitations = Invitation.objects.filter(created_at__gte=since).aggregate(
        invited=Count("id"),
        sent=Count("id", filter=Q(sent_at__isnull=False)),
        answered=Count("id", filter=Q(answered_at__isnull=False)),
    )
    # Invitations handed out by hand (no channel) count as sent, as in get_response_rate.
    invitations["sent"] = invitations["sent"] or invitations["invited"]
    poor = responses.filter(category__in=["detractor", "unhappy"]).exclude(topic="")
    # Each query below is skipped when the one before found nothing (the home page's budget).
    topics = (
        list(poor.values("topic").annotate(n=Count("id")).order_by("-n", "topic")[:PANEL_TOPICS])
        if totals["nps_n"] + totals["csat_n"] or by_month
        else []
    )
    examples: dict[str, str] = {}
    chosen = poor.none() if not topics else poor.filter(topic__in=[t["topic"] for t in topics])
    for topic, comment in (
        chosen.exclude(comment="")
        .order_by("-answered_at", "-id")
        .values_list("topic", "comment")[:200]
    ):
        examples.setdefault(topic, comment)
    return {
        "months": month_rows,
        "since": since.date(),
        "nps": _nps(totals["promoters"], totals["detractors"], totals["nps_n"]),
        "csat": _percent(totals["happy"], totals["csat_n"]),
        "answers": totals["nps_n"] + totals["csat_n"],
        "sent": invitations["sent"],
        "answered": invitations["answered"],
        "response_rate": _percent(invitations["answered"], invitations["sent"]),
        "topics": [{**t, "example": examples.get(t["topic"], "")} for t in topics],
    }


def _nps(promoters: int, detractors: int, n: int) -> float | None:
    return round(100 * (promoters - detractors) / n, 1) if n else None


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None
