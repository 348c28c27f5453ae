"""Measure the customer-list export (CSV and Excel): rows per second and memory held.

Usage (a private PostgreSQL database; --fill replaces its customers with synthetic ones):
    KEQUN_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/kequn_bench_export \
        python benchmarks/list_export.py --customers 200000 --fill

The export reads customers in id batches and writes rows as they come. The reference,
measured in the same run on the same rows, builds the same rows into a list first (what an
export that loads the whole list would hold). Memory is the peak of Python allocations
(tracemalloc) while the rows are produced; time is measured in a separate pass without it.
All passes run warm, one after another in the same process (the timed pass first, after
migrate). Target: the streamed export holds less memory than the loaded-first reference
(the point of streaming). Exit status 1 when it does not, or when an export does not write
exactly the customers in the database. --smoke: 2,000 synthetic customers in a scratch
SQLite database of its own, target not judged.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from collections import deque

from _verdict import Verdict

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kequn.settings")


def fill(customers: int) -> None:
    """Replace the customers with synthetic ones, each with a phone and an email."""
    from django.db import connection
    from tqdm import tqdm

    from kequn.customers.models import Customer, Identity

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("TRUNCATE customers_customer RESTART IDENTITY CASCADE")
        else:
            Customer.objects.all().delete()
    batch = 5_000
    for start in tqdm(range(0, customers, batch), desc="customers", unit_scale=batch):
        made = Customer.objects.bulk_create(
            [
                Customer(name=f"客户 {n}", province="广东", city="深圳")
                for n in range(start, min(start + batch, customers))
            ]
        )
        Identity.objects.bulk_create(
            [
                identity
                for c in made
                for identity in (
                    Identity(customer=c, kind="phone", value=f"+86138{c.pk:08d}"),
                    Identity(customer=c, kind="email", value=f"c{c.pk}@example.com"),
                )
            ]
        )


def run(streamed: bool, fmt: str, user, measure_memory: bool) -> tuple[int, float, int]:
    """Produce the export once; return (rows, seconds, peak bytes or 0)."""
    from kequn.customers.models import Customer
    from kequn.dashboard import list_export

    spec = list_export.get_exportable("customers.customer")
    count = list_export.ExportCount()
    if measure_memory:
        tracemalloc.start()
    started = time.perf_counter()
    rows = list_export.iter_masked_rows(user, spec, Customer.objects.all(), count)
    if not streamed:
        rows = iter(list(rows))  # the reference: every row in memory before writing
    if fmt == "csv":
        deque(list_export.stream_csv(spec.columns, rows), maxlen=0)  # sent and forgotten
    else:
        list_export.write_xlsx("customers", spec.columns, rows).close()
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] if measure_memory else 0
    if measure_memory:
        tracemalloc.stop()
    return count.rows, seconds, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--fill", action="store_true", help="load synthetic customers first")
    parser.add_argument("--formats", default="csv,xlsx", help="comma-separated: csv, xlsx")
    parser.add_argument("--smoke", action="store_true", help="a small run in a scratch database")
    args = parser.parse_args()
    if args.customers <= 0:
        parser.error("--customers must be positive")
    if args.smoke:
        # Never fill the database the environment points at: a scratch SQLite file of its own.
        os.environ["KEQUN_DATA_DIR"] = tempfile.mkdtemp(prefix="kequn-bench-export-")
        os.environ.pop("KEQUN_DATABASE_URL", None)
        args.customers, args.fill = 2_000, True
    verdict = Verdict("list_export", smoke=args.smoke)
    verdict.conditions("all passes warm, one after another in this process")

    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection

    from kequn.customers.models import Customer

    call_command("migrate", verbosity=0)
    if args.fill:
        fill(args.customers)
    # Not a superuser and no unmasking permission: personal fields are masked.
    user, _ = User.objects.get_or_create(username="bench-marketing")
    print(f"database: {connection.vendor}")
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = set(formats) - {"csv", "xlsx"}
    if unknown:
        parser.error(f"--formats: unknown format {', '.join(sorted(unknown))}; use csv, xlsx")
    expected = Customer.objects.count()
    for fmt in formats:
        rows, seconds, _ = run(True, fmt, user, measure_memory=False)
        streamed_rows, _, peak = run(True, fmt, user, measure_memory=True)
        ref_rows, _, ref_peak = run(False, fmt, user, measure_memory=True)
        verdict.check(f"{fmt}: every export writes every customer",
                      rows == streamed_rows == ref_rows == expected > 0,
                      f"{rows:,}, {streamed_rows:,}, {ref_rows:,} rows of {expected:,}")  # fmt: skip
        verdict.target(f"{fmt}: streamed peak below the loaded-first peak", peak < ref_peak,
                       f"{peak / 2**20:.1f} vs {ref_peak / 2**20:.1f} MiB")  # fmt: skip
        print(
            f"{fmt}: {rows:,} rows in {seconds:.1f} s ({rows / seconds:,.0f} rows/s); "
            f"peak Python memory {peak / 2**20:.1f} MiB streamed vs {ref_peak / 2**20:.1f} MiB "
            f"with the rows loaded first (reference {ref_peak / max(peak, 1):.1f}x)"
        )
    return verdict.finish()


if __name__ == "__main__":
    sys.exit(main())
