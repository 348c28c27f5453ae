"""The usual way, end to end: pandas.read_sql, lifetimes summary, qcut RFM, BG/NBD, CLV, to_sql.

Run by benchmarks/analytics_refresh.py in an interpreter where ``lifetimes`` and
SQLAlchemy are installed (neither is a Kequn dependency):

    /tmp/lifetimes-venv/bin/python benchmarks/_analytics_reference.py \
        --database-url sqlite:////tmp/kequn-bench-analytics/kequn-1000000.sqlite3 \
        --end 2026-11-20 --out reference.parquet

What a pandas user following the lifetimes documentation writes, stage by stage:

1. read: ``pandas.read_sql`` of the purchase orders from the same database Kequn reads
   (sqlite3 for SQLite, a SQLAlchemy engine over psycopg for PostgreSQL).
2. aggregate: ``lifetimes.utils.summary_data_from_transaction_data`` with the amount as
   monetary value, ``observation_period_end`` = the refresh day, ``freq="D"`` and
   ``freq_multiplier=7`` (weeks of 7 days, as Kequn), then RFM with pandas: recency and
   purchase days from that summary, spend with a groupby, 1-5 scores with ``pd.qcut``.
3. fit_bgnbd / fit_gammagamma: ``BetaGeoFitter`` and ``GammaGammaFitter`` (no penalizer).
4. predict: P(alive), expected purchases over the horizon, expected spend and
   ``customer_lifetime_value`` (12 months, 1 % a month, ``freq="W"``).
5. write: ``DataFrame.to_sql`` of one row per customer into ``reference_customer_score``.

Purchase rules match Kequn's: orders with a purchase status (refunds have their own
status and are left out), customers whose processing is restricted left out, amounts
netted per customer and UTC calendar day. ``summary_data_from_transaction_data`` sums
each customer's day, counts every day as a purchase and takes the spend of repeat days
as the Gamma-Gamma input, which is Kequn's rule whenever no day nets below zero. When
some row is negative (not the case in the demo data) the days are pre-netted in pandas
and days netting below zero dropped before the summary, as Kequn does; the result says
which path ran. Prints one JSON line: stage seconds, fitted parameters and the peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import warnings

import pandas as pd

DAYS_PER_WEEK = 7
PURCHASE_STATUSES = ("paid", "shipped", "completed")  # commerce.Order.PURCHASE_STATUSES
OUTPUT_TABLE = "reference_customer_score"


def parse_args() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="sqlite:///PATH or postgresql://")
    parser.add_argument("--end", required=True, help="observation end day, YYYY-MM-DD")
    parser.add_argument("--out", required=True, help="per-customer outputs for the comparison")
    parser.add_argument("--horizon-days", type=float, default=90.0)
    parser.add_argument("--clv-months", type=int, default=12)
    parser.add_argument("--discount-rate", type=float, default=0.01)
    return parser.parse_args()


def connect(url: str):
    """Return what pandas.read_sql / to_sql take: a sqlite3 connection or a SQLAlchemy engine."""
    if url.startswith("sqlite:///"):
        import sqlite3

        return sqlite3.connect(url.removeprefix("sqlite:///"))
    from sqlalchemy import create_engine

    return create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def read_purchases(con, url: str) -> pd.DataFrame:
    """Return the purchase orders: customer_id, ordered_at (UTC), amount."""
    statuses = ", ".join(f"'{s}'" for s in PURCHASE_STATUSES)
    amount = (
        "CAST(o.total_amount AS REAL)" if url.startswith("sqlite") else "o.total_amount::float8"
    )
    # Statuses and casts are constants of this script.
    sql = (
        f"SELECT o.customer_id, o.ordered_at, {amount} AS amount "  # noqa: S608
        "FROM commerce_order o JOIN customers_customer c ON c.id = o.customer_id "
        f"WHERE o.status IN ({statuses}) AND NOT c.processing_restricted"
    )
    frame = pd.read_sql(sql, con, parse_dates={"ordered_at": {"utc": True}})
    # lifetimes groups by calendar period of the naive timestamps: make them UTC wall time.
    frame["ordered_at"] = frame["ordered_at"].dt.tz_convert("UTC").dt.tz_localize(None)
    return frame


def net_days(purchases: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Return the transactions lifetimes should see, and which purchase-day rule path ran."""
    if not (purchases["amount"] < 0).any():
        return purchases, "no negative amounts: lifetimes' own per-day sums apply"
    day = purchases["ordered_at"].dt.floor("D")
    keys = [purchases["customer_id"], day]
    daily = purchases.groupby(keys)["amount"].agg(["sum", "min"]).reset_index()
    daily.columns = ["customer_id", "ordered_at", "amount", "lowest"]
    # Kequn: a day is a purchase when it nets > 0, or to 0 without a negative row.
    keep = (daily["amount"] > 0) | ((daily["amount"] == 0) & (daily["lowest"] >= 0))
    return daily.loc[keep, ["customer_id", "ordered_at", "amount"]], "days pre-netted in pandas"


def score_rfm(summary: pd.DataFrame, purchases: pd.DataFrame) -> pd.DataFrame:
    """Add recency days, purchase days, spend and 1-5 qcut scores to the lifetimes summary."""
    out = summary.copy()
    out["recency_days"] = ((out["T"] - out["recency"]) * DAYS_PER_WEEK).round().astype(int)
    out["purchase_days"] = out["frequency"].astype(int) + 1
    out["spend"] = purchases.groupby("customer_id")["amount"].sum()
    # Ties are broken by customer id as text, the way Kequn ranks them.
    ordered = out.set_axis(out.index.astype(str)).sort_index()
    labels = [1, 2, 3, 4, 5]
    scores = pd.DataFrame(index=ordered.index)
    scores["r_score"] = pd.qcut((-ordered["recency_days"]).rank(method="first"), 5, labels=labels)
    scores["f_score"] = pd.qcut(ordered["purchase_days"].rank(method="first"), 5, labels=labels)
    scores["m_score"] = pd.qcut(ordered["spend"].rank(method="first"), 5, labels=labels)
    scores = scores.astype("int8").set_axis(ordered.index.astype(out.index.dtype))
    return out.join(scores)


def main() -> int:
    """Run the reference pipeline, time each stage and print the result as JSON."""
    args = parse_args()
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    warnings.simplefilter("ignore")
    times: dict[str, float] = {}
    con = connect(args.database_url)

    tick = time.perf_counter()
    purchases = read_purchases(con, args.database_url)
    times["read"] = time.perf_counter() - tick

    tick = time.perf_counter()
    transactions, rule = net_days(purchases)
    summary = summary_data_from_transaction_data(
        transactions,
        "customer_id",
        "ordered_at",
        monetary_value_col="amount",
        observation_period_end=args.end,
        freq="D",
        freq_multiplier=DAYS_PER_WEEK,
    )
    summary = score_rfm(summary, transactions)
    times["aggregate"] = time.perf_counter() - tick
    del purchases, transactions

    tick = time.perf_counter()
    bgf = BetaGeoFitter(penalizer_coef=0.0)
    bgf.fit(summary["frequency"], summary["recency"], summary["T"])
    times["fit_bgnbd"] = time.perf_counter() - tick

    tick = time.perf_counter()
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    ggf = GammaGammaFitter(penalizer_coef=0.0)
    ggf.fit(repeat["frequency"], repeat["monetary_value"])
    times["fit_gammagamma"] = time.perf_counter() - tick

    tick = time.perf_counter()
    f, r, t = summary["frequency"], summary["recency"], summary["T"]
    summary["p_alive"] = bgf.conditional_probability_alive(f, r, t)
    summary["expected_purchases"] = bgf.conditional_expected_number_of_purchases_up_to_time(
        args.horizon_days / DAYS_PER_WEEK, f, r, t
    )
    summary["expected_spend"] = ggf.conditional_expected_average_profit(
        f, summary["monetary_value"]
    )
    summary["clv"] = ggf.customer_lifetime_value(
        bgf,
        f,
        r,
        t,
        summary["monetary_value"],
        time=args.clv_months,
        discount_rate=args.discount_rate,
        freq="W",
    )
    times["predict"] = time.perf_counter() - tick

    tick = time.perf_counter()
    columns = ["recency_days", "purchase_days", "spend", "r_score", "f_score", "m_score"]
    columns += ["p_alive", "expected_purchases", "expected_spend", "clv"]
    output = summary[columns].reset_index()
    output.to_sql(OUTPUT_TABLE, con, if_exists="replace", index=False)
    times["write"] = time.perf_counter() - tick
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    output.to_parquet(args.out, index=False)  # for the comparison, not timed
    result = {
        "times": times,
        "peak_rss_kib": peak_kib,
        "customers": len(summary),
        "purchase_rule": rule,
        "bgnbd": {k: float(v) for k, v in bgf.params_.items()},
        "gammagamma": {k: float(v) for k, v in ggf.params_.items()},
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
