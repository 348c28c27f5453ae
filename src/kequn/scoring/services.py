"""Refresh the stored scores from the customers' purchase summaries (the only writer of scoring tables).

A refresh first brings the purchase summaries up to date (kequn.scoring.summaries: only
customers whose orders changed are read again; all with ``full``), scores every customer
from the summaries plus the orders of a sample that trains the churn model and judges the
value models, writes the scores into a table beside the live one and swaps it in
(kequn.scoring.swap): readers see yesterday's scores until the swap commits.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
from django.db import connections, models, transaction
from django.utils import timezone

from kequn.analytics.churn import TRAINING_CUSTOMERS
from kequn.analytics.config import read_analytics_config
from kequn.analytics.scores import score_customers
from kequn.analytics.summaries import check_summaries_not_future, sample_customer_ids, summary_at
from kequn.conf import get_analytics_config_path
from kequn.db import (
    insert_columns,
    large_sqlite_cache,
    without_indexes,
)
from kequn.scoring.loading import (
    drop_restricted,
    live_customer_ids,
    load_customers,
    load_purchases,
)
from kequn.scoring.models import CustomerScore, NextCustomerScore, ScoreRun, StageChange
from kequn.scoring.summaries import load_summaries, update_summaries
from kequn.scoring.swap import finish_next_table, prepare_next_table, swap_in_with_retries
from kequn.security.actors import Actor
from kequn.security.audit.services import record_event

WRITE_BATCH = 5_000
# The model time unit of the stored scores (score_customers' default).
TIME_UNIT = "week"

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


def _score_columns(scores: pd.DataFrame) -> dict[str, pa.Array]:
    """Return the CustomerScore columns (field name → Arrow array, NaN as NULL) of a scores frame."""
    n = len(scores)
    columns: dict[str, pa.Array] = {}
    for field, col in COLUMN_MAP.items():
        if col not in scores.columns:
            continue
        target = CustomerScore._meta.get_field(field)
        values = scores[col]
        if isinstance(target, models.CharField):
            columns[field] = pa.array(values.where(values.notna(), "").astype(str), pa.string())
        elif isinstance(target, models.FloatField):
            columns[field] = pa.array(values.to_numpy(float), pa.float64(), from_pandas=True)
        else:
            numbers = values.to_numpy(float)
            columns[field] = pa.array(
                np.nan_to_num(numbers).astype(np.int64), pa.int64(), mask=np.isnan(numbers)
            )
    # orders and revenue are NOT NULL: customers without purchases have 0.
    for field in ("orders", "revenue"):
        if field in columns:
            columns[field] = columns[field].fill_null(0)
    columns["churn_reasons"] = pa.array(_churn_reasons_json(scores, n), pa.string())
    return columns


def _churn_reasons_json(scores: pd.DataFrame, n: int) -> list[str]:
    """Return each row's churn_reasons JSON text: {"en": ..., "zh-hans": ...}."""

    def encoded(name: str) -> np.ndarray:
        if name not in scores.columns:
            return np.full(n, "[]", dtype=object)
        values = scores[name].where(scores[name].notna() & (scores[name] != ""), None)
        # Far fewer distinct reasons than customers: encode each distinct text once.
        codes, texts = pd.factorize(values)
        # Unescaped: the Chinese reasons take half the bytes to write (1M rows per refresh).
        table = np.array([json.dumps(t, ensure_ascii=False) for t in texts] + ["[]"], dtype=object)
        return table[codes]  # code -1 (no reason) picks the trailing "[]"

    en, zh = encoded("churn_reasons_en"), encoded("churn_reasons_zh")
    return ('{"en": ' + pd.Series(en) + ', "zh-hans": ' + pd.Series(zh) + "}").tolist()


def _previous_stages(using: str) -> pd.DataFrame:
    """Return the stored lifecycle stage of every scored customer."""
    meta = CustomerScore._meta
    with connections[using].cursor() as cursor:
        cursor.execute(
            f"SELECT {meta.get_field('customer').column}, lifecycle_stage FROM {meta.db_table}"  # noqa: S608 -- names from model metadata
        )
        rows = cursor.fetchall()
    frame = pd.DataFrame(rows, columns=["customer_id", "stage"])
    return frame.astype({"customer_id": np.int64, "stage": object})


def _stage_changes(
    customer_ids: np.ndarray, stages: pa.Array, previous: pd.DataFrame
) -> dict[str, pa.Array]:
    """Return StageChange columns for customers whose stage differs from the stored one."""
    current = pd.DataFrame({"customer_id": customer_ids, "to_stage": stages.to_numpy(False)})
    merged = current.merge(previous, on="customer_id", how="left")
    merged["from_stage"] = merged["stage"].fillna("")
    changed = merged[(merged["to_stage"] != "") & (merged["from_stage"] != merged["to_stage"])]
    return {
        "customer": pa.array(changed["customer_id"].to_numpy(np.int64)),
        "from_stage": pa.array(changed["from_stage"].astype(str), pa.string()),
        "to_stage": pa.array(changed["to_stage"].astype(str), pa.string()),
    }


def refresh_scores(
    *,
    now: datetime | None = None,
    progress: bool | Callable[[str], None] = True,
    full: bool = False,
    using: str = "default",
    by: Actor,
) -> RefreshResult:
    """Recompute every customer's scores, record stage changes, keep a run log.

    ``full`` recomputes every purchase summary from all orders instead of only those of
    customers whose orders changed (the scores are the same either way). ``progress`` is
    True (print stage messages to stderr), False, or a callable taking each stage message
    (the benchmarks time the stages with it).
    """
    started = time.perf_counter()
    now = now or timezone.now()
    run = ScoreRun.objects.using(using).create(started_at=now, status=ScoreRun.Status.RUNNING)
    say = make_progress_printer(progress)
    try:
        # First: a mistake in the settings fails the run (with its message) before any work.
        config = read_analytics_config(get_analytics_config_path(), known_segments_only=True)
        say("loading purchases")
        reread = update_summaries(full=full, using=using)
        everyone = load_customers(using)
        summaries = _drop_restricted_summaries(load_summaries(using), everyone)
        customers = live_customer_ids(everyone)
        if summaries.empty:
            return finish_without_purchases(
                run, customers, now=now, started=started, using=using, by=by
            )
        check_summaries_not_future(summaries, now)
        # The churn model trains on at most TRAINING_CUSTOMERS customers and the value
        # models are judged on the same ones: only their orders are read.
        sample = sample_customer_ids(summaries["customer_id"], TRAINING_CUSTOMERS)
        purchases = drop_restricted(load_purchases(using, customer_ids=sample), everyone)
        # Integer ids as loaded: the analytics package ranks them as text where order
        # matters, and grouping or sorting integers is cheaper than their text.
        customer_ids = customers.column("customer_id").to_pandas()
        scores = score_customers(
            purchases,
            now,
            customer_ids,
            time_unit=TIME_UNIT,
            progress=say,
            summary=summary_at(summaries, now, TIME_UNIT),
            **config.score_options(),
        )
        del purchases, summaries
        details = scores.attrs["models"]
        details["summaries"] = {"reread_customers": reread, "full": full}
        say("writing scores")
        n_changes = write_scores(scores, run, now=now, using=using, by=by)
        message = "; ".join(details.get("notes", []))
        run.status = ScoreRun.Status.DONE
        run.customers = len(scores)
        run.details = json.loads(json.dumps(details, default=str))
        run.message = message
        return RefreshResult(len(scores), n_changes, time.perf_counter() - started, message)
    except Exception as exc:
        run.status = ScoreRun.Status.FAILED
        run.message = f"{type(exc).__name__}: {exc}"[:2000]
        raise
    finally:
        run.finished_at = timezone.now()
        run.save(using=using)


def _drop_restricted_summaries(summaries: pd.DataFrame, customers: pa.Table) -> pd.DataFrame:
    """Remove the summaries of customers whose processing is restricted."""
    restricted = customers.filter(customers.column("restricted")).column("customer_id")
    if len(restricted) == 0:
        return summaries
    keep = ~np.isin(summaries["customer_id"].to_numpy(np.int64), restricted.to_numpy())
    return summaries.loc[keep].reset_index(drop=True)


def write_scores(
    scores: pd.DataFrame, run: ScoreRun, *, now: datetime, using: str, by: Actor
) -> int:
    """Fill the next score table, then swap it in with the stage changes; return their count."""
    scores = scores.copy()
    # Percentile among scored customers: "top 10% churn risk" is what operators filter on.
    scores["churn_percentile"] = scores["churn_risk"].rank(pct=True) * 100
    ids = scores["customer_id"].astype(np.int64).to_numpy()
    columns = {"customer_id": pa.array(ids), **_score_columns(scores)}
    changes = _stage_changes(ids, columns["lifecycle_stage"], _previous_stages(using))
    n_changes = len(changes["customer"])
    # Inside someone else's transaction (tests, callers batching work) keep the schema
    # of StageChange as it is: PostgreSQL cannot alter tables with pending checks.
    bulk = not connections[using].in_atomic_block
    with large_sqlite_cache(using=using):
        # Built beside the live table, outside the swap's transaction: readers of the live
        # scores never wait for the million rows written here.
        table = prepare_next_table(using=using)
        with transaction.atomic(using=using):
            insert_columns(NextCustomerScore, columns, fixed={"computed_at": now}, using=using)
        finish_next_table(table, using=using)

        def record_changes() -> None:
            # A first refresh records a change for everyone: then rebuilding the history's
            # indexes (and checking its foreign key in one join) beats maintaining them per
            # row; on a daily refresh, with few changes and a long history, it does not.
            many = bulk and n_changes > StageChange.objects.using(using).count()
            with without_indexes(StageChange, using=using) if many else nullcontext():
                insert_columns(StageChange, changes, fixed={"changed_at": now}, using=using)
            _record_refresh(run, by, customers=len(ids), stage_changes=n_changes)

        swap_in_with_retries(table, record_changes, using=using)
    return n_changes


def make_progress_printer(progress: bool | Callable[[str], None]) -> Callable[[str], None]:
    """Return the stage-message callback for refresh_scores's ``progress`` argument."""
    if callable(progress):
        return progress
    if progress:
        return lambda msg: print(f"  analytics: {msg}", file=sys.stderr)
    return lambda _msg: None


def _record_refresh(run: ScoreRun, by: Actor, *, customers: int, stage_changes: int) -> None:
    """Write the audit entry of a refresh (inside its transaction)."""
    record_event(
        "scores.refresh",
        actor=by,
        target=run,
        detail={"customers": customers, "stage_changes": stage_changes},
    )


def finish_without_purchases(
    run: ScoreRun,
    customers: pa.Table,
    *,
    now: datetime,
    started: float,
    using: str,
    by: Actor,
) -> RefreshResult:
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
        _record_refresh(run, by, customers=len(ids), stage_changes=0)
    run.status = ScoreRun.Status.DONE
    run.customers = len(ids)
    run.message = "no purchases yet: every customer is a prospect"
    return RefreshResult(len(ids), 0, time.perf_counter() - started, run.message)
