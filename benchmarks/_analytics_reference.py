"""The usual way: pandas groupby summary + RFM, then lifetimes BG/NBD, Gamma-Gamma and CLV.

Run by benchmarks/analytics_refresh.py in an interpreter where ``lifetimes`` is
installed (it is not a Kequn dependency):

    /tmp/lifetimes-venv/bin/python benchmarks/_analytics_reference.py \
        --parquet purchases.parquet --end 2026-11-20 --out reference.parquet

Purchase rules match Kequn's: amounts are netted per customer and UTC calendar day, a
day with a net amount >= 0 is a purchase day, time is in weeks of 7 days, ``T`` runs
from the first purchase day to the end day, and the Gamma-Gamma spend is the mean of
the repeat purchase days. Prints one JSON line: stage seconds, fitted parameters and
the peak RSS of this process at the end of the timed part.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import warnings

import pandas as pd

DAYS_PER_WEEK = 7.0


def parse_args() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parquet", required=True)
    parser.add_argument("--end", required=True, help="calibration end day, YYYY-MM-DD")
    parser.add_argument("--out", required=True, help="per-customer outputs (Parquet)")
    parser.add_argument("--horizon-days", type=float, default=90.0)
    parser.add_argument("--clv-months", type=int, default=12)
    parser.add_argument("--discount-rate", type=float, default=0.01)
    return parser.parse_args()


def summarize_purchases(purchases: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    """Return one row per customer: frequency, recency, T (weeks), monetary and RFM inputs."""
    day = purchases["ts"].dt.tz_convert("UTC").dt.tz_localize(None).dt.floor("D")
    daily = (
        purchases.assign(day=day)
        .groupby(["customer_id", "day"], sort=True)["amount"]
        .sum()
        .reset_index()
    )
    daily = daily[(daily["day"] <= end) & (daily["amount"] >= 0)]
    grouped = daily.groupby("customer_id", sort=True)
    summary = grouped.agg(
        first_day=("day", "min"),
        last_day=("day", "max"),
        days=("day", "size"),
        total=("amount", "sum"),
        first_amount=("amount", "first"),  # days are sorted within each customer
    )
    summary["frequency"] = summary["days"] - 1
    summary["recency"] = (summary["last_day"] - summary["first_day"]).dt.days / DAYS_PER_WEEK
    summary["T"] = (end - summary["first_day"]).dt.days / DAYS_PER_WEEK
    summary["recency_days"] = (end - summary["last_day"]).dt.days
    repeat = summary["frequency"] > 0
    summary["monetary_value"] = 0.0
    summary.loc[repeat, "monetary_value"] = (
        summary.loc[repeat, "total"] - summary.loc[repeat, "first_amount"]
    ) / summary.loc[repeat, "frequency"]
    return summary


def score_rfm(summary: pd.DataFrame) -> pd.DataFrame:
    """Add 1-5 quintile scores: recency (fewer days is better), purchase days and total spend."""
    # Ties are broken by customer id as text, the way Kequn ranks them.
    ordered = summary.set_axis(summary.index.astype(str)).sort_index()
    labels = [1, 2, 3, 4, 5]
    scores = pd.DataFrame(index=ordered.index)
    scores["r_score"] = pd.qcut((-ordered["recency_days"]).rank(method="first"), 5, labels=labels)
    scores["f_score"] = pd.qcut(ordered["days"].rank(method="first"), 5, labels=labels)
    scores["m_score"] = pd.qcut(ordered["total"].rank(method="first"), 5, labels=labels)
    scores = scores.astype("int8").set_axis(ordered.index.astype(summary.index.dtype))
    return summary.join(scores)


def main() -> int:
    """Run the reference pipeline, write its outputs and print its timings as JSON."""
    args = parse_args()
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    warnings.simplefilter("ignore")
    times: dict[str, float] = {}
    end = pd.Timestamp(args.end)

    tick = time.perf_counter()
    purchases = pd.read_parquet(args.parquet, columns=["customer_id", "ts", "amount"])
    times["read"] = time.perf_counter() - tick

    tick = time.perf_counter()
    summary = score_rfm(summarize_purchases(purchases, end))
    times["aggregate"] = time.perf_counter() - tick
    del purchases

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
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    columns = ["r_score", "f_score", "m_score", "p_alive", "expected_purchases"]
    columns += ["expected_spend", "clv", "frequency", "recency", "T"]
    summary[columns].reset_index().to_parquet(args.out, index=False)
    result = {
        "times": times,
        "peak_rss_kib": peak_kib,
        "customers": len(summary),
        "bgnbd": {k: float(v) for k, v in bgf.params_.items()},
        "gammagamma": {k: float(v) for k, v in ggf.params_.items()},
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
