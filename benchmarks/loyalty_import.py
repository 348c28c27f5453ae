"""Benchmark: importing orders while loyalty earns points on them, against the same import without.

    python benchmarks/loyalty_import.py [--rows 20000] [--repeat 4] [--database sqlite|postgresql]
        [--smoke]

A scratch database gets its buyers from a warm-up import first (so neither side pays for
creating customers), then files of new orders (same buyers, new order numbers) are imported
alternately without loyalty (the commerce order listener unregistered: the reference) and
with it (members enrolled automatically, points earned, pending or available, tiers checked),
--repeat times each (in turn first), warm, in this one process. Target: the median with loyalty within 1.3×
the median without. Checks: every paid order of the loyalty runs earned exactly one entry,
re-importing a file earns nothing more, every stored balance equals its ledger.
--smoke: 600 rows, outputs checked, target not judged.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _verdict import Verdict, bench_tag, set_smoke_tag

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
TARGET_RATIO = 1.3
BUYERS = 5000


def psql(statement: str) -> None:
    subprocess.run(
        ["psql", f"{PG_SERVER}/postgres", "-qc", statement], check=True, capture_output=True
    )


def setup_database(engine: str, tmp: str) -> str:
    """Point Django at an empty scratch database, migrate it, return its name for cleanup."""
    os.environ["KEQUN_DATA_DIR"] = tmp
    os.environ["DJANGO_SETTINGS_MODULE"] = "kequn.settings"
    name = ""
    if engine == "postgresql":
        name = f"kequn_bench_loyalty_import{bench_tag()}".lower()
        psql(f"DROP DATABASE IF EXISTS {name}")
        psql(f"CREATE DATABASE {name}")
        os.environ["KEQUN_DATABASE_URL"] = f"{PG_SERVER}/{name}"
    else:
        os.environ.pop("KEQUN_DATABASE_URL", None)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, skip_checks=True)
    return name


def write_orders(path: Path, prefix: str, rows: int, buyers: int, seed: int) -> None:
    """Write order rows of `buyers` phones dated within the last 60 days, 90% paid."""
    rng = random.Random(seed)
    now = datetime.now(UTC) + timedelta(hours=8)  # written as Shanghai wall-clock time
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("订单号,手机,下单时间,订单金额,状态\n")
        for i in range(rows):
            when = now - timedelta(days=rng.randrange(0, 60), minutes=rng.randrange(1440))
            status = "已付款" if rng.random() < 0.9 else "已取消"
            fh.write(
                f"{prefix}-{i},1390000{rng.randrange(buyers):04d},{when:%Y-%m-%d %H:%M},"
                f"{rng.randrange(10, 5000)}.{rng.randrange(100):02d},{status}\n"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        set_smoke_tag()
        args.rows, args.repeat = 600, 1
    verdict = Verdict("loyalty_import", smoke=args.smoke)
    with tempfile.TemporaryDirectory() as tmp:
        name = setup_database(args.database, tmp)
        try:
            run(args, verdict, Path(tmp))
        finally:
            from django.db import connections

            connections.close_all()
            if name:
                psql(f"DROP DATABASE IF EXISTS {name}")
    return verdict.finish()


def run(args: argparse.Namespace, verdict: Verdict, tmp: Path) -> None:
    from kequn.commerce.hooks import register_order_listener, unregister_order_listener
    from kequn.commerce.models import Order
    from kequn.ingest.runs import import_file
    from kequn.loyalty import selectors, services
    from kequn.loyalty.models import LedgerEntry, Tier
    from kequn.security.actors import system_actor

    by = system_actor("benchmark")
    services.get_programme()
    # The tiers of the demo programme, so each batch's upgrade check has tiers to check.
    for rank, (code, name, threshold) in enumerate(
        [("normal", "普通", 0), ("silver", "银卡", 1000), ("gold", "金卡", 5000),
         ("diamond", "钻石", 20000)]
    ):  # fmt: skip
        Tier.objects.create(code=code, name=name, rank=rank, threshold=threshold)
    buyers = min(BUYERS, args.rows)
    listener = unregister_order_listener("loyalty")
    warm = tmp / "warm.csv"
    write_orders(warm, "W", buyers * 2, buyers, 1)
    import_file(warm, "orders", by=by)  # creates the buyers; no points (listener off)
    verdict.conditions(
        f"{args.database}, warm, one process; {args.rows:,} orders per file of "
        f"{buyers:,} known buyers; without and with loyalty alternately"
    )
    times: dict[str, list[float]] = {"without": [], "with": []}
    loyalty_files = []
    for n in range(args.repeat):
        # ABBA: whichever side goes second meets a bigger orders table (and the first one's
        # autovacuum); always second, a listener that did nothing measured 1.10x.
        for side in ("without", "with") if n % 2 == 0 else ("with", "without"):
            path = tmp / f"{side}-{n}.csv"
            write_orders(path, f"{'L' if side == 'with' else 'N'}{n}", args.rows, buyers, 10 + n)
            if side == "with":
                register_order_listener("loyalty", listener)
                loyalty_files.append(path)
            else:
                unregister_order_listener("loyalty")
            started = time.perf_counter()
            import_file(path, "orders", by=by)
            times[side].append(time.perf_counter() - started)
            print(f"{side} loyalty: {times[side][-1]:.2f} s", flush=True)
    register_order_listener("loyalty", listener)
    without, with_ = statistics.median(times["without"]), statistics.median(times["with"])
    ratio = with_ / without
    print(f"median without {without:.2f} s, with {with_:.2f} s: ratio {ratio:.2f}")
    verdict.target(
        f"import with loyalty <= {TARGET_RATIO}x without",
        ratio <= TARGET_RATIO,
        f"{ratio:.2f}x ({with_:.2f} s vs {without:.2f} s, {args.rows:,} rows)",
    )
    prefixes = [f"L{n}-" for n in range(args.repeat)]
    paid = sum(
        Order.objects.filter(number__startswith=p, status__in=Order.PURCHASE_STATUSES).count()
        for p in prefixes
    )
    earned = LedgerEntry.objects.filter(kind="earn", source="order").count()
    verdict.check(
        "one earn entry per paid order", earned == paid, f"{earned:,} entries, {paid:,} paid"
    )
    import_file(loyalty_files[0], "orders", by=by)
    again = LedgerEntry.objects.filter(kind="earn", source="order").count()
    verdict.check(
        "re-import earns nothing more", again == earned, f"{again:,} after, {earned:,} before"
    )
    differences = list(selectors.find_differences())
    verdict.check(
        "balances equal the ledger", not differences, f"{len(differences)} members differ"
    )


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
    sys.exit(main())
