"""Aggregate transactions into per-customer statistics, once, as Ibis expressions.

The expressions built here run unchanged on DuckDB (the in-process default), PostgreSQL
and Spark through Ibis backends. Everything downstream (models, scores) works on the
small per-customer result as a pandas DataFrame.

Purchase rules (documented once, used everywhere):

* Rows are netted per customer and calendar day: a refund (negative amount) on the same
  day cancels that day's spend.
* A day counts as a purchase when its net amount is > 0, or when it is exactly 0 and
  holds no negative row (free items, e.g. the zero-dollar CDNOW rows); a day that nets
  to <= 0 because of refunds is not a purchase.
* Refund days that are not purchases (net < 0) are reported as ``refunds`` (<= 0) and
  subtracted from ``monetary_net``; they never change purchase counts or timing.
* Time is measured in whole days; ``calibration_end`` is inclusive (purchases on that
  day belong to the calibration period) and ``T`` runs from the first purchase day to
  ``calibration_end``: ``T = (calibration_end - first_day).days / days_per_unit``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, overload

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa

from .errors import AnalyticsInputError
from .io import normalize_transactions

RHYTHM_COLUMNS = (
    "median_gap_days",
    "last_gap_days",
    "max_prior_gap_days",
    "last_amount",
    "late_mean",
    "early_mean",
)
DAYS_PER_UNIT = {"day": 1.0, "week": 7.0, "month": 365.25 / 12}


@overload
def to_date(value: date | datetime | str) -> date: ...
@overload
def to_date(value: None) -> None: ...
@overload
def to_date(value: date | datetime | str | None) -> date | None: ...
def to_date(value: date | datetime | str | None) -> date | None:
    """Return a ``date`` from a date, datetime or ISO string (None stays None)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise AnalyticsInputError(f"not a date: {value!r} (use YYYY-MM-DD)") from None


def days_per_unit(time_unit: str) -> float:
    """Return the number of days in one model time unit (day, week or month)."""
    try:
        return DAYS_PER_UNIT[time_unit]
    except KeyError:
        raise AnalyticsInputError(
            f"unknown time unit {time_unit!r}; use one of {', '.join(DAYS_PER_UNIT)}"
        ) from None


def connect(backend: Any = None) -> Any:
    """Return an Ibis connection: the given one, or a fresh in-process DuckDB."""
    return backend if backend is not None else ibis.duckdb.connect()


def register_transactions(
    con: Any, transactions: Any, name: str = "kequn_transactions"
) -> ibis.Table:
    """Load canonical transactions into an Ibis backend and return the table expression."""
    if isinstance(transactions, ibis.Table):
        return transactions
    table = (
        transactions if isinstance(transactions, pa.Table) else normalize_transactions(transactions)
    )
    keep = [
        c
        for c in ("customer_id", "ts", "amount", "quantity", "order_id", "channel")
        if c in table.column_names
    ]
    table = table.select(keep)
    if con.name == "duckdb":
        # Zero-copy view over Arrow memory; create_table would copy 10M rows for nothing.
        con.con.register(name, table)
        return con.table(name)
    try:
        # Session-scoped: nothing is left behind in the database or a Spark warehouse.
        return con.create_table(name, table, overwrite=True, temp=True)
    except NotImplementedError:
        return con.create_table(name, table, overwrite=True)


def build_daily_expr(t: ibis.Table) -> ibis.Table:
    """Net transactions per customer and day; flag days that count as purchases."""
    d = t.mutate(day=t.ts.date(), neg=ibis.ifelse(t.amount < 0, 1, 0))
    daily = d.group_by(["customer_id", "day"]).aggregate(
        amount=d.amount.sum(),
        quantity=d.quantity.sum(),
        n_rows=d.count(),
        n_negative=d.neg.sum(),
    )
    is_purchase = (daily.amount > 0) | ((daily.amount == 0) & (daily.n_negative == 0))
    return daily.mutate(is_purchase=is_purchase)


def build_summary_expr(
    t: ibis.Table,
    calibration_end: date,
    holdout_end: date | None = None,
    with_rhythm: bool = False,
) -> ibis.Table:
    """Build per-customer sufficient statistics for the calibration (and holdout) period.

    Output columns: customer_id, first_day, last_day, n_days (purchase days), total
    (spend on purchase days), first_amount (spend on the first purchase day), quantity,
    n_rows, refunds (net of refund-only days, <= 0), with a holdout holdout_days and
    holdout_amount, and with rhythm the columns of build_daily_summary_expr. Customers
    with no purchase by ``calibration_end`` are absent.
    """
    return build_daily_summary_expr(build_daily_expr(t), calibration_end, holdout_end, with_rhythm)


def build_daily_summary_expr(
    daily: ibis.Table,
    calibration_end: date,
    holdout_end: date | None = None,
    with_rhythm: bool = False,
) -> ibis.Table:
    """Build build_summary_expr's statistics from days already netted by build_daily_expr.

    With rhythm, also: median_gap_days, last_gap_days and max_prior_gap_days (days between
    purchase days), last_amount, and early_mean/late_mean (mean spend of the earlier and
    later half of purchase days; the middle day of an odd count is early).
    """
    cal_end = ibis.literal(calibration_end)
    cal = daily.filter(daily.day <= cal_end)
    p = cal.filter(cal.is_purchase)
    w = ibis.window(group_by=p.customer_id, order_by=p.day)
    # One mutate: backends compute window functions of one select in one sort per
    # customer's days, which is most of the cost on millions of rows.
    if not with_rhythm:
        p = p.mutate(seq=ibis.row_number().over(w))
    else:
        p = p.mutate(
            seq=ibis.row_number().over(w),
            gap=p.day.delta(p.day.lag().over(w), unit="day"),
            is_last=p.day.lead().over(w).isnull(),
            half=ibis.ntile(2).over(w),
        )
    stats = {
        "first_day": p.day.min(),
        "last_day": p.day.max(),
        "n_days": p.count(),
        "total": p.amount.sum(),
        "first_amount": p.amount.sum(where=p.seq == 0),
        "quantity": p.quantity.sum(),
        "n_rows": p.n_rows.sum(),
    }
    if with_rhythm:
        stats |= {
            "median_gap_days": p.gap.median(),
            "last_gap_days": p.gap.max(where=p.is_last),
            "max_prior_gap_days": p.gap.max(where=~p.is_last),
            "last_amount": p.amount.max(where=p.is_last),
            # Ibis counts ntile from 0; one purchase day has no trend (finish_summary nulls it).
            "late_mean": p.amount.mean(where=p.half == 1),
            "early_mean": p.amount.mean(where=p.half == 0),
        }
    summary = p.group_by("customer_id").aggregate(**stats)
    refund_days = cal.filter(~cal.is_purchase)
    refunds = refund_days.group_by("customer_id").aggregate(refunds=refund_days.amount.sum())
    summary = summary.left_join(refunds, "customer_id").select(
        *[summary[c] for c in summary.columns], refunds=refunds.refunds.fill_null(0.0)
    )
    if holdout_end is not None:
        hold = daily.filter(
            (daily.day > cal_end) & (daily.day <= ibis.literal(holdout_end)) & daily.is_purchase
        )
        hold = hold.group_by("customer_id").aggregate(
            holdout_days=hold.count(), holdout_amount=hold.amount.sum()
        )
        summary = summary.left_join(hold, "customer_id").select(
            *[summary[c] for c in summary.columns],
            holdout_days=hold.holdout_days.fill_null(0),
            holdout_amount=hold.holdout_amount.fill_null(0.0),
        )
    if with_rhythm:
        rhythm = [c for c in summary.columns if c in RHYTHM_COLUMNS]
        summary = summary.select(*[c for c in summary.columns if c not in rhythm], *rhythm)
    return summary.order_by("customer_id")


def build_cohort_expr(
    t: ibis.Table | None, until: date, by: str | None = None, *, daily: ibis.Table | None = None
) -> ibis.Table:
    """Build monthly cohort activity: customers, purchase days and spend per cohort month and age.

    ``daily`` (build_daily_expr of ``t``, e.g. a DailyPurchases table) saves netting the
    transactions again; ``t`` is then only read for the ``by`` column.
    """
    if daily is None:
        if t is None:
            raise ValueError("build_cohort_expr needs the transactions or their daily table")
        daily = build_daily_expr(t)
    if by is not None and t is None:
        raise ValueError(f"cohorts by {by!r} need the transactions, not only their days")
    p = daily.filter((daily.day <= ibis.literal(until)) & daily.is_purchase)
    month = p.day.truncate("M")
    p = p.mutate(month=month)
    first = p.group_by("customer_id").aggregate(cohort=p.month.min())
    if by is not None and t is not None:
        chan = t.group_by("customer_id").aggregate(**{by: t[by].min()})
        first = first.left_join(chan, "customer_id").select(
            first.customer_id, first.cohort, chan[by]
        )
    j = p.inner_join(first, "customer_id")
    j = j.mutate(
        age=(j.month.year() - j.cohort.year()) * 12 + (j.month.month() - j.cohort.month()),
    )
    keys = ["cohort", "age"] + ([by] if by else [])
    return j.group_by(keys).aggregate(
        customers=j.customer_id.nunique(),
        purchase_days=j.count(),
        revenue=j.amount.sum(),
    )


@dataclass(frozen=True)
class DailyPurchases:
    """Transactions netted per customer and day once, ready to summarise at many cut-offs.

    Scores summarise the same purchases at up to five dates (scoring, churn snapshots);
    netting every transaction again for each is most of their cost on millions of rows.
    On DuckDB the daily table is materialised; other backends keep the expression.
    """

    con: Any
    table: ibis.Table

    def count_customers(self) -> int:
        """Return how many customers have at least one day."""
        return int(self.con.execute(self.table.customer_id.nunique()))

    def restrict_to(self, customer_ids: Any) -> DailyPurchases:
        """Return the days of the given customers only (DuckDB only)."""
        name = _unique_name("kequn_ids")
        ids = pa.table({"customer_id": pa.array(np.asarray(customer_ids))})
        self.con.con.register(name, ids)
        picked = self.table.semi_join(self.con.table(name), "customer_id")
        return DailyPurchases(self.con, _materialise(self.con, picked))

    def sample_customers(self, limit: int, seed: int = 0) -> DailyPurchases:
        """Return the days of at most ``limit`` customers drawn at random (all when fewer)."""
        if self.con.name != "duckdb" or self.count_customers() <= limit:
            return self
        ids = execute_to_pandas(self.con, self.table.select("customer_id").distinct())[
            "customer_id"
        ]
        # Sorted first so the draw depends on the seed and the ids, not on hash order.
        ids = np.sort(ids.to_numpy())
        chosen = np.random.default_rng(seed).choice(len(ids), limit, replace=False)
        return self.restrict_to(ids[np.sort(chosen)])


_names = iter(range(1, 1 << 62))


def _unique_name(prefix: str) -> str:
    return f"{prefix}_{next(_names)}"


def _materialise(con: Any, expr: ibis.Table) -> ibis.Table:
    if con.name != "duckdb":
        return expr
    return con.create_table(_unique_name("kequn_daily"), expr, temp=True)


def prepare_daily(transactions: Any, backend: Any = None) -> DailyPurchases:
    """Net transactions per customer and day once (see DailyPurchases); pass-through if done."""
    if isinstance(transactions, DailyPurchases):
        return transactions
    con = connect(backend)
    name = _unique_name("kequn_transactions")
    t = register_transactions(con, transactions, name=name)
    daily = DailyPurchases(con, _materialise(con, build_daily_expr(t)))
    if con.name == "duckdb" and not isinstance(transactions, ibis.Table):
        con.con.unregister(name)  # materialised: the caller may free the transactions
    return daily


@dataclass
class Aggregates:
    """Per-customer statistics in model units, ready for the models."""

    summary: pd.DataFrame
    calibration_end: date
    holdout_end: date | None
    time_unit: str


def summarize_customers(
    transactions: Any,
    calibration_end: date | datetime | str,
    holdout_end: date | datetime | str | None = None,
    time_unit: str = "week",
    backend: Any = None,
    with_rhythm: bool = True,
) -> pd.DataFrame:
    """Return one row per customer with frequency/recency/T/monetary statistics.

    ``transactions`` is anything normalize_transactions takes, an Ibis table, or a
    DailyPurchases from prepare_daily (summaries at several dates then share its netting).

    Columns: ``x`` (repeat purchase days), ``t_x`` and ``T`` (in ``time_unit``),
    ``frequency`` (purchase days), ``recency_days`` (days from last purchase to
    ``calibration_end``), ``monetary_total`` (spend on purchase days), ``monetary_net``
    (minus refund-only days), ``monetary_avg`` (per purchase day), ``repeat_avg`` (mean
    spend of repeat purchase days — the Gamma-Gamma input), and rhythm/holdout columns.
    """
    cal_end = to_date(calibration_end)
    hold_end = to_date(holdout_end)
    if hold_end is not None and hold_end <= cal_end:
        raise AnalyticsInputError(f"holdout end {hold_end} must be after calibration end {cal_end}")
    unit = days_per_unit(time_unit)
    if isinstance(transactions, DailyPurchases):
        con, daily = transactions.con, transactions.table
    else:
        con = connect(backend)
        daily = build_daily_expr(register_transactions(con, transactions))
    return finish_summary(
        execute_to_pandas(con, build_daily_summary_expr(daily, cal_end, hold_end, with_rhythm)),
        cal_end,
        unit,
    )


def execute_to_pandas(con: Any, expr: ibis.Expr) -> pd.DataFrame:
    """Run an expression and return a DataFrame (dates as datetime64 on DuckDB)."""
    if con.name != "duckdb":
        return con.execute(expr)
    # Through Arrow: Ibis's own conversion costs seconds per million rows.
    return con.to_pyarrow(expr).to_pandas(date_as_object=False)


def finish_summary(raw: pd.DataFrame, cal_end: date, unit: float) -> pd.DataFrame:
    """Turn backend output (days, sums) into model units; shared by all backends."""
    df = raw.copy(deep=False)  # new columns only: the backend's arrays are not copied
    first = pd.to_datetime(df["first_day"])
    last = pd.to_datetime(df["last_day"])
    end = pd.Timestamp(cal_end)
    df["first_day"] = first.dt.date
    df["last_day"] = last.dt.date
    df["frequency"] = df["n_days"].astype(np.int64)
    df["x"] = df["frequency"] - 1
    t_x_days = (last - first).dt.days.astype(np.int64)
    t_days = (end - first).dt.days.astype(np.int64)
    df["t_x_days"] = t_x_days
    df["T_days"] = t_days
    df["t_x"] = t_x_days / unit
    df["T"] = t_days / unit
    df["recency_days"] = (end - last).dt.days.astype(np.int64)
    df["monetary_total"] = df["total"].astype(float)
    df["monetary_net"] = df["total"].astype(float) + df["refunds"].astype(float)
    df["monetary_avg"] = df["monetary_total"] / df["frequency"]
    repeat_spend = df["total"].astype(float) - df["first_amount"].astype(float)
    df["repeat_avg"] = np.where(df["x"] > 0, repeat_spend / df["x"].clip(lower=1), 0.0)
    if "early_mean" in df:
        df["early_mean"] = df["early_mean"].where(df["frequency"] >= 2)
    df = df.drop(columns=["total", "n_days"])
    if "holdout_days" in df:
        df["holdout_days"] = df["holdout_days"].astype(np.int64)
    if df["customer_id"].is_monotonic_increasing and isinstance(df.index, pd.RangeIndex):
        return df  # sorted by the backend: re-sorting would copy every column
    return df.sort_values("customer_id", kind="stable").reset_index(drop=True)
