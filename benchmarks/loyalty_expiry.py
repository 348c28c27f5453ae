"""Benchmark: the nightly points expiry against a bare UPDATE of the same rows.

    python benchmarks/loyalty_expiry.py [--members 1000000] [--entries-per-member 20]
        [--database sqlite|postgresql] [--smoke]

Builds a scratch database (SQLite in a temporary directory, or a PostgreSQL database of its
own) with members, each holding --entries-per-member grants of which about half are past
their expiry, then times ``kequn.loyalty.services.expire_points`` (lock the members, one
expire entry per member, one allocation per grant, the stored balance, the grants zeroed,
one audit entry per range) against the reference: one bare ``UPDATE ... SET remaining = 0``
of the same overdue grants (rolled back), the least any expiry must do. Both run warm in this
one process, the reference first. Target: 1,000,000 members and 20,000,000 entries under
60 s on PostgreSQL; a smaller run extrapolates linearly from its own time (both steps are
set-based range scans, linear in the rows) and prints that estimate beside the measured one.
Checks: the expired points equal those generated as overdue, every stored balance equals its
ledger (``kequn loyalty reconcile``'s check), a second run expires nothing.
--smoke: 300 members × 10 entries, outputs checked, target not judged.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import timedelta

from _verdict import Verdict, bench_tag, set_smoke_tag

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
TARGET_SECONDS = 60.0
TARGET_MEMBERS, TARGET_ENTRIES = 1_000_000, 20_000_000


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
        name = f"kequn_bench_loyalty{bench_tag()}".lower()
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


def generate(members: int, per_member: int, seed: int = 7) -> int:
    """Write the members and their grants; return the overdue points."""
    from django.db import transaction
    from django.utils import timezone

    from kequn.customers.models import Customer
    from kequn.loyalty.models import LedgerEntry, Member

    rng = random.Random(seed)
    now = timezone.now()
    overdue_points = 0
    batch = 2000
    for start in range(0, members, batch):
        count = min(batch, members - start)
        with transaction.atomic():
            customers = Customer.objects.bulk_create(
                [Customer(name=f"m{start + i}") for i in range(count)]
            )
            rows, member_rows = [], []
            for customer in customers:
                balance = 0
                for j in range(per_member):
                    points = rng.randrange(1, 500)
                    late = rng.random() < 0.5
                    expires = (
                        now - timedelta(days=rng.randrange(1, 300))
                        if late
                        else now + timedelta(days=rng.randrange(1, 300))
                    )
                    overdue_points += points if late else 0
                    balance += points
                    rows.append(
                        LedgerEntry(
                            member_id=customer.pk,
                            kind="earn",
                            points=points,
                            key=f"g:{customer.pk}:{j}",
                            created_at=now,
                            available_at=now,
                            expires_at=expires,
                            remaining=points,
                        )
                    )
                member_rows.append(
                    Member(
                        customer_id=customer.pk, balance=balance, referral_code=f"R{customer.pk}"
                    )
                )
            Member.objects.bulk_create(member_rows)
            LedgerEntry.objects.bulk_create(rows, batch_size=5000)
    return overdue_points


def time_reference() -> float:
    """Time the bare UPDATE of the overdue grants (rolled back)."""
    from django.db import connection, transaction
    from django.utils import timezone

    start = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE loyalty_ledgerentry SET remaining = 0 WHERE remaining > 0 AND expires_at <= %s",
            [timezone.now()],
        )
        transaction.set_rollback(True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--entries-per-member", type=int, default=20)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        set_smoke_tag()
        args.members, args.entries_per_member = 300, 10
    verdict = Verdict("loyalty_expiry", smoke=args.smoke)
    with tempfile.TemporaryDirectory() as tmp:
        name = setup_database(args.database, tmp)
        try:
            run(args, verdict)
        finally:
            from django.db import connections

            connections.close_all()
            if name:
                psql(f"DROP DATABASE IF EXISTS {name}")
    return verdict.finish()


def run(args: argparse.Namespace, verdict: Verdict) -> None:
    from kequn.loyalty import selectors, services
    from kequn.security.actors import system_actor

    entries = args.members * args.entries_per_member
    started = time.perf_counter()
    overdue = generate(args.members, args.entries_per_member)
    print(
        f"generated {args.members:,} members, {entries:,} entries in "
        f"{time.perf_counter() - started:.1f} s on {args.database}",
        flush=True,
    )
    verdict.conditions(
        f"{args.database}, warm, one process; the reference (a bare UPDATE of "
        "the overdue grants, rolled back) runs first"
    )
    reference = time_reference()
    by = system_actor("benchmark")
    started = time.perf_counter()
    result = services.expire_points(by=by)
    elapsed = time.perf_counter() - started
    scale = max(TARGET_ENTRIES / entries, TARGET_MEMBERS / args.members)
    print(
        f"expiry: {elapsed:.2f} s ({result.members:,} members, {result.grants:,} grants, "
        f"{result.points:,} points); reference UPDATE {reference:.2f} s; ratio "
        f"{elapsed / reference if reference else float('inf'):.1f}x",
        flush=True,
    )
    estimate = elapsed * scale
    verdict.target(
        f"expiry of {TARGET_MEMBERS:,} members / {TARGET_ENTRIES:,} entries < {TARGET_SECONDS:.0f} s",
        estimate < TARGET_SECONDS and args.database == "postgresql",
        f"{elapsed:.2f} s measured at {args.members:,} / {entries:,}, {estimate:.0f} s extrapolated "
        f"linearly (×{scale:.0f}) on {args.database}",
    )
    verdict.check("expired points", result.points == overdue, f"{result.points:,} of {overdue:,}")
    differences = list(selectors.find_differences())
    verdict.check(
        "balances equal the ledger", not differences, f"{len(differences)} members differ"
    )
    again = services.expire_points(by=by)
    verdict.check("a second run expires nothing", again.points == 0, f"{again.points} points")


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
    sys.exit(main())
