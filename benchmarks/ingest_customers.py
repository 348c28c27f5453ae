"""Benchmark: import customer rows with cleaning + deterministic resolution vs a plain bulk load.

    python benchmarks/ingest_customers.py [--rows 1000000] [--db sqlite|postgresql|both]
        [--repeat 1] [--smoke]

Every run loads the same generated CSV into an empty database of the same engine. The
reference is the fastest fair writer: the same raw rows (no cleaning, no look-ups) written
through the import's own bulk writer (COPY on PostgreSQL, prepared multi-row INSERT on
SQLite). Target: the import at most 3x that reference. Django's bulk_create of the same raw
rows, a slower writer, is timed too and its ratio printed for comparison only.
Each run happens in a fresh child process of its own (all cold, the same conditions), which
reports its peak resident memory: the file is streamed, so that peak should not grow with
--rows. Exit status 1 when the target is missed or the import does not account for every
row (read = inserted + resolved, nothing quarantined, the references wrote every row).
--smoke: 2,000 rows, outputs checked, target not judged.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _verdict import Verdict, bench_tag, set_smoke_tag

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"


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

    from kequn.db import insert_objects

    with transaction.atomic():
        customers = [customer_model(name=r[1], city=r[3]) for r in rows]
        if fast:
            insert_objects(customer_model, customers, set_ids=True)
        else:
            customers = customer_model.objects.bulk_create(customers)
        identities = (
            [identity_model(customer=c, kind="email", value=f"{c.pk}:{r[2]}") for c, r in zip(customers, rows, strict=True)]
            + [identity_model(customer=c, kind="phone", value=f"{c.pk}:{r[0]}") for c, r in zip(customers, rows, strict=True)]
        )  # fmt: skip
        if fast:
            insert_objects(identity_model, identities)
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
    call_command("migrate", verbosity=0, skip_checks=True)  # a no-op on the migrated copy
    if mode == "migrate":
        return {}
    from kequn.customers.models import Customer
    from kequn.ingest.runs import import_file
    from kequn.security.actors import system_actor

    start = time.perf_counter()
    if mode in ("plain", "plain-fast"):
        plain_load(path, fast=mode == "plain-fast")
        return {"seconds": time.perf_counter() - start, "peak_mb": get_peak_mb(),
                "customers": Customer.objects.count()}  # fmt: skip
    summary = import_file(path, "customers", batch_size=5000, by=system_actor("benchmark"))
    return {"seconds": time.perf_counter() - start, "rows": summary.rows_read,
            "inserted": summary.inserted, "merged": summary.merged + summary.updated + summary.unchanged,
            "quarantined": summary.quarantined, "peak_mb": get_peak_mb()}  # fmt: skip


def psql(statement: str, check: bool = True) -> None:
    """Run one statement on the PostgreSQL maintenance database."""
    command = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc", statement]
    subprocess.run(command, check=check, stderr=subprocess.DEVNULL if not check else None)


def fresh_env(tmp: str, engine: str, run: str) -> dict:
    """Return the environment of a child process with an empty, migrated database of its own.

    Every run starts from a copy of the same migrated template, so no run pays for migrate.
    """
    template = Path(tmp) / f"template-{engine}"
    data_dir = Path(tmp) / f"data-{engine}-{run}"
    shutil.rmtree(data_dir, ignore_errors=True)
    shutil.copytree(template, data_dir)
    env = {**os.environ, "KEQUN_DATA_DIR": str(data_dir),
           "DJANGO_SETTINGS_MODULE": "kequn.settings"}  # fmt: skip
    if engine == "postgresql":
        name = f"kequn_bench{bench_tag()}"
        env["KEQUN_DATABASE_URL"] = f"{PG_SERVER}/{name}"
        psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", check=False)
        psql(f"CREATE DATABASE {name} TEMPLATE {name}_template")
    else:
        env.pop("KEQUN_DATABASE_URL", None)
    return env


def make_template(tmp: str, engine: str) -> None:
    """Migrate an empty database once; every run of this engine starts from a copy of it."""
    template = Path(tmp) / f"template-{engine}"
    env = {**os.environ, "KEQUN_DATA_DIR": str(template),
           "DJANGO_SETTINGS_MODULE": "kequn.settings"}  # fmt: skip
    if engine == "postgresql":
        name = f"kequn_bench{bench_tag()}_template"
        env["KEQUN_DATABASE_URL"] = f"{PG_SERVER}/{name}"
        psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", check=False)
        psql(f"CREATE DATABASE {name}")
    else:
        env.pop("KEQUN_DATABASE_URL", None)
    subprocess.run([sys.executable, __file__, "--child", "-", "--mode", "migrate"], env=env,
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip


def drop_pg_databases() -> None:
    """Drop this run's PostgreSQL scratch databases."""
    name = f"kequn_bench{bench_tag()}"
    psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", check=False)
    psql(f"DROP DATABASE IF EXISTS {name}_template WITH (FORCE)", check=False)


def run_mode(path: Path, tmp: str, engine: str, mode: str) -> dict:
    """Run one load in a fresh child process; return its JSON report."""
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(path), "--mode", mode],
        env=fresh_env(tmp, engine, "run"), capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{engine} {mode}: the load failed with exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="default 1,000,000 (smoke: 2,000)")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each load (medians)")
    parser.add_argument("--smoke", action="store_true", help="a small run for CI")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="import", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(Path(args.child), args.mode)))
        return 0
    if args.smoke:
        set_smoke_tag()
    rows = args.rows if args.rows is not None else (2_000 if args.smoke else 1_000_000)
    if rows <= 0 or args.repeat <= 0:
        parser.error("--rows and --repeat must be positive")
    verdict = Verdict("ingest_customers", smoke=args.smoke)
    verdict.conditions(
        "every load (the import and both references) runs cold, in a fresh child process "
        "on an empty migrated database (a copy of one template), one after the other"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "customers.csv"
        write_rows(path, rows)
        engines = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
        for engine in engines:
            runs: dict[str, list[dict]] = {"plain-fast": [], "import": [], "plain": []}
            try:
                make_template(tmp, engine)
                for _ in range(args.repeat):
                    for mode in runs:
                        runs[mode].append(run_mode(path, tmp, engine, mode))
            finally:
                if engine == "postgresql":
                    drop_pg_databases()
            secs = {mode: statistics.median(r["seconds"] for r in rs) for mode, rs in runs.items()}
            fast, full, plain = secs["plain-fast"], secs["import"], secs["plain"]
            imported = runs["import"][-1]
            for mode in ("plain-fast", "plain"):
                written = [r["customers"] for r in runs[mode]]
                verdict.check(f"{engine} {mode} reference wrote every row",
                              all(w == rows for w in written), f"{written} of {rows}")  # fmt: skip
            accounted = imported["inserted"] + imported["merged"]
            verdict.check(
                f"{engine} import accounts for every row",
                imported["rows"] == rows == accounted and not imported["quarantined"],
                f"read {imported['rows']} of {rows}, inserted {imported['inserted']} + resolved "
                f"{imported['merged']} = {accounted}, quarantined {imported['quarantined']}",
            )
            peak = max(r["peak_mb"] for r in runs["import"])
            print(f"{engine}: {rows:,} rows, medians of {args.repeat} run(s): "
                  f"import with cleaning + resolution {full:.2f} s ({rows / full:,.0f} rows/s, "
                  f"peak {peak:.0f} MiB; {imported['inserted']:,} inserted, "
                  f"{imported['merged']:,} resolved onto them)", flush=True)  # fmt: skip
            print(f"{engine}: reference, the raw rows through the import's bulk writer "
                  f"{fast:.2f} s ({rows / fast:,.0f} rows/s): ratio {full / fast:.2f}x "
                  f"(target <= 3x)", flush=True)  # fmt: skip
            print(f"{engine}: for comparison, the raw rows through Django bulk_create "
                  f"{plain:.2f} s ({rows / plain:,.0f} rows/s): ratio {full / plain:.2f}x",
                  flush=True)  # fmt: skip
            verdict.target(f"{engine} import / fastest raw writer <= 3x", full / fast <= 3,
                           f"{full / fast:.2f}x")  # fmt: skip
    return verdict.finish()


if __name__ == "__main__":
    sys.exit(main())
