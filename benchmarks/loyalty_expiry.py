"""Benchmark: the nightly points expiry against a bare UPDATE of the same rows.

    python benchmarks/loyalty_expiry.py [--members 1000000] [--entries-per-member 20]
        [--database sqlite|postgresql] [--smoke]

Builds a scratch database (SQLite in a temporary directory, or a PostgreSQL database of its
own) with members, each holding --entries-per-member grants of which about half are past
their expiry, then times ``kequn.loyalty.services.expire_points`` (lock the members, one
expire entry per member, the stored balances and the members' expiry marks; no grant row is
written; one audit entry per range) against the reference: one bare
``UPDATE ... SET remaining = 0`` of the same overdue grants (rolled back), what an expiry
that rewrites the grants costs at least. Both run warm in this one process, the reference
first; the dead row versions its rollback leaves are vacuumed away (as autovacuum would)
before the expiry is timed. Target: 1,000,000 members and 20,000,000 entries under 60 s on
PostgreSQL; a smaller run extrapolates linearly from its own time (both steps are set-based
range scans, linear in the rows) and prints that estimate beside the measured one.
Checks: the expired points equal those generated as overdue, every stored balance equals its
ledger (``kequn loyalty reconcile``'s check), a second run expires nothing.
--smoke: 300 members × 10 entries, outputs checked, target not judged.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

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


def _customer_columns(connection, now) -> tuple[list[str], list[str], list[object]]:
    """Return the customer table's columns, their SQL (name per row) and the bound defaults."""
    from django.db import models

    from kequn.customers.models import Customer

    columns, sql, params = [], [], []
    for field in Customer._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(field.column)
        if field.name == "name":
            sql.append("'m' || CAST(s.i AS TEXT)")
            continue
        value = field.get_default() if field.has_default() else None
        if value is None and not field.null:
            if isinstance(field, models.DateTimeField):
                value = now
            elif isinstance(field, models.BooleanField):
                value = False
            else:
                value = ""
        params.append(field.get_db_prep_save(value, connection))
        cast = field.db_type(connection) if connection.vendor == "postgresql" else None
        sql.append(f"CAST(%s AS {cast})" if cast else "%s")
    return columns, sql, params


def series(connection, count: int) -> str:
    """Return a FROM item of the numbers 1..count as s(i) (no rows travel from Python)."""
    if connection.vendor == "postgresql":
        return f"generate_series(1, {int(count)}) AS s(i)"
    return (
        "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "  # noqa: S608 -- an int
        f"WHERE i < {int(count)}) SELECT i FROM n) AS s"
    )


def shift_days(connection, days_sql: str) -> str:
    """Return SQL of the bound moment (first parameter) moved by `days_sql` days."""
    if connection.vendor == "postgresql":
        return f"(CAST(%s AS timestamptz) + ({days_sql}) * INTERVAL '1 day')"
    return f"strftime('%%Y-%%m-%%d %%H:%%M:%%f', %s, ({days_sql}) || ' days')"


def generate(members: int, per_member: int, overdue_share: float) -> int:
    """Write the members and their grants with INSERT … SELECT; return the overdue points.

    Points, expiry and which grants are overdue follow from the ids (reproducible). On
    PostgreSQL the ledger's secondary indexes are dropped for the load and built after it,
    and foreign-key triggers are off during it (the rows are generated consistent); then
    VACUUM ANALYZE leaves the tables as autovacuum would.
    """
    from django.db import connection, transaction
    from django.utils import timezone

    now = timezone.now()
    bound = (
        now if connection.vendor == "postgresql" else connection.ops.adapt_datetimefield_value(now)
    )
    pg = connection.vendor == "postgresql"
    late_per_mille = round(overdue_share * 1000)
    with connection.cursor() as cursor:
        indexes: list[tuple[str, str]] = []
        if pg:
            cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'loyalty_ledgerentry' "
                "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
            )
            indexes = list(cursor.fetchall())
            for name, _definition in indexes:
                cursor.execute(f"DROP INDEX {name}")
            cursor.execute("SET session_replication_role = replica")
        with transaction.atomic():
            columns, sql, params = _customer_columns(connection, now)
            cursor.execute(
                f"INSERT INTO customers_customer ({', '.join(columns)}) "  # noqa: S608
                f"SELECT {', '.join(sql)} FROM {series(connection, members)}",
                params,
            )
            cursor.execute(
                "INSERT INTO loyalty_member (customer_id, tier_id, tier_since, balance, pending, "
                "referral_code, referred_by_id, joined_at) SELECT id, NULL, %s, 0, 0, "
                "'R' || CAST(id AS TEXT), NULL, %s FROM customers_customer",
                [bound, bound],
            )
            points = "(1 + (m.customer_id * 7919 + s.i * 104729) %% 499)"
            days = "(1 + (m.customer_id + s.i) %% 299)"
            late = f"((m.customer_id * 31 + s.i * 17) %% 1000) < {late_per_mille}"
            cursor.execute(
                "INSERT INTO loyalty_ledgerentry (member_id, kind, points, pending, key, reason, "  # noqa: S608 -- our SQL
                "source, order_ref, created_at, created_by, available_at, expires_at, remaining, "
                f"held, expired) SELECT m.customer_id, 'earn', {points}, 0, "
                "'g:' || CAST(m.customer_id AS TEXT) || ':' || CAST(s.i AS TEXT), '', 'order', "
                f"'', %s, '', %s, CASE WHEN {late} THEN {shift_days(connection, '-' + days)} "
                f"ELSE {shift_days(connection, days)} END, {points}, 0, 0 "
                f"FROM loyalty_member m CROSS JOIN {series(connection, per_member)} "
                "ORDER BY m.customer_id, s.i",
                [bound, bound, bound, bound],
            )
            cursor.execute(
                "UPDATE loyalty_member SET balance = t.total FROM (SELECT member_id, "
                "SUM(points) AS total FROM loyalty_ledgerentry GROUP BY member_id) t "
                "WHERE loyalty_member.customer_id = t.member_id"
            )
        if pg:
            cursor.execute("SET session_replication_role = origin")
            for _name, definition in indexes:
                cursor.execute(definition)
            cursor.execute("VACUUM ANALYZE customers_customer")
            cursor.execute("VACUUM ANALYZE loyalty_member")
            cursor.execute("VACUUM ANALYZE loyalty_ledgerentry")
        else:
            cursor.execute("ANALYZE")
        cursor.execute(
            "SELECT COALESCE(SUM(remaining), 0) FROM loyalty_ledgerentry "
            "WHERE remaining > 0 AND expires_at <= %s",
            [bound],
        )
        return int(cursor.fetchone()[0])


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


def vacuum_ledger() -> None:
    """Clear the dead row versions the rolled-back reference left, as autovacuum would."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return  # SQLite rolls back in its journal: no dead rows are left behind
    with connection.cursor() as cursor:
        cursor.execute("VACUUM loyalty_ledgerentry")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--entries-per-member", type=int, default=20)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--overdue-share",
        type=float,
        default=0.5,
        help="share of the grants past their expiry (0.5: a first run or a year-end night)",
    )
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
    overdue = generate(args.members, args.entries_per_member, args.overdue_share)
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
    # The rolled-back UPDATE leaves a dead version of every overdue grant (and an index
    # entry for each in every index); autovacuum clears them long before the next night.
    vacuum_ledger()
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
    print(
        f"rate: {result.grants / elapsed:,.0f} expired grants/s, {entries / elapsed:,.0f} "
        f"ledger entries/s, {args.members / elapsed:,.0f} members/s",
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
