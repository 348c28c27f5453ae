"""Forecast snapshots: today's forecast of the coming months per rep, kept for accuracy."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from kequn.sales.models import Deal, ForecastSnapshot, Stage
from kequn.sales.selectors import add_month, month_start

ZERO = Decimal(0)


def take_forecast_snapshots(*, months: int = 3, on: date | None = None) -> int:
    """Keep the forecast of each rep for this month and the next ones (idempotent per day)."""
    today = on or timezone.localdate()
    first = month_start(today)
    end = add_month(first, months)
    # Grouped by day and stage, without a join or a per-row date function (see get_forecast).
    rows = (
        Deal.objects.filter(close_date__gte=first, close_date__lt=end, owner__isnull=False)
        .exclude(status=Deal.Status.LOST)
        .values("owner_id", "close_date", "status", "stage_id")
        .annotate(
            total=Sum("amount"),
            plain=Sum("amount", filter=Q(probability__isnull=True)),
            overridden=Sum(F("amount") * F("probability"), filter=Q(probability__isnull=False)),
        )
        .order_by()
    )
    stages = {
        pk: (p, c)
        for pk, p, c in Stage.objects.values_list("id", "probability", "forecast_category")
    }
    figures: dict[tuple[int, date], dict[str, Decimal]] = {}
    for row in rows:
        key = (row["owner_id"], month_start(row["close_date"]))
        entry = figures.setdefault(key, {"weighted": ZERO, "commit": ZERO, "best_case": ZERO})
        total = Decimal(row["total"] or ZERO)
        if row["status"] == Deal.Status.WON:
            entry["weighted"] += total
            entry["commit"] += total
            entry["best_case"] += total
            continue
        probability, category = stages.get(row["stage_id"], (0, ""))
        entry["weighted"] += Decimal(row["plain"] or ZERO) * probability / 100
        entry["weighted"] += Decimal(row["overridden"] or ZERO) / 100
        if category == Stage.Forecast.COMMIT:
            entry["commit"] += total
            entry["best_case"] += total
        elif category == Stage.Forecast.BEST_CASE:
            entry["best_case"] += total
    with transaction.atomic():
        for (owner_id, month), entry in figures.items():
            ForecastSnapshot.objects.update_or_create(
                month=month,
                taken_on=today,
                owner_id=owner_id,
                defaults={k: v.quantize(Decimal("0.01")) for k, v in entry.items()},
            )
    return len(figures)
