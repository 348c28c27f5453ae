"""`kequn analytics refresh` on the store: one score row per customer, stage history, run log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.core.management import call_command

from kequn.commerce.models import Order
from kequn.customers.models import Customer
from kequn.scoring.models import CustomerScore, ScoreRun, StageChange
from kequn.scoring.services import refresh_scores
from kequn.security.actors import system_actor
from kequn.security.audit.models import AuditEntry

NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)
JOB = system_actor("test-refresh")


def load_store(n_customers: int = 400, seed: int = 7) -> list[Customer]:
    """Bulk-create customers with regular, lapsed and one-time buying patterns."""
    rng = np.random.default_rng(seed)
    customers = Customer.objects.bulk_create(
        [Customer(name=f"客户{i}", city="上海") for i in range(n_customers)]
    )
    orders, n = [], 0
    for i, customer in enumerate(customers[:-20]):  # the last 20 never buy: prospects
        kind = i % 4
        gap = [20, 45, 90, 400][kind]
        start = NOW - timedelta(days=int(rng.integers(300, 700)))
        stop = NOW - timedelta(days=[5, 30, 250, 0][kind])
        when = start
        while when < stop:
            n += 1
            status = Order.Status.REFUNDED if n % 23 == 0 else Order.Status.COMPLETED
            amount = Decimal(str(round(float(rng.gamma(2.0, 400.0)), 2)))
            orders.append(
                Order(
                    number=f"N{n}",
                    customer=customer,
                    status=status,
                    total_amount=amount,
                    ordered_at=when,
                )
            )
            when += timedelta(days=max(1, int(rng.exponential(gap))))
            if kind == 3:
                break
    Order.objects.bulk_create(orders, batch_size=2000)
    return customers


@pytest.mark.django_db(transaction=True)
def test_refresh_scores_every_customer_and_records_stage_changes(admin_client):
    customers = load_store()
    result = refresh_scores(now=NOW, progress=False, by=JOB)
    assert result.customers == len(customers) == CustomerScore.objects.count()
    never_bought = CustomerScore.objects.filter(customer__in=customers[-20:])
    assert {s.lifecycle_stage for s in never_bought} == {"prospect"}
    buyers = CustomerScore.objects.exclude(lifecycle_stage="prospect")
    assert buyers.filter(r_score__isnull=True).count() == 0
    assert {s.rfm_segment for s in buyers} >= {"champions", "hibernating"}
    assert set(buyers.values_list("lifecycle_stage", flat=True)) >= {"active", "churned"}
    assert all(0 <= s.p_alive <= 1 for s in buyers if s.p_alive is not None)
    assert buyers.filter(clv__gt=0).count() > len(customers) // 2
    # First refresh: every customer enters a stage.
    assert StageChange.objects.count() == len(customers)
    run = ScoreRun.objects.get()
    assert run.status == "done" and run.customers == len(customers) and "bgnbd" in run.details
    entry = AuditEntry.objects.get(action="scores.refresh")
    assert entry.actor_username == "system:test-refresh"
    assert entry.detail["customers"] == len(customers)

    # Regular buyers score lower churn risk than lapsed ones (kind 0 vs kind 2).
    scored = CustomerScore.objects.filter(churn_risk__isnull=False)
    regular = scored.filter(customer__in=customers[0:380:4])
    lapsed = scored.filter(customer__in=customers[2:380:4])
    assert np.mean([s.churn_risk for s in regular]) < np.mean([s.churn_risk for s in lapsed])

    # A prospect who buys becomes "new" at the next refresh; only that change is recorded.
    Order.objects.create(
        number="NEW-1",
        customer=customers[-1],
        total_amount=Decimal("3999"),
        ordered_at=NOW - timedelta(days=2),
    )
    refresh_scores(now=NOW, progress=False, by=JOB)
    change = StageChange.objects.filter(customer=customers[-1]).order_by("-id").first()
    assert (change.from_stage, change.to_stage) == ("prospect", "new")
    assert StageChange.objects.count() == len(customers) + 1

    # The back office shows the scores and filters by them.
    at_risk = scored.exclude(lifecycle_stage="churned").order_by("-churn_risk").first()
    page = admin_client.get(
        f"/admin/customers/customer/{at_risk.customer_id}/360/"
    ).content.decode()
    assert 'id="kequn-value-scores"' in page and f"R{at_risk.r_score} F{at_risk.f_score}" in page
    listing = admin_client.get("/admin/customers/customer/?score__lifecycle_stage__exact=churned")
    churned_ids = set(
        scored.filter(lifecycle_stage="churned").values_list("customer_id", flat=True)
    )
    shown = {c.pk for c in listing.context["cl"].result_list}
    assert shown and shown <= churned_ids


@pytest.mark.django_db(transaction=True)
def test_refresh_on_empty_store_marks_prospects():
    Customer.objects.bulk_create([Customer(name="A"), Customer(name="B")])
    call_command("analytics", "refresh", "--quiet", "--by", "")
    assert set(CustomerScore.objects.values_list("lifecycle_stage", flat=True)) == {"prospect"}
    # Run from the command line without --by: the shell user is named.
    assert AuditEntry.objects.get(action="scores.refresh").actor_username.startswith("cli:")
    assert "no purchases" in ScoreRun.objects.get().message


@pytest.mark.django_db(transaction=True)
def test_refresh_restores_indexes_and_foreign_key():
    from django.db import connection

    def schema(model) -> dict:
        with connection.cursor() as cursor:
            found = connection.introspection.get_constraints(cursor, model._meta.db_table)
        return {name: (c["columns"], c["index"], c["foreign_key"]) for name, c in found.items()}

    def cache_size() -> int:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA cache_size")
            return cursor.fetchone()[0]

    before = schema(CustomerScore)
    assert {"score_rfm_idx", "score_stage_idx", "score_clv_idx", "score_churn_idx"} <= set(before)
    history_before = schema(StageChange)
    assert {"stagechange_customer_idx", "stagechange_time_idx"} <= set(history_before)
    cache_before = cache_size() if connection.vendor == "sqlite" else None
    load_store(n_customers=120)
    # A first refresh: every customer's first stage is a change, so the history table is
    # bulk-loaded without its indexes and foreign key, which must come back as they were.
    refresh_scores(now=NOW, progress=False, by=JOB)
    assert StageChange.objects.count() == 120
    after = schema(CustomerScore)
    assert after == before
    assert any(fk == ("customers_customer", "id") for _, _, fk in after.values())
    assert schema(StageChange) == history_before
    if connection.vendor == "sqlite":
        assert cache_size() == cache_before  # the refresh's large page cache is given back


@pytest.mark.django_db(transaction=True)
def test_refresh_follows_the_analytics_settings_file(tmp_path, monkeypatch):
    from django.core.management.base import CommandError

    load_store(n_customers=120)
    settings = tmp_path / "analytics.toml"
    # One segment takes every buyer; a 30-day horizon.
    settings.write_text(
        'churn_horizon_days = 30\n[[segments]]\nname = "champions"\nr = [1, 5]\nf = [1, 5]\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("KEQUN_ANALYTICS_CONFIG", str(settings))
    refresh_scores(now=NOW, progress=False, by=JOB)
    buyers = CustomerScore.objects.exclude(lifecycle_stage="prospect")
    assert set(buyers.values_list("rfm_segment", flat=True)) == {"champions"}
    assert ScoreRun.objects.get().details["churn"]["horizon_days"] == 30

    # A mistake fails the run with a one-line message and leaves the scores as they were.
    settings.write_text('[[segments]]\nname = "stars"\n', encoding="utf-8")
    with pytest.raises(
        CommandError, match=r"analytics.toml: segments\[0\]: unknown segment 'stars'"
    ):
        call_command("analytics", "refresh", "--quiet")
    failed = ScoreRun.objects.order_by("-id").first()
    assert failed.status == "failed" and "unknown segment 'stars'" in failed.message
    assert set(buyers.values_list("rfm_segment", flat=True)) == {"champions"}
