"""Benchmark: import customer rows with cleaning + deterministic resolution vs a plain bulk load.

    python benchmarks/ingest_customers.py [--rows 1000000] [--db sqlite|postgresql|both]

Both runs load the same generated CSV into an empty database of the same engine; the plain
load writes the raw values with bulk_create (no cleaning, no look-ups). Target ratio <= 3.
Each run happens in a child process of its own, which reports its peak resident memory: the
file is streamed, so that peak should not grow with --rows. With --fast-reference, the raw rows
are also written through the import's own bulk writer (COPY / prepared INSERT), which shows
what cleaning and resolution cost on top of the same write path.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PG_URL = "postgresql://postgres@127.0.0.1:5432/kequn_bench"


def write_rows(path: Path, n: int, seed: int = 1) -> None:
    """Write n customer rows; 5% repeat an earlier email so resolution has work to do."""
    rng = random.Random(seed)
    cities = ["上海", "Beijing", "深圳市", "杭州", "Chengdu", "广州"]
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["手机号", "姓名", "邮箱", "城市", "生日"])
        for i in range(n):
            j = rng.randrange(i) if i and rng.random() < 0.05 else i
            writer.writerow([f"138 {j // 10000:04d} {j % 10000:04d}", f" 客户{i} ", f"User{j}@Example.com",
                             rng.choice(cities), f"19{rng.randrange(50, 99)}/{rng.randrange(1, 13)}/{rng.randrange(1, 28)}"])  # fmt: skip


def plain_load(path: Path, fast: bool = False) -> None:
    """Write the raw rows with bulk_create, or with the importer's bulk writer when fast."""
    from kequn.customers.models import Customer, Identity

    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        batch: list[list[str]] = []
        for row in reader:
            batch.append(row)
            if len(batch) == 2000:
                _flush(batch, Customer, Identity, fast)
                batch = []
        if batch:
            _flush(batch, Customer, Identity, fast)


def _flush(rows, customer_model, identity_model, fast: bool) -> None:
    from django.db import transaction

    from kequn.ingest.services import _insert_rows

    with transaction.atomic():
        customers = [customer_model(name=r[1], city=r[3]) for r in rows]
        if fast:
            _insert_rows(customer_model, customers, set_ids=True)
        else:
            customers = customer_model.objects.bulk_create(customers)
        identities = (
            [identity_model(customer=c, kind="email", value=f"{c.pk}:{r[2]}") for c, r in zip(customers, rows, strict=True)]
            + [identity_model(customer=c, kind="phone", value=f"{c.pk}:{r[0]}") for c, r in zip(customers, rows, strict=True)]
        )  # fmt: skip
        if fast:
            _insert_rows(identity_model, identities)
        else:
            identity_model.objects.bulk_create(identities)


def get_peak_mb() -> float:
    """Return this process's peak resident memory in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(path: Path, mode: str) -> dict:
    """Load the file into the (empty) database one way; return seconds, counts and peak memory."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, skip_checks=True)
    from kequn.ingest.services import import_file

    start = time.perf_counter()
    if mode in ("plain", "plain-fast"):
        plain_load(path, fast=mode == "plain-fast")
        return {"seconds": time.perf_counter() - start, "peak_mb": get_peak_mb()}
    summary = import_file(path, "customers", batch_size=5000)
    return {"seconds": time.perf_counter() - start, "rows": summary.rows_read,
            "inserted": summary.inserted, "merged": summary.merged + summary.updated + summary.unchanged,
            "quarantined": summary.quarantined, "peak_mb": get_peak_mb()}  # fmt: skip


def fresh_env(tmp: str, engine: str, mode: str) -> dict:
    """Return the environment of a child process with an empty database of its own."""
    env = {**os.environ, "KEQUN_DATA_DIR": str(Path(tmp) / f"data-{engine}-{mode}"),
           "DJANGO_SETTINGS_MODULE": "kequn.settings"}  # fmt: skip
    if engine == "postgresql":
        env["KEQUN_DATABASE_URL"] = PG_URL
        psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc"]
        subprocess.run([*psql, "DROP DATABASE IF EXISTS kequn_bench"], check=False)
        subprocess.run([*psql, "CREATE DATABASE kequn_bench"], check=True)
    else:
        env.pop("KEQUN_DATABASE_URL", None)
    return env


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--child", default="")
    parser.add_argument("--mode", default="import")
    parser.add_argument("--fast-reference", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(Path(args.child), args.mode)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "customers.csv"
        write_rows(path, args.rows)
        engines = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
        for engine in engines:
            results = {}
            modes = (
                ("plain", "import", "plain-fast") if args.fast_reference else ("plain", "import")
            )
            for mode in modes:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", str(path), "--mode", mode],
                    env=fresh_env(tmp, engine, mode), check=True, stdout=subprocess.PIPE, text=True,
                ).stdout  # fmt: skip
                results[mode] = json.loads(out.strip().splitlines()[-1])
            plain, full = results["plain"]["seconds"], results["import"]["seconds"]
            imported = results["import"]
            if imported["rows"] != args.rows or imported["quarantined"]:
                sys.exit(f"{engine}: the import read {imported['rows']} rows and quarantined "
                         f"{imported['quarantined']}; expected {args.rows} and 0")  # fmt: skip
            ratio = full / plain
            verdict = "OK" if ratio <= 3 else "SLOWER THAN TARGET"
            print(f"{engine}: {imported['rows']} rows, plain bulk load {plain:.1f} s "
                  f"({args.rows / plain:,.0f} rows/s, peak {results['plain']['peak_mb']:.0f} MiB), "
                  f"import with cleaning + resolution {full:.1f} s ({args.rows / full:,.0f} rows/s, "
                  f"peak {imported['peak_mb']:.0f} MiB; {imported['inserted']} inserted, "
                  f"{imported['merged']} resolved onto them), ratio {ratio:.2f}x (target <= 3x) {verdict}",
                  flush=True)  # fmt: skip
            if args.fast_reference:
                fast = results["plain-fast"]["seconds"]
                print(f"{engine}: the raw rows through the import's bulk writer {fast:.1f} s "
                      f"({args.rows / fast:,.0f} rows/s): cleaning + resolution cost "
                      f"{full / fast:.2f}x that", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
