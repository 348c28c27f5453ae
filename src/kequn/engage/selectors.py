"""Engagement reads: a campaign's report (audience, groups, skips, sends, conversions, uplift)."""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Q, QuerySet

from kequn.analytics.uplift import mean_uplift, proportion_uplift
from kequn.commerce.models import Order
from kequn.engage.models import Campaign, Message, Recipient, Run
from kequn.engage.policy import SKIP_REASONS

CHUNK = 2000


def list_campaigns() -> QuerySet[Campaign]:
    """Return the campaigns, newest first, with their segment and template."""
    return Campaign.objects.select_related("segment", "template").order_by("-id")


def _orders_of(
    customer_ids: list[int], start: datetime, end: datetime
) -> dict[int, list[tuple[datetime, Decimal]]]:
    """Return each customer's purchases (time, amount) in [start, end], in time order."""
    found: dict[int, list[tuple[datetime, Decimal]]] = defaultdict(list)
    for index in range(0, len(customer_ids), CHUNK):
        rows = (
            Order.objects.filter(
                customer_id__in=customer_ids[index : index + CHUNK],
                status__in=Order.PURCHASE_STATUSES,
                ordered_at__gte=start,
                ordered_at__lte=end,
            )
            .order_by("ordered_at")
            .values_list("customer_id", "ordered_at", "total_amount")
        )
        for customer_id, ordered_at, amount in rows:
            found[customer_id].append((ordered_at, amount))
    return found


def _touches_of(
    customer_ids: list[int], start: datetime, end: datetime
) -> dict[int, list[tuple[datetime, int]]]:
    """Return every message sent to each customer in [start, end] as (sent_at, id), in order."""
    found: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for index in range(0, len(customer_ids), CHUNK):
        rows = (
            Message.objects.filter(
                customer_id__in=customer_ids[index : index + CHUNK],
                status=Message.Status.SENT,
                sent_at__gte=start,
                sent_at__lte=end,
            )
            .order_by("sent_at", "id")
            .values_list("customer_id", "sent_at", "id")
        )
        for customer_id, sent_at, pk in rows:
            if sent_at is not None:
                found[customer_id].append((sent_at, pk))
    return found


def attribute_conversions(
    starts: dict[int, tuple[datetime, int | None]], days: int
) -> dict[int, Decimal | None]:
    """Return each customer's attributed revenue (None: no purchase attributed).

    starts maps a customer to (the moment counted from, their message id or None for the
    holdout). A purchase within ``days`` counts when no other message reached the customer
    between that moment and the purchase (the last touch wins); the same rule applies to
    the holdout, so both groups are measured alike.
    """
    if not starts:
        return {}
    ids = sorted(starts)
    first = min(moment for moment, _ in starts.values())
    last = max(moment for moment, _ in starts.values()) + timedelta(days=days)
    orders = _orders_of(ids, first, last)
    touches = _touches_of(ids, first, last)
    result: dict[int, Decimal | None] = {}
    for customer_id, (moment, own) in starts.items():
        end = moment + timedelta(days=days)
        sent = touches.get(customer_id, [])
        times = [t for t, _ in sent]
        revenue: Decimal | None = None
        for ordered_at, amount in orders.get(customer_id, []):
            if not moment <= ordered_at <= end:
                continue
            index = bisect_right(times, ordered_at) - 1
            latest = sent[index] if index >= 0 else None
            if latest is not None and latest[0] >= moment and latest[1] != own:
                continue  # another message touched them after ours and before the purchase
            revenue = (revenue or Decimal(0)) + amount
        result[customer_id] = revenue
    return result


def _group_starts(
    campaign: Campaign, runs: QuerySet[Run] | None = None
) -> tuple[
    dict[int, tuple[datetime, int | None]], dict[int, tuple[datetime, int | None]], dict[int, str]
]:
    """Return the sent group's and the holdout's starting moments, and each sent one's variant."""
    sent: dict[int, tuple[datetime, int | None]] = {}
    variants: dict[int, str] = {}
    messages = Message.objects.filter(
        campaign=campaign, status=Message.Status.SENT, customer__isnull=False
    )
    if runs is not None:
        messages = messages.filter(run__in=runs)
    for customer_id, sent_at, pk, variant in messages.order_by("sent_at").values_list(
        "customer_id", "sent_at", "id", "variant"
    ):
        if sent_at is None:
            continue
        sent.setdefault(customer_id, (sent_at, pk))  # a recurring campaign: the first send counts
        variants.setdefault(customer_id, variant)
    holdout: dict[int, tuple[datetime, int | None]] = {}
    recipients = Recipient.objects.filter(run__campaign=campaign, group=Recipient.Group.HOLDOUT)
    if runs is not None:
        recipients = recipients.filter(run__in=runs)
    for customer_id, assigned_at in recipients.order_by("assigned_at").values_list(
        "customer_id", "assigned_at"
    ):
        if customer_id not in sent:
            holdout.setdefault(customer_id, (assigned_at, None))
    return sent, holdout, variants


def count_conversions(run: Run) -> dict[str, tuple[int, int]]:
    """Return (converted, sent) per variant among a run's sent messages."""
    sent, _, variants = _group_starts(run.campaign, Run.objects.filter(pk=run.pk))
    revenue = attribute_conversions(sent, run.campaign.conversion_days)
    scores: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for customer_id in sent:
        score = scores[variants[customer_id]]
        score[1] += 1
        if revenue.get(customer_id) is not None:
            score[0] += 1
    return {label: (s[0], s[1]) for label, s in scores.items()}


def _moments(values: list[float], n: int) -> tuple[float, float]:
    return sum(values), sum(v * v for v in values)


def build_report(campaign: Campaign) -> dict[str, Any]:
    """Return the campaign's report: audience, groups, each skip reason, outcomes, uplift."""
    runs = list(campaign.runs.order_by("number"))
    groups = Counter(
        dict(
            Recipient.objects.filter(run__campaign=campaign)
            .values_list("group")
            .annotate(n=Count("id"))
            .values_list("group", "n")
        )
    )
    skips: Counter[str] = Counter()
    for run in runs:
        skips.update(run.skipped)
    statuses = Counter(
        dict(
            Message.objects.filter(campaign=campaign)
            .values_list("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
    )
    skips.update(
        dict(
            Message.objects.filter(campaign=campaign, status=Message.Status.SKIPPED)
            .values_list("skip_reason")
            .annotate(n=Count("id"))
            .values_list("skip_reason", "n")
        )
    )
    engagement = Message.objects.filter(campaign=campaign).aggregate(
        delivered=Count("id", filter=Q(delivered_at__isnull=False)),
        opened=Count("id", filter=Q(opened_at__isnull=False)),
        clicked=Count("id", filter=Q(clicked_at__isnull=False)),
    )
    sent, holdout, variants = _group_starts(campaign)
    revenue = attribute_conversions({**sent, **holdout}, campaign.conversion_days)
    sent_values = [float(revenue.get(c) or 0) for c in sent]
    holdout_values = [float(revenue.get(c) or 0) for c in holdout]
    sent_conversions = sum(1 for c in sent if revenue.get(c) is not None)
    holdout_conversions = sum(1 for c in holdout if revenue.get(c) is not None)
    conversion = proportion_uplift(sent_conversions, len(sent), holdout_conversions, len(holdout))
    s1, q1 = _moments(sent_values, len(sent))
    s0, q0 = _moments(holdout_values, len(holdout))
    revenue_uplift = mean_uplift(len(sent), s1, q1, len(holdout), s0, q0)
    by_variant: dict[str, dict[str, Any]] = {}
    for customer_id, label in variants.items():
        if not label:
            continue
        entry = by_variant.setdefault(label, {"sent": 0, "conversions": 0, "revenue": 0.0})
        entry["sent"] += 1
        if revenue.get(customer_id) is not None:
            entry["conversions"] += 1
            entry["revenue"] += float(revenue[customer_id] or 0)
    return {
        "id": campaign.pk,
        "name": campaign.name,
        "status": campaign.status,
        "channel": campaign.channel,
        "segment": campaign.segment_name,
        "runs": len(runs),
        "audience": sum(r.audience for r in runs),
        "groups": {g: groups.get(g, 0) for g in Recipient.Group.values},
        "holdout": groups.get(Recipient.Group.HOLDOUT, 0),
        "skipped": {reason: n for reason, n in sorted(skips.items()) if reason},
        "skip_labels": {
            reason: str(SKIP_REASONS.get(reason, reason)) for reason in skips if reason
        },
        "messages": {s: statuses.get(s, 0) for s in Message.Status.values},
        "sent": statuses.get(Message.Status.SENT, 0),
        "failed": statuses.get(Message.Status.FAILED, 0),
        "retrying": statuses.get(Message.Status.RETRYING, 0),
        "last_error": campaign.last_error,
        **engagement,
        "conversion_days": campaign.conversion_days,
        "conversions": {"sent": sent_conversions, "holdout": holdout_conversions},
        "measured": {"sent": len(sent), "holdout": len(holdout)},
        "revenue": {"sent": round(s1, 2), "holdout": round(s0, 2)},
        "conversion_uplift": conversion.as_dict(),
        "revenue_per_recipient_uplift": revenue_uplift.as_dict(),
        "variants": by_variant,
        "winners": {r.number: r.winner for r in runs if r.winner},
    }


PANEL_KEY = "kequn:engage:dashboard"
PANEL_CAMPAIGNS = 3
# A report attributes every order of the campaign's audience: seconds of work at a million
# customers. The dashboard refresh stores the panel's reports (as it stores its other
# figures), so a view of the dashboard reads them and never attributes orders itself.
PANEL_SECONDS = 26 * 3600


def list_panel_campaigns() -> list[int]:
    """Return the ids of the latest campaigns that sent something, newest first."""
    latest = Campaign.objects.filter(runs__isnull=False).distinct().order_by("-id")
    return list(latest.values_list("id", flat=True)[:PANEL_CAMPAIGNS])


def store_dashboard_reports() -> list[dict[str, Any]]:
    """Compute the dashboard panel's campaign reports now and store them for the page."""
    campaigns = Campaign.objects.in_bulk(list_panel_campaigns())
    reports = [build_report(campaigns[pk]) for pk in sorted(campaigns, reverse=True)]
    cache.set(PANEL_KEY, reports, PANEL_SECONDS)
    return reports


# Held while one request computes the reports that a new campaign needs.
PANEL_LOCK_KEY = "kequn:engage:dashboard:computing"
PANEL_LOCK_SECONDS = 600


def read_dashboard_reports() -> tuple[list[dict[str, Any]], bool]:
    """Return the panel's reports, and whether a newer set is being computed meanwhile.

    When a campaign is new to the panel, the first view computes the reports. Views that
    come while it does show the stored ones: at a million customers, every dashboard view
    of those seconds had computed the same reports at once and taken all the server's threads.
    """
    wanted = list_panel_campaigns()
    stored = cache.get(PANEL_KEY)
    if stored is not None and [r["id"] for r in stored] == wanted:
        return stored, False
    if cache.add(PANEL_LOCK_KEY, True, PANEL_LOCK_SECONDS):
        try:
            return store_dashboard_reports(), False
        finally:
            cache.delete(PANEL_LOCK_KEY)
    return [r for r in stored or [] if r["id"] in wanted], True
