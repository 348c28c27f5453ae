"""Score customers on Spark: summaries and per-customer scores on the executors, fits on the driver.

The same purchase rules, models and decisions as score_customers (DuckDB), laid out for a
base that outgrows one machine:

* the executors net the purchases per customer and day and summarise them (the Ibis
  expressions of kequn.analytics.engine, compiled to Spark SQL);
* the driver fits BG/NBD (or MBG/NBD) on the distinct (x, t_x, T) rows with their
  counts, and Gamma-Gamma on the distinct (purchase days, order values) rows: a few
  thousand to a few million rows whatever the number of customers;
* the RFM ranks are global sorts (range-partitioned, each partition numbered in place);
* the executors score their customers with pandas batches (mapInPandas), the fitted
  parameters and churn model shipped to them.

The value models are judged and the churn model trained on the driver, on the days of
the same sample of at most churn.TRAINING_CUSTOMERS customers as the DuckDB refresh
(drawn from every id, 8 bytes a customer on the driver).

PySpark is imported when a function here runs: Kequn runs without it.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from . import churn, clv, lifecycle, rfm, valuemodels
from .engine import DailyPurchases, build_daily_expr, build_daily_summary_expr, days_per_unit
from .errors import AnalyticsInputError, InsufficientDataError
from .scores import as_datetime, choose_value_models, fit_count_models
from .summaries import sample_customer_ids

Progress = Callable[[str], None]

INSTALL_HINT = "install it with pip install 'kequn[spark]' (and a Java 17 runtime)"
MASTER_TIMEOUT_SECONDS = 5.0

# One row per customer who bought, in model units (engine.finish_summary's columns that
# the scores read), as the executors hand it on.
SUMMARY_SCHEMA = (
    "customer_id long, first_day date, x long, t_x double, T double, t_x_days long, "
    "T_days long, frequency long, recency_days long, monetary_total double, "
    "monetary_net double, monetary_avg double, repeat_avg double, first_amount double, "
    "quantity double, n_rows long, refunds double, median_gap_days double, "
    "last_gap_days double, max_prior_gap_days double, last_amount double, "
    "late_mean double, early_mean double, monetary_key double"
)
SCORE_SCHEMA = (
    "customer_id long, recency_days long, frequency long, monetary double, r_score int, "
    "f_score int, m_score int, rfm_score string, segment string, segment_en string, "
    "segment_zh string, p_alive double, expected_purchases double, expected_spend double, "
    "clv double, lifecycle_stage string, lifecycle_stage_en string, lifecycle_stage_zh string"
)
# The churn model's inputs, prefixed: p_alive is BG/NBD's here, the chosen model's in the scores.
FEATURE_PREFIX = "feature_"
FEATURE_SCHEMA = ", ".join(f"{FEATURE_PREFIX}{name} double" for name in churn.FEATURES)
RISK_SCHEMA = (
    "customer_id long, churn_risk double, churn_reasons_en string, churn_reasons_zh string"
)


class SparkUnavailableError(AnalyticsInputError):
    """PySpark, Java or the Spark master cannot be used; the message names which and the fix."""


def check_master_reachable(master: str, timeout: float = MASTER_TIMEOUT_SECONDS) -> None:
    """Fail fast when a standalone master (spark://host:port,...) answers on none of its addresses."""
    if not master.startswith("spark://"):
        return  # local[*], yarn, k8s://: Spark reports those itself
    tried = []
    for address in master.removeprefix("spark://").split(","):
        host, _, port = address.partition(":")
        try:
            with socket.create_connection((host, int(port or 7077)), timeout=timeout):
                return
        except (OSError, ValueError) as exc:
            tried.append(f"{address}: {exc}")
    raise SparkUnavailableError(
        f"Spark master {master} is unreachable ({'; '.join(tried)}): "
        "start it or give the right URL with --spark-master or KEQUN_SPARK_MASTER"
    )


def start_spark(master: str, *, work_dir: str | Path, app_name: str = "kequn-analytics") -> Any:
    """Return a SparkSession on ``master`` whose scratch files stay under ``work_dir``."""
    check_master_reachable(master)
    try:
        from pyspark.sql import SparkSession  # noqa: PLC0415 -- optional extra: Kequn runs without it
    except ImportError:
        raise SparkUnavailableError(
            f"the Spark engine needs PySpark, which is not installed: {INSTALL_HINT}"
        ) from None
    work = Path(work_dir).resolve()
    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.warehouse.dir", str(work / "warehouse"))
        .config("spark.local.dir", str(work / "scratch"))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={work}")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    if master.startswith("local"):
        # One machine's cores: the default 200 shuffle partitions are mostly start-up cost.
        cores = master.removeprefix("local").strip("[]").split(",")[0]
        partitions = (os.cpu_count() or 2) if cores in {"", "*"} else int(cores)
        builder = builder.config("spark.sql.shuffle.partitions", str(partitions)).config(
            "spark.ui.showConsoleProgress", "false"
        )
    try:
        return builder.getOrCreate()
    except Exception as exc:  # the JVM's errors have many types; all mean "no Spark"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SparkUnavailableError(
            f"Spark did not start on {master}: {first} (it needs Java 17 or later on PATH or in JAVA_HOME)"
        ) from None


@dataclass(frozen=True)
class SparkScores:
    """Scores as a Spark DataFrame (one row per customer who bought) and the models' details."""

    frame: Any
    models: dict[str, Any]


def score_customers_on_spark(
    spark: Any,
    purchases: Any,
    now: date | datetime | str,
    *,
    time_unit: str = "week",
    churn_horizon_days: int = 90,
    clv_months: int = 12,
    monthly_discount_rate: float = 0.01,
    segment_rules: Mapping[str, Mapping[str, tuple[int, int]]] | None = None,
    segment_labels: Mapping[str, tuple[str, str]] | None = None,
    thresholds: lifecycle.LifecycleThresholds | None = None,
    count_model: str = "auto",
    spend_model: str = "auto",
    progress: Progress | None = None,
) -> SparkScores:
    """Return score_customers's scores of the customers who bought, computed on Spark.

    ``purchases`` is a Spark DataFrame or the path of Parquet files with customer_id,
    ts (naive UTC), amount and quantity (kequn.scoring.loading's table). The result
    has score_customers's columns except prospects (customers without purchases) and
    churn_percentile, which the caller adds with the customers it knows.
    """
    import ibis  # noqa: PLC0415 -- its PySpark backend loads only with PySpark

    say = progress or (lambda _msg: None)
    now_dt = as_datetime(now)
    end = now_dt.date()
    unit = days_per_unit(time_unit)
    models: dict[str, Any] = {"now": now_dt.isoformat(), "time_unit": time_unit, "notes": []}
    models["engine"] = {"name": "spark", "master": spark.sparkContext.master}
    tx = spark.read.parquet(str(purchases)) if isinstance(purchases, str | Path) else purchases
    _check_not_future(tx, now_dt)
    name = f"kequn_tx_{uuid.uuid4().hex[:12]}"
    tx.createOrReplaceTempView(name)
    con = ibis.pyspark.connect(spark)
    daily_view = f"{name}_daily"
    # Netted once and cached on the executors: the summary, the value-model holdout and
    # every churn snapshot read the same days.
    daily_frame = spark.sql(con.compile(build_daily_expr(con.table(name)))).persist()
    daily_frame.createOrReplaceTempView(daily_view)
    daily = DailyPurchases(con, con.table(daily_view))
    try:
        say("aggregating customers on Spark")
        raw = spark.sql(con.compile(build_daily_summary_expr(daily.table, end, None, True)))
        summary = raw.mapInPandas(_finisher(end, unit), SUMMARY_SCHEMA).persist()
        n = summary.count()
        if n == 0:
            raise AnalyticsInputError(f"no purchases on or before {end}")
        stats = _collect_statistics(spark, summary)
        # The value models are judged and churn trained on the same sample of customers,
        # drawn as the DuckDB refresh draws it: only their days reach the driver.
        sample = _sample_customers(daily, summary, churn.TRAINING_CUSTOMERS)
        say("choosing value models")
        count_model, spend_model = choose_value_models(
            sample,
            pd.DataFrame({"first_day": [stats.first_day]}),
            end,
            churn_horizon_days,
            time_unit,
            con,
            count_model,
            spend_model,
            models,
        )
        say("fitting the value models on the driver")
        fits = _fit_value_models(stats, count_model, spend_model, models)
        say("ranking RFM on Spark")
        ranked = _add_ranks(spark, summary, n)
        say("training churn model on the driver")
        horizon_units = churn_horizon_days / unit
        model, churn_info = _train_churn(sample, end, churn_horizon_days, time_unit, con)
        models["churn"] = churn_info
        if model is None and fits.bgnbd is not None:
            models["notes"].append("churn risk falls back to BG/NBD P(no purchase in horizon)")
        say("scoring customers on the executors")
        scorer = _Scorer(
            n=n,
            unit=unit,
            horizon_units=horizon_units,
            clv_months=clv_months,
            discount_rate=monthly_discount_rate,
            rules=segment_rules,
            labels={**rfm.SEGMENT_LABELS, **(segment_labels or {})},
            thresholds=thresholds,
            population_gap=stats.population_gap,
            fits=fits,
        )
        scored = ranked.mapInPandas(scorer.score, f"{SCORE_SCHEMA}, {FEATURE_SCHEMA}").persist()
        # A feature no customer has is 0 for the model (churn.build_feature_matrix); judged
        # on the whole base, not per batch, so a batch of one-time buyers scores like the rest.
        empty = _empty_features(scored)
        risks = scored.mapInPandas(_risk_scorer(model, empty, fits.bgnbd is not None), RISK_SCHEMA)
        score_columns = [c.split()[0] for c in SCORE_SCHEMA.split(", ")]
        frame = scored.select(*score_columns).join(risks, "customer_id")
        return SparkScores(frame, models)
    finally:
        spark.catalog.dropTempView(name)


def _check_not_future(tx: Any, now: datetime) -> None:
    """Refuse purchases dated after ``now`` in one line naming the first (io.check_not_future's rule)."""
    from pyspark.sql import functions as F  # noqa: N812, PLC0415 -- Spark's own convention; optional extra

    limit = now.replace(tzinfo=None) if now.tzinfo else now
    late = tx.where(F.col("ts") > F.lit(limit).cast(tx.schema["ts"].dataType))
    if late.isEmpty():  # one pass that stops at the first late row; the details only then
        return
    first = late.orderBy("ts", "customer_id").select("customer_id", "ts").first()
    if first is not None:
        raise AnalyticsInputError(
            f"{late.count()} transaction(s) dated after now ({now:%Y-%m-%d %H:%M}); first is "
            f"customer {first[0]} at {first[1]:%Y-%m-%d %H:%M} — fix the dates or pass a later --now",
            source="purchases",
            column="ts",
        )


@dataclass(frozen=True)
class _Statistics:
    """What the driver reads of the summary: compressed rows and population figures."""

    first_day: date
    counts: pd.DataFrame  # x, t_x_days, T_days, n
    spend: pd.DataFrame  # frequency, monetary_avg, repeat_avg, first_amount, n
    population_gap: float | None


def _collect_statistics(spark: Any, summary: Any) -> _Statistics:
    """Read the compressed sufficient statistics and the population's usual gap off the summary."""
    from pyspark.sql import functions as F  # noqa: N812, PLC0415 -- Spark's own convention; optional extra

    first_day = summary.agg(F.min("first_day")).first()[0]
    counts = summary.groupBy("x", "t_x_days", "T_days").agg(F.count("*").alias("n")).toPandas()
    spend = (
        summary.groupBy("frequency", "monetary_avg", "repeat_avg", "first_amount")
        .agg(F.count("*").alias("n"))
        .toPandas()
    )
    gaps = (
        summary.where(F.col("median_gap_days").isNotNull() & ~F.isnan("median_gap_days"))
        .where(F.col("median_gap_days") > 0)
        .groupBy("median_gap_days")
        .agg(F.count("*").alias("n"))
        .toPandas()
    )
    return _Statistics(
        first_day, counts, spend, _weighted_median(gaps["median_gap_days"], gaps["n"])
    )


def _weighted_median(values: pd.Series, counts: pd.Series) -> float | None:
    """Return np.median of the values repeated counts times (None when there are none)."""
    if len(values) == 0:
        return None
    order = np.argsort(values.to_numpy(float), kind="stable")
    v = values.to_numpy(float)[order]
    cum = np.cumsum(counts.to_numpy(np.int64)[order])
    total = int(cum[-1])
    # The middle one or two of total sorted values (0-based), as np.median averages them.
    lo = v[np.searchsorted(cum, (total - 1) // 2, side="right")]
    hi = v[np.searchsorted(cum, total // 2, side="right")]
    return float((lo + hi) / 2)


def _expand(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Return the compressed rows repeated by their counts (the models' fits compress them again)."""
    # Sorted first: then the fits see rows in one order whatever order Spark returned.
    frame = frame.sort_values(columns, kind="stable")
    repeats = frame["n"].to_numpy(np.int64)
    return pd.DataFrame({c: np.repeat(frame[c].to_numpy(), repeats) for c in columns})


@dataclass(frozen=True)
class _Fits:
    """Fitted parameters the executors need."""

    count_model: str
    spend_model: str
    bgnbd: dict[str, float] | None
    value: dict[str, float] | None
    spend: dict[str, float] | None


def _fit_value_models(
    stats: _Statistics, count_model: str, spend_model: str, models: dict[str, Any]
) -> _Fits:
    """Fit BG/NBD, the chosen purchase model and order-value model as score_customers does."""
    unit = days_per_unit(models["time_unit"])
    rows = _expand(stats.counts, ["x", "t_x_days", "T_days"])
    x = rows["x"].to_numpy(float)
    t_x = rows["t_x_days"].to_numpy(float) / unit
    T = rows["T_days"].to_numpy(float) / unit  # noqa: N806 - the papers' name
    params, value_params, count_model = fit_count_models(x, t_x, T, count_model, models)
    spend_rows = _expand(stats.spend, ["frequency", "monetary_avg", "repeat_avg", "first_amount"])
    spend_rows["x"] = spend_rows["frequency"] - 1
    spend = None
    try:
        gg = valuemodels.fit_spend_model(spend_model, spend_rows)
        spend = gg.params
        models["gammagamma"] = gg.to_dict()
    except InsufficientDataError as exc:
        models["notes"].append(f"Gamma-Gamma not fitted: {exc}")
    models["value_models"]["used"] = {"count_model": count_model, "spend_model": spend_model}
    return _Fits(count_model, spend_model, params, value_params, spend)


def _add_ranks(spark: Any, summary: Any, n: int) -> Any:
    """Return the summary with r_rank, f_rank and m_rank: score_quintiles's 0-based ranks."""
    from pyspark.sql import functions as F  # noqa: N812, PLC0415 -- Spark's own convention; optional extra

    ranked = summary
    # Worst first, ties by the customer id as text (rfm.rank_ids_as_text's order).
    for rank, key in (
        ("r_rank", F.col("recency_days").desc()),
        ("f_rank", F.col("frequency").asc()),
        ("m_rank", F.col("monetary_key").asc()),
    ):
        ranked = ranked.join(_rank_globally(spark, summary, key, rank), "customer_id")
    return ranked


def _rank_globally(spark: Any, frame: Any, key: Any, name: str) -> Any:
    """Return customer_id and its 0-based position in (key, id as text) order, sorted in parallel."""
    from pyspark.sql import functions as F  # noqa: N812, PLC0415 -- Spark's own convention; optional extra

    text_id = F.col("customer_id").cast("string")
    # Range partitions hold consecutive stretches of the order; each is numbered in place
    # and offset by the sizes of the partitions before it. The order is total (ids are
    # unique), so a recomputed partition numbers its rows the same way.
    ordered = (
        frame.repartitionByRange(key, text_id)
        .sortWithinPartitions(key, text_id)
        .select(
            "customer_id",
            F.spark_partition_id().alias("_part"),
            F.monotonically_increasing_id().alias("_seq"),
        )
        .persist()
    )
    sizes = (
        ordered.groupBy("_part")
        .agg(F.count("*").alias("_n"), F.min("_seq").alias("_first"))
        .toPandas()
        .sort_values("_part")
    )
    sizes["_offset"] = sizes["_n"].cumsum() - sizes["_n"]
    offsets = spark.createDataFrame(sizes[["_part", "_first", "_offset"]])
    return ordered.join(F.broadcast(offsets), "_part").select(
        "customer_id", (F.col("_seq") - F.col("_first") + F.col("_offset")).alias(name)
    )


def _finisher(end: date, unit: float) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """Return the executors' step from raw sums to model units (engine.finish_summary)."""
    from .engine import finish_summary  # noqa: PLC0415 -- shipped to the executors with the closure

    columns = [c.split()[0] for c in SUMMARY_SCHEMA.split(", ")]

    def finish(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for raw in batches:
            if raw.empty:
                continue
            done = finish_summary(raw, end, unit)
            done["first_day"] = pd.to_datetime(done["first_day"]).dt.date
            # rfm.score_rfm's ranking key, rounded here by NumPy exactly as there.
            done["monetary_key"] = np.round(
                done["monetary_net"].to_numpy(float), rfm.MONETARY_DECIMALS
            )
            yield done.reindex(columns=columns)

    return finish


@dataclass(frozen=True)
class _Scorer:
    """Score one batch of summarised customers with the driver's fits (runs on the executors)."""

    n: int
    unit: float
    horizon_units: float
    clv_months: int
    discount_rate: float
    rules: Mapping[str, Mapping[str, tuple[int, int]]] | None
    labels: Mapping[str, tuple[str, str]]
    thresholds: lifecycle.LifecycleThresholds | None
    population_gap: float | None
    fits: _Fits

    def score(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        """Yield score rows and churn features for each batch."""
        for batch in batches:
            if not batch.empty:
                yield self._score_batch(batch.reset_index(drop=True))

    def _score_batch(self, s: pd.DataFrame) -> pd.DataFrame:
        fits = self.fits
        out = pd.DataFrame({"customer_id": s["customer_id"].to_numpy(np.int64)})
        out["recency_days"] = s["recency_days"].to_numpy(np.int64)
        out["frequency"] = s["frequency"].to_numpy(np.int64)
        out["monetary"] = s["monetary_net"].to_numpy(float)
        for score, rank in (("r_score", "r_rank"), ("f_score", "f_rank"), ("m_score", "m_rank")):
            # rfm.score_quintiles: floor(rank * 5 / n) + 1, rank 0-based from the worst.
            out[score] = (s[rank].to_numpy(np.int64) * 5 // self.n + 1).astype(np.int32)
        out["rfm_score"] = (
            out["r_score"].astype(str) + out["f_score"].astype(str) + out["m_score"].astype(str)
        )
        segment = rfm.assign_segments(
            out["r_score"].to_numpy(), out["f_score"].to_numpy(), self.rules
        )
        out["segment"] = segment
        found = {k: self.labels.get(k, (k, k)) for k in set(segment)}
        out["segment_en"] = [found[k][0] for k in segment]
        out["segment_zh"] = [found[k][1] for k in segment]
        x, t_x, T = (s[c].to_numpy(float) for c in ("x", "t_x", "T"))  # noqa: N806
        if fits.value is not None:
            out["p_alive"] = clv.probability_alive(fits.count_model, fits.value, x, t_x, T)
            out["expected_purchases"] = clv.expected_purchases(
                fits.count_model, fits.value, self.horizon_units, x, t_x, T
            )
        else:
            out["p_alive"] = np.nan
            out["expected_purchases"] = np.nan
        if fits.spend is not None:
            out["expected_spend"] = valuemodels.expected_order_value(
                fits.spend_model, fits.spend, s
            )
        else:
            out["expected_spend"] = s["monetary_avg"].to_numpy(float)
        if fits.value is not None:
            out["clv"] = clv.compute_clv(
                fits.value,
                out["expected_spend"].to_numpy(float),
                x,
                t_x,
                T,
                periods=self.clv_months,
                discount_rate=self.discount_rate,
                days_per_unit=self.unit,
                model=fits.count_model,
            )
        else:
            out["clv"] = np.nan
        stages = lifecycle.assign_lifecycle_stages(
            s,
            p_alive=out["p_alive"].to_numpy(float),
            thresholds=self.thresholds,
            population_gap_days=self.population_gap,
        ).set_index("customer_id")
        for column in ("lifecycle_stage", "lifecycle_stage_en", "lifecycle_stage_zh"):
            out[column] = stages[column].reindex(out["customer_id"]).to_numpy()
        features = churn.build_churn_features(
            s,
            fits.bgnbd,
            self.horizon_units,
            population_gap_days=np.nan if self.population_gap is None else self.population_gap,
        )
        for name in churn.FEATURES:
            out[FEATURE_PREFIX + name] = features[name].to_numpy(float)
        return out


def _empty_features(scored: Any) -> list[str]:
    """Return the churn features no customer of the scored frame has a value for."""
    from pyspark.sql import functions as F  # noqa: N812, PLC0415 -- Spark's own convention; optional extra

    counts = scored.agg(
        *[
            F.count(
                F.when(F.col(FEATURE_PREFIX + c).isNotNull() & ~F.isnan(FEATURE_PREFIX + c), 1)
            ).alias(c)
            for c in churn.FEATURES
        ]
    ).first()
    return [c for c in churn.FEATURES if counts[c] == 0]


def _risk_scorer(
    model: Any, empty: list[str], has_bgnbd: bool
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """Return the executors' step from churn features to churn risk and its reasons."""
    blank = [churn.FEATURES.index(c) for c in empty]

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            if batch.empty:
                continue
            f = pd.DataFrame({c: batch[FEATURE_PREFIX + c].to_numpy(float) for c in churn.FEATURES})
            if model is not None:
                X = f[churn.FEATURES].to_numpy(float)  # noqa: N806 - scikit-learn's name
                X[:, blank] = 0.0
                with threadpool_limits(limits=1, user_api="openmp"):
                    risk = model.predict_proba(X)[:, 1]
            elif has_bgnbd:
                risk = f["p_no_purchase"].to_numpy(float)
            else:
                risk = np.full(len(f), np.nan)
            # The reasons quote the P(alive) shown beside them, as score_customers does.
            en, zh = churn.explain_churn_risk(f.assign(p_alive=batch["p_alive"].to_numpy(float)))
            yield pd.DataFrame(
                {
                    "customer_id": batch["customer_id"].to_numpy(np.int64),
                    "churn_risk": risk,
                    "churn_reasons_en": en,
                    "churn_reasons_zh": zh,
                }
            )

    return score


def _train_churn(
    daily: DailyPurchases, end: date, horizon_days: int, time_unit: str, con: Any
) -> tuple[Any, dict[str, Any]]:
    """Train the churn model on the driver as score_customers does; return (model or None, info)."""
    train_cut = end - timedelta(days=horizon_days)
    info: dict[str, Any] = {
        "train_cutoff": train_cut.isoformat(),
        "label_end": end.isoformat(),
        "horizon_days": horizon_days,
    }
    try:
        x_train, y_train = churn.build_training_set(
            daily, train_cut, horizon_days, time_unit, con, max_customers=None
        )
        if len(y_train) < 100:
            raise InsufficientDataError(
                f"churn: {len(y_train)} customers bought before {train_cut} (need 100)"
            )
        with threadpool_limits(limits=1, user_api="openmp"):
            model = churn.train_churn_model(x_train, y_train)
        info.update(n_train=len(y_train), train_churn_rate=float(y_train.mean()))
        return model, info
    except InsufficientDataError as exc:
        info["skipped"] = str(exc)
        return None, info


def _sample_customers(daily: DailyPurchases, summary: Any, limit: int) -> DailyPurchases:
    """Return the days of at most ``limit`` of the summarised customers (summaries.sample_customer_ids)."""
    count = summary.count()
    if count <= limit:
        return daily
    con = daily.con
    spark = con._session
    # The same draw as the DuckDB refresh: every id on the driver (8 bytes a customer).
    ids = summary.select("customer_id").toPandas()["customer_id"]
    chosen = spark.createDataFrame(pd.DataFrame({"customer_id": sample_customer_ids(ids, limit)}))
    name = f"kequn_sample_{uuid.uuid4().hex[:12]}"
    frame = spark.table(daily.table.get_name())
    frame.join(chosen, "customer_id", "left_semi").createOrReplaceTempView(name)
    return DailyPurchases(con, con.table(name))


__all__ = [
    "SparkScores",
    "SparkUnavailableError",
    "check_master_reachable",
    "score_customers_on_spark",
    "start_spark",
]
