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


def _frame(rows: list[tuple], columns: list[str]) -> pd.DataFrame:
    """Return query rows as a frame sorted by customer, dates and numbers in common types."""
    frame = pd.DataFrame(rows, columns=columns).sort_values("customer_id").reset_index(drop=True)
    for col in ("first_day", "last_day"):
        frame[col] = pd.to_datetime(frame[col]).dt.date
    for col in frame.columns.drop(["customer_id", "first_day", "last_day"]):
        frame[col] = frame[col].astype(float)
    return frame


def test_summary_sql_text_gives_the_same_rows_on_duckdb_and_postgres(sample_tx):
    # The SQL text the expression compiles to, run as text on each engine, gives equal rows:
    # the expression uses no function one dialect lacks or computes differently.
    import duckdb
    import psycopg

    ibis = pytest.importorskip("ibis")
    schema = {
        "customer_id": "string",
        "ts": "timestamp",
        "amount": "float64",
        "quantity": "float64",
    }
    expr = build_summary_expr(ibis.table(schema, name="tx"), CAL_END, HOLD_END)
    duck = duckdb.connect()
    duck.register("tx", sample_tx.select(list(schema)))
    result = duck.execute(str(ibis.to_sql(expr, dialect="duckdb")))
    columns = [d[0] for d in result.description]
    on_duckdb = _frame(result.fetchall(), columns)
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres") as pg:
        pg.execute(
            "CREATE TEMP TABLE tx (customer_id text, ts timestamp, amount float8, quantity float8)"
        )
        with pg.cursor().copy("COPY tx FROM STDIN") as copy:
            for row in zip(*(sample_tx[c].to_pylist() for c in schema), strict=True):
                copy.write_row(row)
        cursor = pg.execute(str(ibis.to_sql(expr, dialect="postgres")))
        on_postgres = _frame(cursor.fetchall(), [d.name for d in cursor.description])
    assert len(on_duckdb) == 2357
    assert on_duckdb["n_days"].sum() > on_duckdb["customer_id"].nunique()  # repeat buyers
    pd.testing.assert_frame_equal(on_postgres[columns], on_duckdb, check_exact=False, rtol=1e-9)
    # The PySpark dialect compiles too (its results are compared above, on Spark itself).
    pytest.importorskip("pyspark")
    ibis.pyspark  # noqa: B018 - loading the backend registers the options its compiler reads
    assert "customer_id" in ibis.to_sql(expr, dialect="pyspark")
    assert callable(finish_summary)
