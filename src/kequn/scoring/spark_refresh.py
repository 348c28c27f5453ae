"""Refresh the stored scores on Spark: orders out to Parquet, scores computed there, written back.

For bases past one machine (see README, "Customer value analytics"). The orders leave the
store through the same bulk loader as the DuckDB refresh (kequn.scoring.loading) into a
Parquet file that Spark reads, or come from Parquet files the operator names (exported
elsewhere, on storage every executor reads). The scores come back to this process and
are written by kequn.scoring.services's writer (the next table built, then swapped in).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from django.utils import timezone

from kequn.analytics import lifecycle
from kequn.analytics.config import read_analytics_config
from kequn.analytics.spark import score_customers_on_spark, start_spark
from kequn.conf import get_analytics_config_path, get_data_dir, get_spark_master
from kequn.scoring.loading import drop_restricted, live_customer_ids, load_customers, load_purchases
from kequn.scoring.models import ScoreRun
from kequn.scoring.services import (
    TIME_UNIT,
    RefreshResult,
    finish_without_purchases,
    make_progress_printer,
    write_scores,
)
from kequn.security.actors import Actor


def refresh_scores_on_spark(
    *,
    master: str | None = None,
    orders_parquet: str | None = None,
    now: datetime | None = None,
    progress: bool | Callable[[str], None] = True,
    using: str = "default",
    by: Actor,
) -> RefreshResult:
    """Recompute every customer's scores on Spark, record stage changes, keep a run log.

    ``master`` defaults to KEQUN_SPARK_MASTER (local[2]). ``orders_parquet`` (a file,
    directory or URL Spark reads, with customer_id, ts, amount and quantity) replaces
    reading the orders out of the store. Until the new scores are written in one
    transaction, the stored ones stay as they were, whatever fails.
    """
    started = time.perf_counter()
    now = now or timezone.now()
    master = master or get_spark_master()
    run = ScoreRun.objects.using(using).create(started_at=now, status=ScoreRun.Status.RUNNING)
    say = make_progress_printer(progress)
    work = Path(tempfile.mkdtemp(prefix="spark-", dir=_work_root()))
    spark = None
    try:
        config = read_analytics_config(get_analytics_config_path(), known_segments_only=True)
        say(f"starting Spark on {master}")
        spark = start_spark(master, work_dir=work)
        say("loading customers")
        everyone = load_customers(using)
        customers = live_customer_ids(everyone)
        purchases = _purchases_frame(spark, everyone, orders_parquet, work, using, say)
        if purchases is None:
            return finish_without_purchases(
                run, customers, now=now, started=started, using=using, by=by
            )
        options = config.score_options()
        result = score_customers_on_spark(
            spark, purchases, now, time_unit=TIME_UNIT, progress=say, **options
        )
        say("collecting scores")
        scores = result.frame.toPandas()
        scores = _add_prospects(scores, customers.column("customer_id").to_numpy())
        details = result.models
        say("writing scores")
        # The DuckDB refresh's writer: the next table built beside the live one, swapped in.
        n_changes = write_scores(scores, run, now=now, using=using, by=by)
        written = len(scores)
        message = "; ".join(details.get("notes", []))
        run.status = ScoreRun.Status.DONE
        run.customers = written
        run.details = json.loads(json.dumps(details, default=str))
        run.message = message
        return RefreshResult(written, n_changes, time.perf_counter() - started, message)
    except Exception as exc:
        run.status = ScoreRun.Status.FAILED
        run.message = f"{type(exc).__name__}: {exc}"[:2000]
        raise
    finally:
        if spark is not None:
            spark.stop()
        shutil.rmtree(work, ignore_errors=True)
        run.finished_at = timezone.now()
        run.save(using=using)


def _work_root() -> Path:
    """Return where a refresh keeps its Parquet and Spark scratch files (inside the data dir)."""
    root = get_data_dir() / "spark"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _purchases_frame(
    spark: Any,
    everyone: pa.Table,
    orders_parquet: str | None,
    work: Path,
    using: str,
    say: Callable[[str], None],
) -> Any:
    """Return the purchases as a Spark DataFrame (restricted customers left out), or None if none."""
    if orders_parquet is None:
        say("loading purchases")
        purchases = drop_restricted(load_purchases(using), everyone)
        if purchases.num_rows == 0:
            return None
        path = work / "orders.parquet"
        pq.write_table(purchases, path)
        return spark.read.parquet(str(path))
    frame = spark.read.parquet(orders_parquet).select("customer_id", "ts", "amount", "quantity")
    # Only the store's customers, and none whose processing is restricted.
    allowed = everyone.filter(pc.invert(everyone.column("restricted")))
    ids = spark.createDataFrame(
        pd.DataFrame({"customer_id": allowed.column("customer_id").to_numpy()})
    )
    frame = frame.join(ids, "customer_id", "left_semi")
    return None if frame.isEmpty() else frame


def _add_prospects(scores: pd.DataFrame, customer_ids: np.ndarray) -> pd.DataFrame:
    """Add the live customers without purchases as prospects, in customer order."""
    missing = pd.Index(customer_ids).difference(pd.Index(scores["customer_id"]))
    if len(missing):
        prospects = pd.DataFrame({"customer_id": missing.to_numpy(np.int64)})
        prospects["lifecycle_stage"] = "prospect"
        prospects["lifecycle_stage_en"] = lifecycle.STAGE_LABELS["prospect"][0]
        prospects["lifecycle_stage_zh"] = lifecycle.STAGE_LABELS["prospect"][1]
        prospects["frequency"] = 0
        scores = pd.concat([scores, prospects], ignore_index=True)
    scores = scores.sort_values("customer_id", kind="stable").reset_index(drop=True)
    return scores
