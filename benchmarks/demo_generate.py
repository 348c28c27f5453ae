"""Time generate_demo_data into a scratch database and compare with the bulk-write floor.

    python benchmarks/demo_generate.py --customers 1000000 [--database-url postgresql://...]

The floor is measured in the same run: the generated rows are read back (untimed) and
bulk-written again into an empty copy of the schema with all indexes in place (executemany
of row tuples on SQLite, COPY on PostgreSQL), timed. ratio = generation time / floor time;
it can fall below 1 since the generator uses multi-row INSERTs, pipelines COPY with the
generation and builds random-key indexes once after the load. --keep-indexes maintains
all indexes during the load instead. Both write into a freshly migrated, empty schema in
this process (the floor after the generation; its rows are read back untimed first). No
issue sets a speed target: the ratio is printed. Exit status 1 when the generator does not
write the customers asked for, or the floor does not re-write exactly the rows generated.
--smoke: 300 customers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from _verdict import Verdict, bench_tag, set_smoke_tag

TABLES = [
    "customers_customer",
    "customers_identity",
    "customers_address",
    "customers_consent",
    "customers_customertag",
    "customers_companycontact",
    "commerce_order",
    "commerce_orderline",
    "events_event",
]


def parse_args() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=None, help="default 100,000")
    parser.add_argument("--smoke", action="store_true", help="a small run for CI (300)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--database-url", default="", help="postgresql://... (default SQLite)")
    parser.add_argument(
        "--keep-indexes", action="store_true", help="maintain secondary indexes during the load"
    )
    parser.add_argument("--no-floor", action="store_true", help="skip the floor measurement")
    return parser.parse_args()


def with_database(url: str, name: str) -> str:
    """Return the PostgreSQL URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def admin_execute(url: str, *statements: str) -> None:
    """Run statements on the postgres maintenance database in autocommit."""
    import psycopg

    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql)


def time_sqlite_floor(source: Path, empty: Path) -> tuple[float, int]:
    """Re-insert all generated rows into an empty schema copy; return seconds and rows."""
    import sqlite3

    src = sqlite3.connect(source)
    dst = sqlite3.connect(empty, isolation_level=None)
    dst.execute("PRAGMA journal_mode=WAL")
    dst.execute("PRAGMA synchronous=OFF")
    dst.execute("PRAGMA cache_size=-1000000")
    dst.execute("PRAGMA foreign_keys=OFF")
    spent, rows = 0.0, 0
    for table in TABLES:
        cur = src.execute(f'SELECT * FROM "{table}" ORDER BY id')  # noqa: S608 -- table names from the TABLES constant
        width = len(cur.description)
        sql = f'INSERT INTO "{table}" VALUES ({", ".join("?" * width)})'  # noqa: S608 -- table names from the TABLES constant
        while batch := cur.fetchmany(500_000):
            tick = time.perf_counter()
            dst.execute("BEGIN IMMEDIATE")
            dst.executemany(sql, batch)
            dst.execute("COMMIT")
            spent += time.perf_counter() - tick
            rows += len(batch)
    return spent, rows


def time_postgres_floor(source_url: str, floor_url: str, spool: Path) -> tuple[float, int]:
    """COPY the generated tables out (untimed) and into an empty schema (timed)."""
    import psycopg

    spent, rows = 0.0, 0
    with psycopg.connect(source_url) as src, psycopg.connect(floor_url) as dst:
        # Reference tables (products, tags) are not copied; the generator skips the
        # foreign-key triggers the same way.
        dst.execute("SET session_replication_role = replica")
        dst.commit()
        for table in TABLES:
            path = spool / f"{table}.csv"
            with path.open("wb") as fh, src.cursor() as cur:
                with cur.copy(f'COPY "{table}" TO STDOUT WITH (FORMAT csv)') as copy:
                    for block in copy:
                        fh.write(block)
                cur.execute(f'SELECT count(*) FROM "{table}"')  # noqa: S608 -- table names from the TABLES constant
                rows += cur.fetchone()[0]
            tick = time.perf_counter()
            load = f'COPY "{table}" FROM STDIN WITH (FORMAT csv)'
            with path.open("rb") as fh, dst.cursor() as cur, cur.copy(load) as copy:
                while block := fh.read(1 << 20):
                    copy.write(block)
            dst.commit()
            spent += time.perf_counter() - tick
            path.unlink()
    return spent, rows


def main() -> int:
    """Run the benchmark and print the timings."""
    args = parse_args()
    if args.smoke:
        set_smoke_tag()
    args.customers = args.customers or (300 if args.smoke else 100_000)
    verdict = Verdict("demo_generate", smoke=args.smoke)
    verdict.conditions(
        "both write into an empty migrated schema in this process, the floor after the "
        "generation (its rows read back untimed first)"
    )
    bench_db = f"kequn_demo_bench{bench_tag()}"
    scratch = Path(tempfile.mkdtemp(prefix="kequn-bench-"))
    os.environ["KEQUN_DATA_DIR"] = str(scratch)
    os.environ["DJANGO_SETTINGS_MODULE"] = "kequn.settings"
    pg = args.database_url.startswith("postgres")
    if pg:
        url = with_database(args.database_url, bench_db)
        admin_execute(
            args.database_url,
            f"DROP DATABASE IF EXISTS {bench_db} WITH (FORCE)",
            f"DROP DATABASE IF EXISTS {bench_db}_floor WITH (FORCE)",
            f"CREATE DATABASE {bench_db}",
        )
    else:
        url = f"sqlite:///{scratch / 'bench.sqlite3'}"
    os.environ["KEQUN_DATABASE_URL"] = url

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from kequn.demo.generator import generate_demo_data

    call_command("migrate", interactive=False, verbosity=0)
    connections.close_all()
    if pg:
        admin_execute(args.database_url, f"CREATE DATABASE {bench_db}_floor TEMPLATE {bench_db}")
    else:
        shutil.copy(scratch / "bench.sqlite3", scratch / "floor.sqlite3")

    backend = "PostgreSQL" if pg else "SQLite"
    print(f"{backend}: generating {args.customers:,} customers ...", file=sys.stderr)
    summary = generate_demo_data(
        args.customers,
        seed=args.seed,
        today=date(2026, 11, 20),
        rebuild_indexes=not args.keep_indexes,
    )
    connections.close_all()
    total_rows = sum(summary.rows.values())
    print(f"\n== demo data generation, {backend}, {args.customers:,} customers ==")
    for stage, seconds in sorted(summary.stages.items(), key=lambda kv: -kv[1]):
        print(f"  {stage:<24} {seconds:8.1f} s")
    for table, count in summary.rows.items():
        print(f"  rows {table:<19} {count:>12,}")
    print(
        f"total: {summary.seconds:.1f} s, {total_rows:,} rows, "
        f"{total_rows / summary.seconds:,.0f} rows/s"
    )
    if not args.no_floor:
        print("measuring the floor (re-writing the same rows) ...", file=sys.stderr)
        if pg:
            floor, rows = time_postgres_floor(
                url, with_database(args.database_url, f"{bench_db}_floor"), scratch
            )
        else:
            floor, rows = time_sqlite_floor(scratch / "bench.sqlite3", scratch / "floor.sqlite3")
        print(
            f"floor: {floor:.1f} s for {rows:,} pre-formatted rows "
            f"({rows / floor:,.0f} rows/s); ratio total/floor = {summary.seconds / floor:.2f} "
            "(no target set)"
        )
        verdict.check("the floor re-wrote exactly the rows the generator reports",
                      rows == total_rows, f"{rows:,} of {total_rows:,}")  # fmt: skip
    verdict.check("the generator wrote the customers asked for",
                  summary.customers == args.customers,
                  f"{summary.customers:,} of {args.customers:,}")  # fmt: skip
    if pg:
        admin_execute(
            args.database_url,
            f"DROP DATABASE IF EXISTS {bench_db} WITH (FORCE)",
            f"DROP DATABASE IF EXISTS {bench_db}_floor WITH (FORCE)",
        )
    shutil.rmtree(scratch, ignore_errors=True)
    return verdict.finish()


if __name__ == "__main__":
    sys.exit(main())
