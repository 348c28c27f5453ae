"""The Ibis aggregation gives the same per-customer statistics on Spark and PostgreSQL as on DuckDB."""

from __future__ import annotations

import shutil
import socket
from datetime import date

import pandas as pd
import pytest

from kequn.analytics.engine import build_summary_expr, finish_summary, summarize_customers
from kequn.analytics.io import read_transactions

CAL_END = date(1997, 9, 30)
HOLD_END = date(1998, 6, 30)


def _compare(other: pd.DataFrame, reference: pd.DataFrame) -> None:
    cols = ["customer_id", "x", "t_x_days", "T_days", "frequency", "holdout_days", "n_rows"]
    a = other[cols].sort_values("customer_id").reset_index(drop=True)
    b = reference[cols].sort_values("customer_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    for money in ("monetary_total", "repeat_avg", "holdout_amount"):
        assert other.sort_values("customer_id")[money].to_numpy() == pytest.approx(
            reference.sort_values("customer_id")[money].to_numpy(), abs=1e-6
        )


@pytest.fixture(scope="module")
def sample_tx(cdnow_sample_path):
    return read_transactions(cdnow_sample_path)


@pytest.mark.spark
def test_spark_aggregation_equals_duckdb(sample_tx, tmp_path, monkeypatch):
    if shutil.which("java") is None:
        pytest.skip("java not found: PySpark needs a JVM (install a JDK 17) to run local[2]")
    monkeypatch.chdir(tmp_path)  # Spark writes warehouse/metastore files relative to cwd
    ibis = pytest.importorskip("ibis")
    pyspark_sql = pytest.importorskip("pyspark.sql")
    spark = (
        pyspark_sql.SparkSession.builder.master("local[2]")
        .appName("kequn-analytics-test")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.warehouse.dir", str(tmp_path / "spark-warehouse"))
        .getOrCreate()
    )
    try:
        con = ibis.pyspark.connect(spark)
        spark_summary = summarize_customers(
            sample_tx, CAL_END, HOLD_END, backend=con, with_rhythm=False
        )
    finally:
        spark.stop()
    duck = summarize_customers(sample_tx, CAL_END, HOLD_END, with_rhythm=False)
    assert len(spark_summary) == 2357
    _compare(spark_summary, duck)


def _postgres_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def test_postgres_aggregation_equals_duckdb(sample_tx):
    if not _postgres_up():
        pytest.skip("PostgreSQL is not listening on 127.0.0.1:5432")
    ibis = pytest.importorskip("ibis")
    pytest.importorskip("psycopg")
    con = ibis.postgres.connect(host="127.0.0.1", port=5432, user="postgres", database="test")
    try:
        pg = summarize_customers(sample_tx, CAL_END, HOLD_END, backend=con)
    finally:
        con.disconnect()
    duck = summarize_customers(sample_tx, CAL_END, HOLD_END)
    _compare(pg, duck)
    assert pg.sort_values("customer_id")["median_gap_days"].to_numpy() == pytest.approx(
        duck.sort_values("customer_id")["median_gap_days"].to_numpy(), nan_ok=True
    )


def test_summary_expression_is_backend_neutral(sample_tx):
    # The same expression object compiles to SQL for each dialect (no DuckDB-only functions).
    ibis = pytest.importorskip("ibis")
    t = ibis.table(
        {"customer_id": "string", "ts": "timestamp", "amount": "float64", "quantity": "float64"},
        name="tx",
    )
    # Loading a backend registers its options, which the PySpark compiler reads.
    pytest.importorskip("pyspark")
    ibis.pyspark  # noqa: B018
    expr = build_summary_expr(t, CAL_END, HOLD_END)
    for dialect in ("duckdb", "postgres", "pyspark"):
        assert "SELECT" in ibis.to_sql(expr, dialect=dialect)
    assert callable(finish_summary)
