"""Benchmark: the ticket list, filtered and sorted, over 1,000,000 tickets on PostgreSQL.

Run: python benchmarks/service_ticket_list.py [--tickets 1000000] [--runs 5] [--keep] [--smoke]
Creates the scratch database kequn_bench_tickets (KEQUN_BENCH_DB), migrates it, loads
synthetic customers and tickets with COPY, then times the pages agents and the API ask for
(first page of 50, through the same selectors and paging code as /api/v1/tickets and the
back office) against the same queries with index scans switched off (the reference: what
the list would cost without the ticket indexes), in the same session.
Both warm: each query is the median of --runs runs, one after another.
Target: every page under 300 ms. Exit 1 on a missed target or when a page's rows differ
from the reference's. --smoke: 20,000 tickets, one run.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import psycopg
from _verdict import Verdict, set_smoke_tag

SERVER = os.environ.get("KEQUN_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
DB = os.environ.get("KEQUN_BENCH_DB", "kequn_bench_tickets")
TARGET_SECONDS = 0.300


def recreate_database() -> None:
    global DB
    if os.environ.get("KEQUN_BENCH_TAG") and "KEQUN_BENCH_DB" not in os.environ:
        DB = f"kequn_bench_tickets_{os.environ['KEQUN_BENCH_TAG']}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")


def drop_database() -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


def copy_frame(cursor, table: str, frame: pd.DataFrame) -> None:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False, na_rep="\\N")
    buffer.seek(0)
    columns = ", ".join(frame.columns)
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv, NULL '\\N')") as copy:
        while chunk := buffer.read(1 << 20):
            copy.write(chunk)


def load(n: int, now: datetime) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from kequn.service.models import Queue

    rng = np.random.default_rng(7)
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"agent{i}", is_staff=True) for i in range(50)]
    )
    queues = Queue.objects.bulk_create([Queue(name=f"queue {i}") for i in range(10)])
    n_customers = max(n // 5, 1)
    customers = pd.DataFrame(
        {
            "id": np.arange(1, n_customers + 1),
            "kind": "person", "name": [f"客户{i}" for i in range(n_customers)], "gender": "",
            "age_band": "", "income_band": "", "occupation": "", "industry": "",
            "country": "CN", "province": "", "city": "上海", "preferred_language": "",
            "source_channel": "", "external_ref": "",
            "created_at": now.isoformat(), "updated_at": now.isoformat(),
        }
    )  # fmt: skip
    # Most tickets are old and closed; a tenth still need work.
    status = rng.choice(
        ["closed", "resolved", "open", "new", "waiting", "reopened"],
        n,
        p=[0.75, 0.15, 0.05, 0.025, 0.02, 0.005],
    )
    opened = now - pd.to_timedelta(rng.integers(0, 3 * 365 * 24 * 60, n), unit="min")
    is_open = np.isin(status, ["open", "new", "reopened"])
    due = opened + pd.to_timedelta(rng.integers(60, 5 * 24 * 60, n), unit="min")
    tickets = pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "customer_id": rng.integers(1, n_customers + 1, n),
            "subject": [f"问题 {i}" for i in range(n)],
            "type": rng.choice(["complaint", "inquiry", "return", "suggestion"], n),
            "priority": rng.choice(
                ["low", "normal", "high", "urgent"], n, p=[0.2, 0.6, 0.15, 0.05]
            ),
            "status": status,
            "source": rng.choice(["phone", "email", "store", "api"], n),
            "queue_id": np.array([q.pk for q in queues])[rng.integers(0, 10, n)],
            "assignee_id": np.array([u.pk for u in users])[rng.integers(0, 50, n)],
            "from_address": "",
            "opened_at": opened.strftime("%Y-%m-%d %H:%M:%S+00"),
            "resolution_due": due.strftime("%Y-%m-%d %H:%M:%S+00"),
            "next_due": np.where(is_open, due.strftime("%Y-%m-%d %H:%M:%S+00"), None),
            "paused_minutes": 0.0,
            "sla_state": np.where(is_open, "ok", ""),
            "created_at": now.isoformat(),
            "updated_at": now.isoformat(),
        }
    )
    with connection.cursor() as cursor:
        raw = cursor.connection.cursor()
        for table, frame in [("customers_customer", customers), ("service_ticket", tickets)]:
            start = time.perf_counter()
            copy_frame(raw, table, frame)
            print(
                f"  COPY {table:<20} {len(frame):>10,} rows  {time.perf_counter() - start:6.1f} s"
            )
        cursor.execute("SELECT setval('customers_customer_id_seq', %s)", [n_customers])
        cursor.execute("SELECT setval('service_ticket_id_seq', %s)", [n])
        cursor.execute("VACUUM ANALYZE")


def median_of(fn, runs: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(runs):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=None, help="default 1,000,000")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per page (median)")
    parser.add_argument("--smoke", action="store_true", help="a small run for CI")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    if args.smoke:
        set_smoke_tag()
        args.keep = False
    args.tickets = args.tickets or (20_000 if args.smoke else 1_000_000)
    args.runs = args.runs or (1 if args.smoke else 5)
    verdict = Verdict("service_ticket_list", smoke=args.smoke)
    verdict.conditions(
        f"all warm: each page timed {args.runs} time(s) in one session, median kept; "
        "reference = the same query with index scans off"
    )
    recreate_database()
    os.environ["KEQUN_DATABASE_URL"] = f"{SERVER}/{DB}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kequn.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from kequn.apiutils import paginate
    from kequn.security.actors import system_actor
    from kequn.security.permissions import scope_customers
    from kequn.service.models import Ticket
    from kequn.service.selectors import SORTS, filter_tickets

    try:
        now = datetime.now(UTC)
        call_command("migrate", verbosity=0)
        print(f"loading {args.tickets:,} tickets into {DB} ...")
        load(args.tickets, now)
        viewer = system_actor("benchmark")
        base = scope_customers(viewer, Ticket.objects.select_related("sla_policy"), "customer")
        agent = Ticket.objects.values_list("assignee_id", flat=True).first()
        queue = Ticket.objects.values_list("queue_id", flat=True).first()
        first_page = paginate(filter_tickets(base, queue_id=queue, is_open=True), None, 50)
        second_page = first_page["next_cursor"] or str(2**62)
        pages = {
            "API: open high-priority, newest id first": lambda: paginate(
                filter_tickets(base, status="open", priority="high"), None, 50
            )["items"],
            "API: one queue's open tickets, page 2": lambda: paginate(
                filter_tickets(base, queue_id=queue, is_open=True), second_page, 50
            )["items"],
            "agent's work: open, soonest deadline first": lambda: list(
                filter_tickets(base, assignee_id=agent, is_open=True).order_by(*SORTS["next_due"])[
                    :50
                ]
            ),
            "back office: complaints by newest opened": lambda: list(
                filter_tickets(base, type="complaint", status="new").order_by(*SORTS["-opened_at"])[
                    :50
                ]
            ),
            "back office: every ticket, newest opened": lambda: list(
                base.order_by(*SORTS["-opened_at"])[:50]
            ),
        }
        for label, fetch in pages.items():
            elapsed, rows = median_of(lambda fetch=fetch: [t.pk for t in fetch()], args.runs)

            def without_indexes(fetch=fetch) -> list[int]:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute("SET LOCAL enable_indexscan = off")
                    cursor.execute("SET LOCAL enable_bitmapscan = off")
                    cursor.execute("SET LOCAL enable_indexonlyscan = off")
                    return [t.pk for t in fetch()]

            ref_elapsed, ref_rows = median_of(without_indexes, max(1, min(args.runs, 3)))
            print(
                f"  {label:<46} {elapsed * 1000:8.1f} ms   reference {ref_elapsed * 1000:8.1f} ms"
                f"   x{ref_elapsed / max(elapsed, 1e-9):6.1f}   {len(rows)} rows"
            )
            verdict.check(
                f"{label}: rows equal the reference's", rows == ref_rows, f"{len(rows)} rows"
            )
            verdict.target(
                f"{label} under {TARGET_SECONDS * 1000:.0f} ms",
                elapsed < TARGET_SECONDS,
                f"{elapsed * 1000:.1f} ms at {args.tickets:,} tickets",
            )
        verdict.check(
            "the tickets are all there",
            Ticket.objects.count() == args.tickets,
            f"{Ticket.objects.count():,}",
        )
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database()
    return verdict.finish()


if __name__ == "__main__":
    sys.exit(main())
