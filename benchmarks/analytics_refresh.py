"""Time a full score refresh against the usual pandas + lifetimes pipeline, end to end.

    python benchmarks/analytics_refresh.py [--customers 1000000] [--database both] [--reuse]
        [--repeat 3] [--reference-repeat 1] [--smoke]

Per database (SQLite, PostgreSQL): demo data is generated once into a scratch database
(/tmp/kequn-bench-analytics/ and postgresql://postgres@127.0.0.1:5432/kequn_bench_analytics),
then, each in its own subprocess so peak memory is per pipeline:

* Kequn: ``kequn.scoring.services.refresh_scores`` — load from the database, aggregate
  and RFM, fit BG/NBD, fit Gamma-Gamma, predict (P(alive), expected purchases, expected
  spend, CLV), lifecycle, churn, write the scores and stage changes. Each measured run is
  the nightly refresh: a refresh a day earlier is run first (untimed), so the measured
  one replaces 1M stored score rows and records the stage changes of one day. Between
  the two, a day's orders arrive (one for 1 % of the customers): the measured refresh
  reads those customers' orders again, every other customer's purchase summary as
  stored, and the orders of the churn and value-model sample.
  ``--first-refresh`` times a first refresh instead (empty tables, 1M stage changes);
  ``--full`` times a refresh that recomputes every summary from all orders.
* reference (benchmarks/_analytics_reference.py, in ``--lifetimes-python`` where lifetimes
  and SQLAlchemy are installed): ``pandas.read_sql`` from the same database,
  ``lifetimes.utils.summary_data_from_transaction_data``, qcut RFM, BetaGeoFitter,
  GammaGammaFitter, ``customer_lifetime_value``, ``DataFrame.to_sql`` of the outputs.

Two ratios are printed: end to end (what the issue asks: from the database back into it)
and compute-only (aggregate + RFM, both fits, predictions: the stages both compute). The
outputs are compared (parameters, P(alive) correlation, RFM scores). Peak memory is the
child's ru_maxrss (the database server is not counted).

Both pipelines run cold, each in a fresh interpreter, with their libraries imported before
the clock starts. Targets (issue 20): the reference takes at least 5x Kequn's time end to
end, and Kequn's peak memory stays under 3 GB. Exit status 1 when a target is missed, the
reference is missing, skipped or failed (no ratio can be judged), or the outputs disagree
(BG/NBD parameters within 1 %, P(alive) correlation above 0.99, identical RFM inputs).
--smoke: 1,000 customers in scratch databases of its own, Kequn only (the reference needs
lifetimes, not a Kequn dependency), targets not judged.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from _verdict import Verdict, bench_tag, set_smoke_tag

if "--smoke" in sys.argv:
    set_smoke_tag()  # before the scratch names below, which child processes share
# A fixed scratch directory: --reuse finds the filled database of an earlier run there.
SCRATCH = Path(f"/tmp/kequn-bench-analytics{bench_tag()}")  # noqa: S108
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
PG_DATABASE = "kequn_bench_analytics"
DEFAULT_CUSTOMERS = 1_000_000
TODAY = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 23, 59, 59, tzinfo=UTC)
SEED = 42
HORIZON_DAYS = 90
CLV_MONTHS = 12
DISCOUNT = 0.01
HERE = Path(__file__).resolve()
DEFAULT_LIFETIMES_PYTHON = "/tmp/lifetimes-venv/bin/python"  # noqa: S108 -- where the help says to make it

KEQUN_STAGES = [
    ("load", "load from DB"),
    ("aggregate", "aggregate + RFM"),
    ("fit_bgnbd", "fit BG/NBD"),
    ("fit_gammagamma", "fit Gamma-Gamma"),
    ("predict", "P(alive), E[purchases], CLV"),
    ("lifecycle", "lifecycle"),
    ("churn", "churn"),
    ("write", "write scores"),
]
REFERENCE_STAGES = [
    ("read", "pandas.read_sql"),
    ("aggregate", "lifetimes summary + qcut RFM"),
    ("fit_bgnbd", "fit BG/NBD"),
    ("fit_gammagamma", "fit Gamma-Gamma"),
    ("predict", "P(alive), E[purchases], CLV"),
    ("write", "DataFrame.to_sql"),
]
# Progress messages of refresh_scores / score_customers that open each stage.
KEQUN_MARKS = {
    "loading purchases": "load",
    "aggregating customers": "aggregate",
    "fitting BG/NBD": "fit_bgnbd",
    "fitting Gamma-Gamma": "fit_gammagamma",
    "predicting P(alive), purchases, spend and CLV": "predict",
    "assigning lifecycle stages": "lifecycle",
    "training churn model": "churn",
    "writing scores": "write",
}


# ------------------------------------------------------------------------- helpers


def log(message: str) -> None:
    """Print a progress line to stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def database_url(vendor: str, customers: int) -> str:
    """Return the scratch database URL for a vendor and data size."""
    if vendor == "sqlite":
        return f"sqlite:///{SCRATCH / f'kequn-{customers}.sqlite3'}"
    return f"{PG_SERVER}/{pg_database_name(customers)}"


def pg_database_name(customers: int) -> str:
    """Return the PostgreSQL scratch database name (sized runs other than 1M get a suffix)."""
    name = PG_DATABASE if customers == DEFAULT_CUSTOMERS else f"{PG_DATABASE}_{customers}"
    return f"{name}{bench_tag()}"


def marker_path(vendor: str, customers: int) -> Path:
    """Return the file that records a finished generation into a scratch database."""
    return SCRATCH / f"generated-{vendor}-{customers}.json"


def setup_django(vendor: str, customers: int) -> None:
    """Point Django at the scratch database and set it up."""
    SCRATCH.mkdir(parents=True, exist_ok=True)
    os.environ["DJANGO_SETTINGS_MODULE"] = "kequn.settings"
    os.environ["KEQUN_DATA_DIR"] = str(SCRATCH / "data")
    os.environ["KEQUN_DATABASE_URL"] = database_url(vendor, customers)
    import django

    django.setup()


def run_pg_admin(*statements: str) -> list:
    """Run statements on the maintenance database in autocommit; return the last rows."""
    import psycopg

    rows: list = []
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        for sql in statements:
            cur = conn.execute(sql)
            rows = cur.fetchall() if cur.description else []
    return rows


# ------------------------------------------------------------------------- workers


def prepare_database(vendor: str, customers: int, reuse: bool) -> dict:
    """Create, migrate and fill the scratch database unless --reuse finds it filled."""
    SCRATCH.mkdir(parents=True, exist_ok=True)
    marker = marker_path(vendor, customers)
    if vendor == "postgresql":
        name = pg_database_name(customers)
        exists = run_pg_admin(f"SELECT 1 FROM pg_database WHERE datname = '{name}'")  # noqa: S608 -- name built in code
        if exists and not (reuse and marker.exists()):
            run_pg_admin(f"DROP DATABASE {name} WITH (FORCE)")
            exists = []
        if not exists:
            run_pg_admin(f"CREATE DATABASE {name}")
    else:
        path = SCRATCH / f"kequn-{customers}.sqlite3"
        if path.exists() and not (reuse and marker.exists()):
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
    setup_django(vendor, customers)
    from django.core.management import call_command

    from kequn.customers.models import Customer
    from kequn.demo.generator import generate_demo_data

    call_command("migrate", interactive=False, verbosity=0)
    if reuse and marker.exists():
        info = json.loads(marker.read_text())
        if Customer.objects.count() == info["customers"]:
            log(f"{vendor}: reusing {info['customers']:,} customers, {info['orders']:,} orders")
            return info
        log(f"{vendor}: scratch data does not match {marker.name}; regenerating")
        raise SystemExit(f"remove {marker} and run again without --reuse")
    log(f"{vendor}: generating {customers:,} demo customers (progress bar below) ...")
    summary = generate_demo_data(customers, seed=SEED, today=TODAY, progress=True)
    info = {
        "customers": summary.customers,
        "orders": summary.orders,
        "order_lines": summary.order_lines,
        "events": summary.events,
        "seconds": round(summary.seconds, 1),
        "seed": SEED,
        "today": TODAY.isoformat(),
    }
    marker.write_text(json.dumps(info))
    log(f"{vendor}: generated in {summary.seconds:.0f} s: {info}")
    return info


# Today's new orders: one for this share of the customers, dated a few hours before NOW.
DAY_ORDERS_SHARE = 0.01
DAY_ORDER_PREFIX = "BENCH-DAY-"


def replace_days_orders(vendor: str) -> int:
    """Write today's orders for DAY_ORDERS_SHARE of the customers; return how many."""
    from decimal import Decimal

    from kequn.commerce.models import Order
    from kequn.customers.models import Customer

    remove_days_orders()
    ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True))
    step = max(1, round(1 / DAY_ORDERS_SHARE))
    orders = [
        Order(
            number=f"{DAY_ORDER_PREFIX}{i}",
            customer_id=customer_id,
            total_amount=Decimal(f"{20 + i % 80}.90"),
            ordered_at=NOW - timedelta(hours=3),
        )
        for i, customer_id in enumerate(ids[::step])
    ]
    Order.objects.bulk_create(orders, batch_size=5_000)
    return len(orders)


def remove_days_orders() -> None:
    """Remove the orders replace_days_orders wrote (kept after the run: the reference reads them)."""
    from kequn.commerce.models import Order

    Order.objects.filter(number__startswith=DAY_ORDER_PREFIX).delete()


def run_kequn_refresh(vendor: str, customers: int, first: bool = False, full: bool = False) -> dict:
    """Set up yesterday's scores (untimed), then time one nightly refresh_scores stage by stage.

    ``first``: time a first refresh instead (no stored scores; a stage change per customer).
    ``full``: recompute every purchase summary from all orders (``refresh --full``).
    """
    import resource

    setup_django(vendor, customers)
    from django.db import connection

    # Imported before the clock starts, as the reference imports pandas and lifetimes
    # before its own: a scheduled refresh runs in a worker that has them loaded already.
    import kequn.analytics.scores  # noqa: F401
    from kequn.scoring.models import CustomerScore, ScoreRun, StageChange
    from kequn.scoring.services import refresh_scores
    from kequn.security.actors import system_actor

    with connection.cursor() as cursor:
        for model in (StageChange, CustomerScore):
            table = model._meta.db_table
            verb = "TRUNCATE" if connection.vendor == "postgresql" else "DELETE FROM"
            cursor.execute(f'{verb} "{table}"')
    remove_days_orders()  # an earlier run's, so yesterday's refresh does not see them
    if not first:
        # What the nightly job meets: yesterday's scores stored, so today's refresh replaces
        # 1M rows and records only the customers whose stage moved overnight.
        refresh_scores(now=NOW - timedelta(days=1), progress=False, by=system_actor("benchmark"))
    day_orders = replace_days_orders(vendor)
    marks: list[tuple[str, float]] = []

    def mark(message: str) -> None:
        marks.append((message, time.perf_counter()))
        log(f"{vendor} kequn: {message}")

    start = time.perf_counter()
    result = refresh_scores(now=NOW, progress=mark, full=full, by=system_actor("benchmark"))
    finish = time.perf_counter()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times: dict[str, float] = {}
    bounds = [*marks, ("end", finish)]
    for (message, at), (_, until) in itertools.pairwise(bounds):
        key = KEQUN_MARKS.get(message, "other")
        times[key] = times.get(key, 0.0) + (until - at)
    times["other"] = times.get("other", 0.0) + (marks[0][1] - start if marks else 0.0)
    run = ScoreRun.objects.order_by("-id").first()
    details = run.details or {}
    return {
        "times": times,
        "total": finish - start,
        "peak_rss_kib": peak_kib,
        "customers": result.customers,
        "stage_changes": result.stage_changes,
        "bgnbd": details.get("bgnbd", {}).get("params"),
        "gammagamma": details.get("gammagamma", {}).get("params"),
        "notes": details.get("notes", []),
        "day_orders": day_orders,
        "reread_customers": details.get("summaries", {}).get("reread_customers"),
    }


def export_scores(vendor: str, customers: int, path: Path) -> dict:
    """Write the stored scores of purchasing customers to Parquet for the comparison."""
    import pandas as pd

    setup_django(vendor, customers)
    from django.db import connection

    from kequn.scoring.models import CustomerScore

    columns = ["customer_id", "r_score", "f_score", "m_score", "p_alive"]
    columns += ["expected_purchases", "expected_spend", "clv", "recency_days", "orders", "revenue"]
    # Column and table names from code.
    sql = (
        f"SELECT {', '.join(columns)} FROM {CustomerScore._meta.db_table} "  # noqa: S608
        "WHERE p_alive IS NOT NULL ORDER BY customer_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        frame = pd.DataFrame(cursor.fetchall(), columns=columns)
    frame.to_parquet(path, index=False)
    return {"rows": len(frame)}


WORKERS = {
    "prepare": lambda a: prepare_database(a.database, a.customers, a.reuse),
    "kequn": lambda a: run_kequn_refresh(a.database, a.customers, a.first_refresh, a.full),
    "scores": lambda a: export_scores(a.database, a.customers, Path(a.out)),
}


# -------------------------------------------------------------------- orchestration


def run_child(command: list[str]) -> tuple[dict, int]:
    """Run a child process; return its last JSON stdout line and its own peak RSS (KiB)."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    output = proc.stdout.read()
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} ... failed with exit code {proc.returncode}")
    lines = [line for line in output.splitlines() if line.startswith("{")]
    return (json.loads(lines[-1]) if lines else {}), usage.ru_maxrss


def run_worker(name: str, vendor: str, customers: int, *extra: str) -> tuple[dict, int]:
    """Run one worker of this script in a fresh interpreter."""
    command = [sys.executable, str(HERE), "--worker", name, "--database", vendor]
    return run_child([*command, "--customers", str(customers), *extra])


def run_reference(python: str, vendor: str, customers: int) -> tuple[dict, int]:
    """Run the pandas + lifetimes pipeline in the lifetimes interpreter."""
    out = SCRATCH / f"reference-{vendor}-{customers}.parquet"
    command = [python, str(HERE.with_name("_analytics_reference.py"))]
    command += ["--database-url", database_url(vendor, customers), "--out", str(out)]
    command += ["--end", NOW.date().isoformat(), "--horizon-days", str(HORIZON_DAYS)]
    command += ["--clv-months", str(CLV_MONTHS), "--discount-rate", str(DISCOUNT)]
    return run_child(command)


def median_times(runs: list[dict]) -> dict[str, float]:
    """Return the median of each stage and of the total over repeated runs."""
    keys = {k for run in runs for k in run["times"]}
    out = {k: statistics.median(run["times"].get(k, 0.0) for run in runs) for k in keys}
    out["total"] = statistics.median(sum(run["times"].values()) for run in runs)
    return out


def compare_outputs(kequn: dict, reference: dict, vendor: str, customers: int) -> dict:
    """Compare fitted parameters and per-customer outputs of both pipelines."""
    import numpy as np
    import pandas as pd

    scores_path = SCRATCH / f"kequn-scores-{vendor}-{customers}.parquet"
    run_worker("scores", vendor, customers, "--out", str(scores_path))
    ours = pd.read_parquet(scores_path)
    theirs = pd.read_parquet(SCRATCH / f"reference-{vendor}-{customers}.parquet")
    both = ours.merge(theirs, on="customer_id", suffixes=("_k", "_r"))
    out: dict = {"customers_kequn": len(ours), "customers_ref": len(theirs), "joined": len(both)}
    names = {"r": "r", "alpha": "alpha", "a": "a", "b": "b"}
    out["bgnbd"] = {
        k: (
            kequn["bgnbd"][k],
            reference["bgnbd"][v],
            rel_diff(kequn["bgnbd"][k], reference["bgnbd"][v]),
        )
        for k, v in names.items()
    }
    names = {"p": "p", "q": "q", "gamma": "v"}
    out["gammagamma"] = {
        k: (
            kequn["gammagamma"][k],
            reference["gammagamma"][v],
            rel_diff(kequn["gammagamma"][k], reference["gammagamma"][v]),
        )
        for k, v in names.items()
    }
    for col in ("p_alive", "expected_purchases", "expected_spend", "clv"):
        a, b = both[f"{col}_k"].to_numpy(float), both[f"{col}_r"].to_numpy(float)
        ok = np.isfinite(a) & np.isfinite(b)
        out[col] = {
            "corr": float(np.corrcoef(a[ok], b[ok])[0, 1]),
            "median_rel_diff": float(
                np.median(np.abs(a[ok] - b[ok]) / np.maximum(np.abs(b[ok]), 1e-12))
            ),
            "mean_k": float(a[ok].mean()),
            "mean_r": float(b[ok].mean()),
        }
    for col in ("r_score", "f_score", "m_score"):
        out[col] = float((both[f"{col}_k"] == both[f"{col}_r"]).mean())
    out["recency_days"] = float((both["recency_days_k"] == both["recency_days_r"]).mean())
    out["purchase_days"] = float((both["orders"] == both["purchase_days"]).mean())
    out["spend"] = float(np.isclose(both["revenue"], both["spend"], rtol=1e-9, atol=1e-6).mean())
    return out


def rel_diff(ours: float, theirs: float) -> float:
    """Return |ours - theirs| / |theirs|."""
    return abs(ours - theirs) / abs(theirs) if theirs else float("inf")


def print_report(
    vendor: str,
    info: dict,
    kequn: list[dict],
    reference: list[dict],
    agree: dict | None,
    verdict: Verdict,
) -> dict:
    """Print the stage table of one database; return its headline numbers."""
    ours = median_times(kequn)
    theirs = median_times(reference) if reference else {}
    runs = f"medians of {len(kequn)} Kequn and {len(reference)} reference runs"
    changes = statistics.median(run["stage_changes"] for run in kequn)
    runs += f"; Kequn recorded a median {changes:,.0f} stage changes per refresh"
    print(f"\n== {vendor}: {info['customers']:,} customers, {info['orders']:,} orders; {runs} ==")
    print(f"{'stage':<34}{'Kequn':>10}{'pandas+lifetimes':>18}")
    pairs = dict(REFERENCE_STAGES)
    for key, label in KEQUN_STAGES:
        ref = "-"
        if key == "load" and "read" in theirs:
            ref = f"{theirs['read']:.1f} s"
            label = "load from DB / pandas.read_sql"
        elif key == "write" and "write" in theirs:
            label = "write scores / DataFrame.to_sql"
            ref = f"{theirs[key]:.1f} s"
        elif key in pairs and key in theirs:
            ref = f"{theirs[key]:.1f} s"
        print(f"{label:<34}{ours.get(key, 0.0):>8.1f} s{ref:>18}")
    if ours.get("other", 0.0) >= 0.05:
        print(f"{'other (run log)':<34}{ours['other']:>8.1f} s{'-':>18}")
    shared = ["aggregate", "fit_bgnbd", "fit_gammagamma", "predict"]
    ours_shared = sum(ours.get(k, 0.0) for k in shared)
    ref_total = theirs.get("total", float("nan"))
    ref_shared = sum(theirs.get(k, 0.0) for k in shared) if theirs else float("nan")
    print(f"{'total, end to end':<34}{ours['total']:>8.1f} s{ref_total:>16.1f} s")
    print(f"{'  of which compute-only stages*':<34}{ours_shared:>8.1f} s{ref_shared:>16.1f} s")
    peak_k = max(run["peak_rss_kib"] for run in kequn) / 1024**2
    peak_r = max(run["peak_rss_kib"] for run in reference) / 1024**2 if reference else float("nan")
    print(f"{'peak RSS':<34}{peak_k:>7.2f} GB{peak_r:>15.2f} GB")
    ratio = ref_total / ours["total"] if theirs else float("nan")
    ratio_shared = ref_shared / ours_shared if theirs else float("nan")
    print(f"ratio reference/Kequn, end to end: {ratio:.1f}x (target >= 5x, stretch 10x)")
    print(f"ratio reference/Kequn, compute-only stages*: {ratio_shared:.1f}x")
    io = ours.get("load", 0.0) + ours.get("write", 0.0)
    if theirs and io > 0:
        # What no amount of faster computing removes: reading the orders, writing the scores.
        print(
            f"Kequn's load + write stages alone: {io:.1f} s, so even with no computation "
            f"the end-to-end ratio could be at most {ref_total / io:.1f}x"
        )
    print(f"peak memory Kequn {peak_k:.2f} GB: {'under' if peak_k < 3 else 'OVER'} 3 GB")
    if theirs:
        verdict.target(f"{vendor} reference / Kequn end to end >= 5x", ratio >= 5, f"{ratio:.1f}x")
    else:
        verdict.fail(f"{vendor}: no reference run, so no ratio to judge (nan)")
    verdict.target(f"{vendor} Kequn peak memory < 3 GB", peak_k < 3, f"{peak_k:.2f} GB")
    verdict.check(
        f"{vendor} Kequn scored every customer",
        all(run["customers"] == info["customers"] for run in kequn),
        f"{[run['customers'] for run in kequn]} of {info['customers']:,}",
    )
    print(
        "* aggregate + RFM, both fits, predictions: what both pipelines compute; "
        "Kequn's end to end also holds lifecycle, churn and stage history, which the reference lacks"
    )
    if agree:
        print_agreement(agree)
        judge_agreement(vendor, agree, verdict)
    return {"kequn": ours["total"], "reference": ref_total, "ratio": ratio, "peak_gb": peak_k}


def judge_agreement(vendor: str, agree: dict, verdict: Verdict) -> None:
    """Fail the run when the two pipelines disagree."""
    worst = max(d for _, _, d in agree["bgnbd"].values())
    verdict.check(f"{vendor} BG/NBD parameters within 1 %", worst <= 0.01, f"worst {worst:.2%}")
    corr = agree["p_alive"]["corr"]
    verdict.check(f"{vendor} P(alive) correlation > 0.99", corr > 0.99, f"{corr:.5f}")
    verdict.check(
        f"{vendor} both scored the same customers",
        agree["customers_kequn"] == agree["customers_ref"] == agree["joined"],
        f"Kequn {agree['customers_kequn']:,}, reference {agree['customers_ref']:,}, "
        f"joined {agree['joined']:,}",
    )
    same = min(agree["recency_days"], agree["purchase_days"], agree["spend"])
    verdict.check(f"{vendor} identical RFM inputs", same == 1.0, f"lowest share {same:.2%}")


def print_agreement(agree: dict) -> None:
    """Print how closely the two pipelines agree."""
    print(
        f"agreement on {agree['joined']:,} purchasing customers "
        f"(Kequn {agree['customers_kequn']:,}, reference {agree['customers_ref']:,}):"
    )
    for model in ("bgnbd", "gammagamma"):
        cells = ", ".join(
            f"{k} {a:.4g} vs {b:.4g} ({d:.2%})" for k, (a, b, d) in agree[model].items()
        )
        print(f"  {model}: {cells}")
    worst = max(d for _, _, d in agree["bgnbd"].values())
    print(f"  BG/NBD params within 1%: {'yes' if worst <= 0.01 else 'NO'} (worst {worst:.2%})")
    corr = agree["p_alive"]["corr"]
    print(f"  P(alive) correlation {corr:.5f}: {'> 0.99 yes' if corr > 0.99 else 'NO'}")
    for col in ("expected_purchases", "expected_spend", "clv"):
        c = agree[col]
        print(
            f"  {col}: corr {c['corr']:.5f}, median |rel diff| {c['median_rel_diff']:.3%}, "
            f"mean {c['mean_k']:.4g} vs {c['mean_r']:.4g}"
        )
    print(
        "  RFM scores identical: "
        + ", ".join(f"{c[0].upper()} {agree[c]:.2%}" for c in ("r_score", "f_score", "m_score"))
        + f"; inputs identical: recency days {agree['recency_days']:.2%}, "
        + f"purchase days {agree['purchase_days']:.2%}, spend {agree['spend']:.2%}"
    )


def describe_load() -> str:
    """Return the load averages and core count, for judging noise."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def parse_args() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=None, help="default 1,000,000")
    parser.add_argument("--smoke", action="store_true", help="a small run for CI (1,000)")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--reuse", action="store_true", help="keep already generated data")
    parser.add_argument("--repeat", type=int, default=1, help="measured Kequn runs")
    parser.add_argument(
        "--reference-repeat", type=int, default=None, help="measured reference runs (<= --repeat)"
    )
    parser.add_argument("--lifetimes-python", default=DEFAULT_LIFETIMES_PYTHON)
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument(
        "--first-refresh",
        action="store_true",
        help="time a first refresh (no stored scores) instead of the nightly one",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="time refresh --full (every purchase summary from all orders)",
    )
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> int:
    """Prepare the data, run both pipelines per database and print the comparison."""
    args = parse_args()
    if args.customers is None:
        args.customers = 1_000 if args.smoke else DEFAULT_CUSTOMERS
    if args.smoke and not args.worker:
        args.skip_reference = True
    if args.reference_repeat is None:
        args.reference_repeat = args.repeat
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args), default=str), flush=True)
        return 0
    vendors = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    verdict = Verdict("analytics_refresh", smoke=args.smoke)
    verdict.conditions(
        "both cold: every Kequn refresh and every reference run in a fresh interpreter, "
        "libraries imported before the clock starts"
    )
    reference_ok = not args.skip_reference and Path(args.lifetimes_python).exists()
    if not args.skip_reference and not reference_ok:
        verdict.fail(
            f"no {args.lifetimes_python}: create it with `python3 -m venv --system-site-packages "
            f"/tmp/lifetimes-venv && /tmp/lifetimes-venv/bin/pip install lifetimes sqlalchemy pyarrow psycopg[binary]`"  # noqa: S108 -- a hint
        )
        return verdict.finish()
    if args.skip_reference and args.smoke:
        print("smoke: the reference (pandas + lifetimes) is not run; Kequn's outputs are checked")
    print(f"machine at start: {describe_load()}")
    headlines = {}
    for vendor in vendors:
        info, _ = run_worker(
            "prepare", vendor, args.customers, *(["--reuse"] if args.reuse else [])
        )
        kequn, reference = [], []
        for i in range(args.repeat):
            log(f"{vendor}: Kequn refresh, run {i + 1}/{args.repeat}")
            extra = ["--first-refresh"] if args.first_refresh else []
            extra += ["--full"] if args.full else []
            run, child_peak = run_worker("kequn", vendor, args.customers, *extra)
            run["child_peak_rss_kib"] = child_peak
            kequn.append(run)
            log(
                f"{vendor}: Kequn refresh took {run['total']:.1f} s, {run['stage_changes']:,} stage "
                f"changes, peak {run['peak_rss_kib'] / 1024**2:.2f} GB ({describe_load()})"
            )
            if reference_ok and i < args.reference_repeat:
                log(f"{vendor}: pandas + lifetimes, run {i + 1}/{args.reference_repeat}")
                ref, child_peak = run_reference(args.lifetimes_python, vendor, args.customers)
                ref["child_peak_rss_kib"] = child_peak
                reference.append(ref)
                log(
                    f"{vendor}: reference took {sum(ref['times'].values()):.1f} s ({describe_load()})"
                )
        agree = (
            compare_outputs(kequn[-1], reference[-1], vendor, args.customers) if reference else None
        )
        if args.smoke:
            reference = []
            verdict.check(
                f"{vendor} Kequn scored every customer",
                all(run["customers"] == info["customers"] for run in kequn),
                f"{[run['customers'] for run in kequn]} of {info['customers']:,}",
            )
            verdict.check(
                f"{vendor} BG/NBD and Gamma-Gamma fitted",
                all(run["bgnbd"] and run["gammagamma"] for run in kequn),
                f"BG/NBD {kequn[-1]['bgnbd']}",
            )
            continue
        headlines[vendor] = print_report(vendor, info, kequn, reference, agree, verdict)
    print(f"\nmachine at end: {describe_load()}")
    if len(headlines) > 1:
        print(f"\n{'database':<12}{'Kequn':>10}{'reference':>12}{'ratio':>8}{'peak':>10}")
        for vendor, h in headlines.items():
            print(
                f"{vendor:<12}{h['kequn']:>8.1f} s{h['reference']:>10.1f} s{h['ratio']:>7.1f}x{h['peak_gb']:>7.2f} GB"
            )
    if args.smoke:
        clean_smoke_scratch(vendors, args.customers)
    return verdict.finish()


def clean_smoke_scratch(vendors: list[str], customers: int) -> None:
    """Remove a smoke run's scratch databases and files."""
    import shutil

    if "postgresql" in vendors:
        run_pg_admin(f"DROP DATABASE IF EXISTS {pg_database_name(customers)} WITH (FORCE)")
    shutil.rmtree(SCRATCH, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
