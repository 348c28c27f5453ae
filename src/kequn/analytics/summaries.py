"""Per-customer purchase statistics kept between refreshes, and scoring summaries from them.

A customer's purchase days, spend, refunds and rhythm do not depend on the day the scores
are computed for; only recency and age do. summarize_purchases computes the former once
per customer (a store keeps them and recomputes a customer only when its orders change);
summary_at turns them into what summarize_customers returns for a scoring day, so the
scores read one row per customer instead of every transaction.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .engine import (
    build_daily_summary_expr,
    days_per_unit,
    execute_to_pandas,
    finish_summary,
    prepare_daily,
    to_date,
)
from .errors import AnalyticsInputError

# Later than any purchase: the statistics cover every day a customer bought on.
LAST_DAY = date(9999, 12, 31)
EPOCH = np.datetime64("1970-01-01", "D")
# Stored per customer; days count from 1970-01-01, latest_at is microseconds since then.
SUMMARY_COLUMNS = (
    "customer_id",
    "first_day",
    "last_day",
    "latest_at",
    "n_days",
    "total",
    "first_amount",
    "n_rows",
    "refunds",
    "median_gap_days",
    "last_gap_days",
    "max_prior_gap_days",
    "last_amount",
    "late_total",
    "early_total",
)
DECIMALS = 6
_INTEGERS = ("customer_id", "first_day", "last_day", "latest_at", "n_days", "n_rows")


def summarize_purchases(transactions: pa.Table, backend: Any = None) -> pd.DataFrame:
    """Return SUMMARY_COLUMNS for every customer with a purchase day in ``transactions``.

    ``transactions`` has customer_id, ts (naive UTC), amount and quantity, like
    score_customers takes; the days are netted by kequn.analytics.engine's rules.
    """
    if transactions.num_rows == 0:
        return empty_summaries()
    daily = prepare_daily(transactions, backend)
    raw = execute_to_pandas(
        daily.con, build_daily_summary_expr(daily.table, LAST_DAY, None, with_rhythm=True)
    )
    latest = transactions.group_by("customer_id").aggregate([("ts", "max")])
    latest_at = pd.Series(
        pc.cast(latest.column("ts_max"), pa.int64()).to_numpy(),
        index=latest.column("customer_id").to_numpy(),
    )
    out = pd.DataFrame({"customer_id": raw["customer_id"].to_numpy(np.int64)})
    for name in ("first_day", "last_day"):
        days = pd.to_datetime(raw[name]).to_numpy().astype("datetime64[D]")
        out[name] = (days - EPOCH).astype(np.int64)
    out["latest_at"] = latest_at.reindex(out["customer_id"]).to_numpy(np.int64)
    # Totals, not means: a mean of cents has no short exact form, a total does. ntile(2)
    # puts the middle day of an odd count in the early half.
    n_days = raw["n_days"].to_numpy(np.int64)
    raw["late_total"] = raw["late_mean"].to_numpy(float) * (n_days // 2)
    raw["early_total"] = raw["early_mean"].to_numpy(float) * (n_days - n_days // 2)
    for name in SUMMARY_COLUMNS[4:]:
        if name in _INTEGERS:
            out[name] = raw[name].to_numpy(np.int64)
        else:
            # Sums of the same amounts in another order differ in the last bit: rounded to
            # a millionth, a customer's statistics are the same whichever customers are
            # summarised with it (whole store or a few), so refreshes agree exactly.
            out[name] = np.round(raw[name].to_numpy(float), DECIMALS)
    return out


def empty_summaries() -> pd.DataFrame:
    """Return a summaries frame without rows."""
    return pd.DataFrame(
        {c: pd.Series([], dtype=np.int64 if c in _INTEGERS else float) for c in SUMMARY_COLUMNS}
    )


def check_summaries_not_future(summaries: pd.DataFrame, now: datetime) -> None:
    """Refuse summaries holding an order dated after ``now``, naming the first customer."""
    if summaries.empty:
        return
    naive = now.replace(tzinfo=None) if now.tzinfo else now
    limit = (np.datetime64(naive, "us") - np.datetime64("1970-01-01", "us")).astype(np.int64)
    late = summaries["latest_at"].to_numpy(np.int64) > limit
    if late.any():
        first = summaries.loc[late].iloc[0]
        when = np.datetime64(int(first["latest_at"]), "us").astype(datetime)
        raise AnalyticsInputError(
            f"{int(late.sum())} customer(s) have orders dated after now ({naive:%Y-%m-%d %H:%M}); "
            f"first is customer {int(first['customer_id'])} at {when:%Y-%m-%d %H:%M} — "
            "fix the dates or pass a later --now",
            column="ordered_at",
        )


def summary_at(
    summaries: pd.DataFrame, end: date | datetime | str, time_unit: str = "week"
) -> pd.DataFrame:
    """Return what summarize_customers(..., end, with rhythm) returns, from stored summaries."""
    cal_end = to_date(end)
    raw = pd.DataFrame({"customer_id": summaries["customer_id"].to_numpy(np.int64)})
    for name in ("first_day", "last_day"):
        days = EPOCH + summaries[name].to_numpy(np.int64).astype("timedelta64[D]")
        raw[name] = days.astype("datetime64[us]")
    raw["n_days"] = summaries["n_days"].to_numpy(np.int64)
    raw["total"] = summaries["total"].to_numpy(float)
    raw["first_amount"] = summaries["first_amount"].to_numpy(float)
    raw["quantity"] = np.nan  # the store records no quantities
    raw["n_rows"] = summaries["n_rows"].to_numpy(np.int64)
    raw["refunds"] = summaries["refunds"].to_numpy(float)
    for name in ("median_gap_days", "last_gap_days", "max_prior_gap_days", "last_amount"):
        raw[name] = summaries[name].to_numpy(float)
    n_days = raw["n_days"].to_numpy(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        raw["late_mean"] = summaries["late_total"].to_numpy(float) / (n_days // 2)
        raw["early_mean"] = summaries["early_total"].to_numpy(float) / (n_days - n_days // 2)
    raw.loc[n_days < 2, "late_mean"] = np.nan
    if not raw["customer_id"].is_monotonic_increasing:
        raw = raw.sort_values("customer_id", kind="stable").reset_index(drop=True)
    return finish_summary(raw, cal_end, days_per_unit(time_unit))


def sample_customer_ids(customer_ids: Any, limit: int, seed: int = 0) -> np.ndarray:
    """Return at most ``limit`` of the ids, drawn at random by ``seed``, sorted."""
    ids = np.sort(np.asarray(customer_ids, dtype=np.int64))
    if len(ids) <= limit:
        return ids
    chosen = np.random.default_rng(seed).choice(len(ids), limit, replace=False)
    return ids[np.sort(chosen)]
