"""`kequn analytics refresh --engine spark`: the same scores as the DuckDB refresh, errors in one line."""

from __future__ import annotations

import shutil
import socket
import sys
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from kequn.scoring.models import CustomerScore, ScoreRun, StageChange
from kequn.scoring.services import refresh_scores
from kequn.security.actors import system_actor

NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)
JOB = system_actor("test-spark-refresh")
EXACT = [
    "customer_id",
    "orders",
    "recency_days",
    "r_score",
    "f_score",
    "m_score",
    "rfm_segment",
    "lifecycle_stage",
    "churn_reasons",
]
MODELLED = ["revenue", "p_alive", "expected_purchases", "expected_spend", "clv", "churn_risk"]


def stored_scores() -> pd.DataFrame:
    rows = CustomerScore.objects.order_by("customer_id").values(*EXACT, *MODELLED)
    return pd.DataFrame.from_records(list(rows)).astype(dict.fromkeys(MODELLED, float))


@pytest.fixture
def demo_store(db, tmp_path, monkeypatch):
    from kequn.demo.generator import generate_demo_data

    monkeypatch.setenv("KEQUN_DATA_DIR", str(tmp_path))
    generate_demo_data(1500, seed=11, today=date(2026, 6, 30), progress=False)


@pytest.mark.slow  # demo data and a local[2] Spark: about 40 s on two quiet cores
@pytest.mark.spark
# Spark reads the orders from a Parquet file and computes in its own JVM; what touches the
# database (reading orders out, writing scores back) is the DuckDB refresh's own code, which
# tests/scoring/test_refresh.py and test_incremental.py run on both databases. One run is
# enough for the comparison, and saves a JVM start and a minute of Spark in the other.
@pytest.mark.sqlite_only
@pytest.mark.django_db(transaction=True)
def test_spark_refresh_matches_the_duckdb_refresh(demo_store):
    if shutil.which("java") is None:
        pytest.skip("java not found: PySpark needs a JVM (install a JDK 17) to run local[2]")
    pytest.importorskip("pyspark")
    from kequn.scoring.spark_refresh import refresh_scores_on_spark

    refresh_scores(now=NOW, progress=False, by=JOB)
    duck = stored_scores()
    history = StageChange.objects.count()

    result = refresh_scores_on_spark(master="local[2]", now=NOW, progress=False, by=JOB)
    spark = stored_scores()

    assert result.customers == len(duck) == len(spark) == 1500
    assert (duck["orders"] > 0).sum() > 750  # most demo customers bought: a real comparison
    # Ranks, segments, stages and reasons: the same for every customer.
    pd.testing.assert_frame_equal(spark[EXACT], duck[EXACT])
    # Models: both engines fit the same distinct rows, sorted the same way; only the order
    # in which each sums amounts differs, in the last bits (1e-16 relative), which the
    # optimiser carries into parameters at about 1e-13 (measured). 1e-6 leaves room for
    # that, while a wrong input (T off by a day, another usual gap, a batch-local
    # feature) moves some customer's score by far more.
    for column in MODELLED:
        np.testing.assert_allclose(
            spark[column], duck[column], rtol=1e-6, atol=1e-9, err_msg=column
        )
    # Same stages as the refresh before: no stage change recorded.
    assert StageChange.objects.count() == history and result.stage_changes == 0
    duck_run, spark_run = ScoreRun.objects.order_by("id")
    assert spark_run.status == "done" and spark_run.details["engine"]["name"] == "spark"
    assert spark_run.details["bgnbd"]["params"] == pytest.approx(
        duck_run.details["bgnbd"]["params"], rel=1e-6
    )
    assert spark_run.details["value_models"]["used"] == duck_run.details["value_models"]["used"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("problem", ["no pyspark", "unreachable master"])
def test_spark_refresh_that_cannot_start_says_why_and_keeps_the_scores(
    problem, tmp_path, monkeypatch
):
    from tests.scoring.test_refresh import load_store

    monkeypatch.setenv("KEQUN_DATA_DIR", str(tmp_path))
    load_store(n_customers=150)
    refresh_scores(now=NOW, progress=False, by=JOB)
    before = stored_scores()
    master = "local[2]"
    if problem == "no pyspark":
        # As on an installation without the spark extra: importing PySpark fails.
        monkeypatch.setitem(sys.modules, "pyspark", None)
        monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    else:
        master = f"spark://127.0.0.1:{closed_port()}"

    with pytest.raises(CommandError) as caught:
        call_command("analytics", "refresh", "--engine", "spark", "--spark-master", master)

    message = str(caught.value)
    assert caught.value.returncode == 2 and "\n" not in message
    if problem == "no pyspark":
        assert "pip install 'kequn[spark]'" in message
    else:
        assert master in message and "KEQUN_SPARK_MASTER" in message
    pd.testing.assert_frame_equal(stored_scores(), before)
    assert ScoreRun.objects.order_by("id").last().status == "failed"
