"""Refresh the stored scores from the store's orders (the only writer of scoring tables)."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import pyarrow as pa
from django.db import connections, transaction
from django.utils import timezone

from kequn.scoring.loading import load_customer_ids, load_purchases
from kequn.scoring.models import CustomerScore, ScoreRun, StageChange

WRITE_BATCH = 5_000

# Columns of kequn.analytics.score_customers → fields of CustomerScore.
COLUMN_MAP = {
    "orders": "frequency",
    "revenue": "monetary",
    "recency_days": "recency_days",
    "r_score": "r_score",
    "f_score": "f_score",
    "m_score": "m_score",
    "rfm_segment": "segment",
    "lifecycle_stage": "lifecycle_stage",
    "p_alive": "p_alive",
    "expected_purchases": "expected_purchases",
    "expected_spend": "expected_spend",
    "clv": "clv",
    "churn_risk": "churn_risk",
    "churn_percentile": "churn_percentile",
}


@dataclass(frozen=True)
class RefreshResult:
    customers: int
    stage_changes: int
    seconds: float
    message: str = ""


def _value(value):
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def _rows_from_frame(scores: pd.DataFrame, computed_at: datetime) -> list[CustomerScore]:
    scores = scores.copy()
    # Percentile among scored customers: "top 10% churn risk" is what operators filter on.
    scores["churn_percentile"] = scores["churn_risk"].rank(pct=True) * 100
    present = {field: col for field, col in COLUMN_MAP.items() if col in scores.columns}
    reasons = [c for c in ("churn_reasons_en", "churn_reasons_zh") if c in scores.columns]
    records = scores[["customer_id", *present.values(), *reasons]].to_dict("records")
    rows = []
    for record in records:
        fields = {field: _value(record[col]) for field, col in present.items()}
        for text_field in ("rfm_segment", "lifecycle_stage"):
            fields[text_field] = fields.get(text_field) or ""
        fields["churn_reasons"] = {
            "en": _value(record.get("churn_reasons_en")) or [],
            "zh-hans": _value(record.get("churn_reasons_zh")) or [],
        }
        fields["orders"] = int(fields.get("orders") or 0)
        fields["revenue"] = float(fields.get("revenue") or 0.0)
        rows.append(
            CustomerScore(customer_id=int(record["customer_id"]), computed_at=computed_at, **fields)
        )
    return rows


def _previous_stages(using: str) -> dict[int, str]:
    return dict(
        CustomerScore.objects.using(using).values_list("customer_id", "lifecycle_stage").iterator()
    )


def refresh_scores(
    *, now: datetime | None = None, progress: bool = True, using: str = "default"
) -> RefreshResult:
    """Recompute every customer's scores, record stage changes, keep a run log."""
    from kequn.analytics.io import normalize_transactions
    from kequn.analytics.scores import score_customers

    started = time.perf_counter()
    now = now or timezone.now()
    run = ScoreRun.objects.using(using).create(started_at=now, status=ScoreRun.Status.RUNNING)
    try:
        purchases = load_purchases(using)
        customers = load_customer_ids(using)
        if purchases.num_rows == 0:
            return _finish_without_purchases(run, customers, now, started, using)
        say = (lambda msg: print(f"  analytics: {msg}", file=sys.stderr)) if progress else None
        # The analytics package keys customers by string id (files may carry any id).
        purchases = normalize_transactions(purchases)
        customer_ids = customers.column("customer_id").cast(pa.string())
        scores, details = score_customers(purchases, now, customer_ids.to_pandas(), progress=say)
        rows = _rows_from_frame(scores, now)
        previous = _previous_stages(using)
        changes = [
            StageChange(
                customer_id=row.customer_id,
                from_stage=previous.get(row.customer_id, ""),
                to_stage=row.lifecycle_stage,
                changed_at=now,
            )
            for row in rows
            if row.lifecycle_stage and previous.get(row.customer_id, "") != row.lifecycle_stage
        ]
        with transaction.atomic(using=using):
            CustomerScore.objects.using(using).all().delete()
            CustomerScore.objects.using(using).bulk_create(rows, batch_size=WRITE_BATCH)
            StageChange.objects.using(using).bulk_create(changes, batch_size=WRITE_BATCH)
        if connections[using].vendor == "postgresql":
            with connections[using].cursor() as cursor:
                cursor.execute(f"ANALYZE {CustomerScore._meta.db_table}")
        message = "; ".join(details.get("notes", []))
        run.status = ScoreRun.Status.DONE
        run.customers = len(rows)
        run.details = json.loads(json.dumps(details, default=str))
        run.message = message
        return RefreshResult(len(rows), len(changes), time.perf_counter() - started, message)
    except Exception as exc:
        run.status = ScoreRun.Status.FAILED
        run.message = f"{type(exc).__name__}: {exc}"[:2000]
        raise
    finally:
        run.finished_at = timezone.now()
        run.save(using=using)


def _finish_without_purchases(run, customers, now, started, using) -> RefreshResult:
    """Mark everyone a prospect when the store has no purchases yet."""
    ids = customers.column("customer_id").to_pylist()
    with transaction.atomic(using=using):
        CustomerScore.objects.using(using).all().delete()
        CustomerScore.objects.using(using).bulk_create(
            [
                CustomerScore(customer_id=i, computed_at=now, lifecycle_stage="prospect")
                for i in ids
            ],
            batch_size=WRITE_BATCH,
        )
    run.status = ScoreRun.Status.DONE
    run.customers = len(ids)
    run.message = "no purchases yet: every customer is a prospect"
    return RefreshResult(len(ids), 0, time.perf_counter() - started, run.message)
