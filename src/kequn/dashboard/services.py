"""Recompute and store the dashboard's aggregates (the only code that writes them).

`refresh_dashboard()` has the aggregates computed (aggregates.py: the store read once in
bulk, every period × channel combination aggregated in DuckDB) and replaces the few thousand
stored rows; the page reads them back with a handful of indexed queries (queries.py).
"""

from __future__ import annotations

import time
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from kequn.dashboard.aggregates import Aggregates, compute_aggregates
from kequn.dashboard.constants import WRITE_BATCH
from kequn.dashboard.models import ChartCell, DashboardRefresh, HistoryPoint, KpiWindow
from kequn.engage.selectors import store_dashboard_reports as store_campaign_reports
from kequn.loyalty.selectors import store_dashboard as store_loyalty_figures
from kequn.security.actors import Actor
from kequn.security.audit import services as audit


def store_aggregates(
    aggregates: Aggregates, *, by: Actor, run: DashboardRefresh, using: str = "default"
) -> None:
    """Replace the stored aggregates with new ones, keeping one history point per day."""
    days = {point["day"] for point in aggregates.history}
    with transaction.atomic(using=using):
        KpiWindow.objects.using(using).all().delete()
        ChartCell.objects.using(using).all().delete()
        HistoryPoint.objects.using(using).filter(day__in=days).delete()
        KpiWindow.objects.using(using).bulk_create(
            [KpiWindow(**row) for row in aggregates.kpis], batch_size=WRITE_BATCH
        )
        ChartCell.objects.using(using).bulk_create(
            [ChartCell(**row) for row in aggregates.cells], batch_size=WRITE_BATCH
        )
        HistoryPoint.objects.using(using).bulk_create(
            [HistoryPoint(**row) for row in aggregates.history], batch_size=WRITE_BATCH
        )
        # Counts only: the aggregates name no customer.
        audit.record_event(
            audit.CHANGE,
            actor=by,
            target=run,
            detail={
                "dashboard_refresh": run.pk,
                "customers": aggregates.customers,
                "purchases": aggregates.purchases,
            },
        )


def refresh_dashboard(
    *, by: Actor, now: datetime | None = None, using: str = "default"
) -> DashboardRefresh:
    """Recompute and store the dashboard's aggregates; call it right after refresh_scores()."""
    now = now or timezone.now()
    started = time.perf_counter()
    run = DashboardRefresh.objects.using(using).create(
        started_at=timezone.now(), as_of=now, status=DashboardRefresh.Status.RUNNING
    )
    try:
        aggregates = compute_aggregates(now=now, using=using)
        store_aggregates(aggregates, by=by, run=run, using=using)
        if using == "default":
            # The loyalty panel sums the ledger and scans the orders, the campaigns panel
            # attributes orders to campaigns: once here, not per view.
            store_loyalty_figures(now)
            store_campaign_reports()
        run.status = DashboardRefresh.Status.DONE
        run.customers = aggregates.customers
        run.purchases = aggregates.purchases
    except Exception as exc:
        run.status = DashboardRefresh.Status.FAILED
        run.message = f"{type(exc).__name__}: {exc}"[:2000]
        raise
    finally:
        run.finished_at = timezone.now()
        run.seconds = time.perf_counter() - started
        run.save(using=using)
    return run
