"""Benchmark: appends per second to the audit chain, against a plain INSERT into a similar table.

    python benchmarks/audit_append.py [--entries 3000] [--threads 1] [--database both] [--smoke]

For SQLite (a fresh file database in a temporary directory) and PostgreSQL (the database
kequn_bench_audit on 127.0.0.1, recreated), each in its own process: migrates the database,
then times N calls of record_event (each its own transaction: lock, read the head, HMAC,
INSERT) and N single-row INSERTs, each committed on its own, into a table with the same
columns and indexes but no chain, no lock and no triggers. Prints one line per database with both rates
and their ratio, then checks the chain. Both run warm, in the same process after migrate, on
the same connection settings. No issue sets a speed target (sessions measured 0.56-0.90x
with one writer): the ratio is printed; exit status 1 when the chain does not verify or does
not hold exactly the entries appended. --smoke: 200 entries.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

from _verdict import Verdict, bench_tag, set_smoke_tag

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"

PLAIN_COLUMNS = """
    id {pk}, sequence bigint NOT NULL, created_at {ts} NOT NULL, actor_id bigint NULL,
    actor_username varchar(150) NOT NULL, action varchar(40) NOT NULL,
    target_type varchar(100) NOT NULL, target_id varchar(100) NOT NULL, detail {json} NOT NULL,
    ip_address {ip} NULL, user_agent varchar(300) NOT NULL, request_path varchar(500) NOT NULL,
    prev_mac varchar(64) NOT NULL, mac varchar(64) NOT NULL
"""


def parse_args() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=None, help="appends per measurement")
    parser.add_argument("--smoke", action="store_true", help="a small run for CI (200 entries)")
    parser.add_argument("--threads", type=int, default=1, help="concurrent writers")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def run_in_threads(threads: int, total: int, work) -> float:
    """Run work(i) for i in range(total) split over threads; return the seconds taken."""
    from django.db import connections

    per_thread = total // threads

    def worker(n: int) -> None:
        try:
            for i in range(n * per_thread, (n + 1) * per_thread):
                work(i)
        finally:
            connections.close_all()

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return time.perf_counter() - started


def measure(entries: int, threads: int) -> dict:
    """In a configured process: time chained appends and plain INSERTs."""
    import django

    os.environ["DJANGO_SETTINGS_MODULE"] = "kequn.settings"
    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from kequn.security.audit import services as audit

    call_command("migrate", verbosity=0)
    vendor = connection.vendor
    types = {
        "sqlite": {"pk": "integer PRIMARY KEY AUTOINCREMENT", "ts": "datetime", "json": "text",
                   "ip": "char(39)"},
        "postgresql": {"pk": "bigserial PRIMARY KEY", "ts": "timestamptz", "json": "jsonb",
                       "ip": "inet"},
    }[vendor]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_plain")
        cursor.execute(f"CREATE TABLE bench_plain ({PLAIN_COLUMNS.format(**types)})")
        # The same indexes as the audit table, so the difference is the chain's own cost.
        cursor.execute("CREATE UNIQUE INDEX bench_plain_seq ON bench_plain (sequence)")
        for n, columns in enumerate(
            ["action, created_at", "actor_username, created_at", "target_type, target_id",
             "created_at"]
        ):  # fmt: skip
            cursor.execute(f"CREATE INDEX bench_plain_{n} ON bench_plain ({columns})")
    detail = {"customer": 12345, "fields": ["city", "name"]}
    insert = (
        "INSERT INTO bench_plain (sequence, created_at, actor_id, actor_username, action, "
        "target_type, target_id, detail, ip_address, user_agent, request_path, prev_mac, mac) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    )

    def plain(i: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                insert,
                [i, timezone.now(), 1, "bench", audit.CHANGE, "customers.customer", str(i),
                 json.dumps(detail), "10.0.0.1", "bench", "/admin/", "0" * 64, "1" * 64],
            )  # fmt: skip

    def chained(i: int) -> None:
        audit.record_event(
            audit.CHANGE, target_type="customers.customer", target_id=str(i), detail=detail
        )

    plain_seconds = run_in_threads(threads, entries, plain)
    chained_seconds = run_in_threads(threads, entries, chained)
    verified = audit.verify_chain()
    return {
        "database": vendor,
        "entries": entries,
        "threads": threads,
        "plain_per_s": entries / plain_seconds,
        "audit_per_s": entries / chained_seconds,
        "chain_ok": verified.ok,
        "chain_count": verified.count,
    }


def run_child(database: str, args: argparse.Namespace) -> dict:
    """Run the measurement in a fresh process configured for one database."""
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="kequn-bench-audit-") as tmp:
        env["KEQUN_DATA_DIR"] = tmp
        env.pop("KEQUN_DATABASE_URL", None)
        name = f"kequn_bench_audit{bench_tag()}"
        if database == "postgresql":
            pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}")
            env["KEQUN_DATABASE_URL"] = f"{PG_SERVER}/{name}"
        command = [sys.executable, __file__, "--child", "--entries", str(args.entries),
                   "--threads", str(args.threads)]  # fmt: skip
        try:
            out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        finally:
            if database == "postgresql":
                pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if out.returncode != 0:
            sys.exit(f"FAIL: {database}: the measurement failed:\n{out.stderr}")
        return json.loads(out.stdout.strip().splitlines()[-1])


def pg_admin(*statements: str) -> None:
    """Run statements on the PostgreSQL maintenance database."""
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        for statement in statements:
            admin.execute(statement)


def main() -> int:
    args = parse_args()
    if args.entries is None:
        args.entries = 200 if args.smoke else 3000
    if args.entries <= 0 or args.threads <= 0 or args.entries < args.threads:
        sys.exit("--entries and --threads must be positive, with at least one entry per thread")
    if args.child:
        print(json.dumps(measure(args.entries, args.threads)))
        return 0
    if args.smoke:
        set_smoke_tag()
    verdict = Verdict("audit_append", smoke=args.smoke)
    verdict.conditions(
        "both warm: plain INSERTs then chained appends in the same fresh process per "
        "database, after migrate, each append committed on its own"
    )
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    for database in databases:
        r = run_child(database, args)
        print(
            f"{r['database']:<10} {r['entries']} entries, {r['threads']} thread(s): "
            f"audit {r['audit_per_s']:,.0f}/s, plain INSERT {r['plain_per_s']:,.0f}/s, "
            f"ratio {r['audit_per_s'] / r['plain_per_s']:.2f} (no target set)"
        )
        verdict.check(
            f"{database} chain verifies and holds every append",
            r["chain_ok"] and r["chain_count"] == args.entries,
            f"{'verified' if r['chain_ok'] else 'BROKEN'}, "
            f"{r['chain_count']} entries of {args.entries} appended",
        )
    return verdict.finish()


if __name__ == "__main__":
    sys.exit(main())
