"""Compare the churn model with a plain gradient-boosting model and the baselines.

    python benchmarks/churn_compare.py [--customers 100000] [--smoke]

Data sets, each scored on held-out time (evaluate_churn: trained on labels that end at
the test cut-off, so nothing after it is seen):

* CDNOW master (``../shared/data``): features at 1997-09-30, churn = no purchase in the
  next 39 weeks (the test period), and the validation period inside the calibration data
  (1997-06-30, 92 days), where settings are chosen.
* two generated shops of different shape (``--customers`` each, 900 days): "rhythm",
  renewal buyers with regular to erratic gaps, some slowing down, spend drifting; and
  "bursty", overdispersed gaps, most customers leaving early. Scored 180 days before the
  end, churn = no purchase in those 180 days.

Columns: AUC (ranking who churns) and Brier score (calibration; lower is better) of
recency alone, BG/NBD's P(no purchase in the horizon), a plain model (scikit-learn's
default HistGradientBoostingClassifier on recency, frequency, monetary value, age and the
BG/NBD outputs, trained on the same rows), the shipped model and its ceiling: the same
features and settings fitted on the evaluation period's own labels, 5-fold
cross-validated. The ceiling sees the future, so nothing can ship it; it says how much
these features can tell at all (on a small shop it learns from fewer rows than the
stacked training set and can fall below the model). Checks (always judged):
the shipped model ranks better than recency on every data set and is better calibrated
than BG/NBD on each but CDNOW's 92-day validation period (a tie there). The issue's target (CDNOW test AUC >= 0.775 and above the plain model) is
judged outside --smoke.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _verdict import Verdict

from kequn.analytics import evaluate_churn, read_transactions

DATA = Path(__file__).resolve().parents[1] / "../shared/data/cdnow_master.txt"
COLUMNS = ("recency", "bgnbd_p_no_purchase", "plain_gbm", "model", "ceiling")


def generate_shop(customers: int, shape: str, seed: int = 7) -> tuple[pd.DataFrame, str]:
    """Return a generated shop's transactions and its last day (ISO)."""
    rng = np.random.default_rng(seed)
    days = 900
    start = np.datetime64("2023-01-01")
    first = rng.integers(0, 600, customers).astype(float)
    if shape == "rhythm":
        # Gamma gaps from erratic (shape 0.7) to regular (6); some customers slow down.
        k = rng.choice([0.7, 2.0, 6.0], customers, p=[0.4, 0.35, 0.25])
        gap = rng.gamma(2.0, 25.0, customers) + 7
        drop = rng.beta(1.0, 6.0, customers)
        fade = np.where(rng.random(customers) < 0.3, rng.uniform(1.002, 1.01, customers), 1.0)
    else:
        k = np.full(customers, 0.35)
        gap = rng.gamma(1.2, 60.0, customers) + 3
        drop = rng.beta(0.8, 2.5, customers)
        fade = np.ones(customers)
    level = rng.lognormal(4.0, 0.8, customers)
    drift = rng.normal(0.0, 0.08, customers)
    ids = [np.arange(customers)]
    when = [first.copy()]
    spend = [level * rng.lognormal(0, 0.3, customers)]
    t = first.copy()
    n = np.zeros(customers)
    alive = np.ones(customers, bool)
    while alive.any():
        idx = np.flatnonzero(alive)
        alive[idx[rng.random(len(idx)) < drop[idx]]] = False
        idx = np.flatnonzero(alive)
        gap[idx] *= fade[idx] ** np.minimum(gap[idx], 60)
        t[idx] += rng.gamma(k[idx], gap[idx] / k[idx])
        n[idx] += 1
        inside = t[idx] < days
        alive[idx[~inside]] = False
        idx = idx[inside]
        ids.append(idx)
        when.append(t[idx].copy())
        spend.append(level[idx] * np.exp(drift[idx] * n[idx]) * rng.lognormal(0, 0.3, len(idx)))
    day = np.concatenate(when)
    frame = pd.DataFrame(
        {
            "customer_id": (np.concatenate(ids) + 100000).astype(str),
            "timestamp": start + (day * 86400).astype("timedelta64[s]"),
            "amount": np.round(np.concatenate(spend), 2),
        }
    )
    return frame, str((start + np.timedelta64(days - 1, "D")).astype("datetime64[D]"))


def run_case(name: str, tx: object, cutoff: str, horizon: int, **kw: object) -> dict[str, object]:
    """Evaluate one protocol; return its row for the table."""
    started = time.perf_counter()
    ev, _ = evaluate_churn(tx, cutoff, horizon, plain_model=True, ceiling=True, **kw)  # type: ignore[arg-type]
    return {
        "data": name,
        "customers": ev.n_test,
        "churn": ev.churn_rate_test,
        "auc": ev.auc,
        "brier": ev.brier,
        "seconds": time.perf_counter() - started,
    }


def main() -> int:
    """Run every data set and print the table and the verdict."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--customers", type=int, default=100_000, help="customers per generated shop")
    ap.add_argument("--smoke", action="store_true", help="5,000 customers a shop, no CDNOW")
    args = ap.parse_args()
    verdict = Verdict("churn_compare", smoke=args.smoke)
    customers = 5_000 if args.smoke else args.customers
    verdict.conditions(f"one process, load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    rows = []
    if not args.smoke:
        tx = read_transactions(DATA)
        rows.append(
            run_case(
                "CDNOW test",
                tx,
                "1997-09-30",
                273,
                train_cutoff="1997-05-17",
                train_horizon_days=136,
            )
        )
        rows.append(
            run_case(
                "CDNOW validation",
                tx,
                "1997-06-30",
                92,
                train_cutoff="1997-03-30",
                train_horizon_days=92,
            )
        )
    for shape in ("rhythm", "bursty"):
        frame, last = generate_shop(customers, shape)
        cutoff = str(pd.Timestamp(last) - pd.Timedelta(days=180))[:10]
        rows.append(run_case(f"{shape} shop", frame, cutoff, 180))
    head = "".join(f"{c:>22s}" for c in COLUMNS)
    print(f"\n{'data':18s}{'customers':>10s}{'churn':>7s}  AUC / Brier:{head}{'s':>7s}")
    for r in rows:
        auc, brier = r["auc"], r["brier"]
        cells = "".join(
            f"{auc.get(c, float('nan')):>13.4f} / {brier.get(c, float('nan')):.4f}"  # type: ignore[union-attr]
            for c in COLUMNS
        )
        print(
            f"{r['data']:18s}{r['customers']:>10d}{r['churn']:>7.3f}{'':13s}{cells}{r['seconds']:>7.1f}"
        )
    for r in rows:
        auc, brier = r["auc"], r["brier"]
        verdict.check(
            f"{r['data']}: model ranks better than recency",
            auc["model"] > auc["recency"],  # type: ignore[index]
            f"AUC {auc['model']:.4f} vs {auc['recency']:.4f}",  # type: ignore[index]
        )
        if r["data"] == "CDNOW validation":
            continue  # 92 days: BG/NBD is as well calibrated there (known, not a claim)
        verdict.check(
            f"{r['data']}: model better calibrated than BG/NBD",
            brier["model"] < brier["bgnbd_p_no_purchase"],  # type: ignore[index]
            f"Brier {brier['model']:.4f} vs {brier['bgnbd_p_no_purchase']:.4f}",  # type: ignore[index]
        )
    gains = [r["auc"]["model"] - r["auc"]["plain_gbm"] for r in rows]  # type: ignore[index]
    print(f"median AUC gain over the plain model: {statistics.median(gains):+.4f}")
    short = [r["auc"]["ceiling"] - r["auc"]["model"] for r in rows]  # type: ignore[index]
    print(f"median AUC left below the ceiling: {statistics.median(short):+.4f}")
    if not args.smoke:
        test = rows[0]["auc"]
        verdict.target(
            "CDNOW test AUC >= 0.775 and above the plain model",
            test["model"] >= 0.775 and test["model"] > test["plain_gbm"],  # type: ignore[index]
            f"{test['model']:.4f} vs plain {test['plain_gbm']:.4f}; "  # type: ignore[index]
            f"ceiling {test['ceiling']:.4f}",  # type: ignore[index]
        )
    return verdict.finish()


if __name__ == "__main__":
    sys.exit(main())
