"""Cohorts by first-purchase month: retention, repeat-purchase rate, average order value."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import ibis
import pandas as pd

from .engine import (
    DailyPurchases,
    build_cohort_expr,
    build_daily_expr,
    connect,
    register_transactions,
    to_date,
)
from .errors import AnalyticsInputError


@dataclass
class CohortTables:
    """Cohort results; ``activity`` is long form, the others are ready to chart."""

    activity: (
        pd.DataFrame
    )  # cohort, age (months since first purchase), [by], customers, purchase_days, revenue
    retention: pd.DataFrame  # rows: cohort (and by), columns: age 0..n, values: share active
    repeat_rate: pd.DataFrame  # cohort, [by], customers, repeat_customers, repeat_rate
    order_value: pd.DataFrame  # month, purchase_days, revenue, average_order_value


def compute_cohorts(
    transactions: Any, until: date | datetime | str, *, by: str | None = None, backend: Any = None
) -> CohortTables:
    """Compute monthly cohort retention, repeat-purchase rate and AOV up to ``until`` (inclusive).

    A purchase is a purchase day (see ``engine``); "retention at age k" is the share of a
    cohort's customers with a purchase day in calendar month k after their first month.
    ``by`` names an optional column (e.g. ``channel``) to split cohorts by.
    """
    if isinstance(transactions, DailyPurchases):
        # Already netted per customer and day (kequn analyze): not netted twice more here.
        if by is not None:
            raise AnalyticsInputError(f"cohorts by {by!r} need the transactions, not their days")
        con, t, daily = transactions.con, None, transactions.table
    else:
        con = connect(backend)
        t = register_transactions(con, transactions, name="kequn_cohort_tx")
        daily = build_daily_expr(t)
    act = _activity(con, t, daily, until, by)
    keys = ["cohort"] + ([by] if by else [])
    size = act[act["age"] == 0].set_index(keys)["customers"]
    retention = act.pivot_table(index=keys, columns="age", values="share", fill_value=0.0)
    retention.columns = [int(c) for c in retention.columns]
    # An age at which no cohort bought is still a column (of zeros), not a gap in the chart.
    ages = range(int(act["age"].max()) + 1) if len(act) else range(0)
    retention = retention.reindex(columns=list(ages), fill_value=0.0)
    retention = retention.reset_index()
    per_customer = act.groupby(keys, as_index=False).agg(purchase_days=("purchase_days", "sum"))
    repeat = _repeat_customers(con, t, daily, to_date(until), by)
    rr = size.rename("customers").reset_index().merge(repeat, on=keys, how="left")
    rr["repeat_customers"] = rr["repeat_customers"].fillna(0).astype(int)
    rr["repeat_rate"] = rr["repeat_customers"] / rr["customers"]
    rr = rr.merge(per_customer, on=keys, how="left")
    months = pd.PeriodIndex(act["cohort"], freq="M") + act["age"].to_numpy(int)
    monthly = act.assign(month=months.strftime("%Y-%m"))
    aov = monthly.groupby("month", as_index=False).agg(
        purchase_days=("purchase_days", "sum"), revenue=("revenue", "sum")
    )
    aov["average_order_value"] = aov["revenue"] / aov["purchase_days"]
    return CohortTables(activity=act, retention=retention, repeat_rate=rr, order_value=aov)


def compute_cohort_activity(
    transactions: Any, until: date | datetime | str, *, by: str | None = None, backend: Any = None
) -> pd.DataFrame:
    """Compute the long-form cohort activity alone (see ``CohortTables.activity``).

    For callers that chart retention only: it skips the repeat-rate and order-value passes,
    which cost as much again on millions of transactions.
    """
    con = connect(backend)
    t = register_transactions(con, transactions, name="kequn_cohort_tx")
    return _activity(con, t, build_daily_expr(t), until, by)


def _activity(
    con: Any, t: ibis.Table | None, daily: ibis.Table, until: date | datetime | str, by: str | None
) -> pd.DataFrame:
    if by is not None and (t is None or by not in t.columns):
        raise AnalyticsInputError(f"cohort column {by!r} not in transactions", column=by)
    act = con.execute(build_cohort_expr(t, to_date(until), by, daily=daily))
    act["cohort"] = pd.to_datetime(act["cohort"]).dt.strftime("%Y-%m")
    keys = ["cohort"] + ([by] if by else [])
    act = act.sort_values([*keys, "age"]).reset_index(drop=True)
    size = act[act["age"] == 0].set_index(keys)["customers"]
    act["share"] = act["customers"] / act.set_index(keys).index.map(size).to_numpy()
    return act


def _repeat_customers(
    con: Any, t: ibis.Table | None, daily: ibis.Table, until: date, by: str | None
) -> pd.DataFrame:
    p = daily.filter((daily.day <= ibis.literal(until)) & daily.is_purchase)
    per = p.group_by("customer_id").aggregate(cohort=p.day.truncate("M").min(), days=p.count())
    if by is not None and t is not None:
        chan = t.group_by("customer_id").aggregate(**{by: t[by].min()})
        per = per.left_join(chan, "customer_id").select(per.cohort, per.days, chan[by])
    keys = ["cohort"] + ([by] if by else [])
    expr = per.group_by(keys).aggregate(repeat_customers=(per.days >= 2).sum())
    out = con.execute(expr)
    out["cohort"] = pd.to_datetime(out["cohort"]).dt.strftime("%Y-%m")
    return out
