"""Benchmark: the daily birthday and first-purchase-anniversary triggers over 1,000,000 customers.

Run: python benchmarks/journey_dates.py [--customers 1000000] [--changed-percent 1]
     [--database-url postgresql://...] [--smoke]
Migrates a scratch database (SQLite in a temporary data directory, or the empty database
named by --database-url), bulk-loads customers with encrypted birthdays (80 % have one) and
one order for 70 % of them, then builds the per-customer day index once (every birthday
decrypted: the reference, what evaluating the trigger without the index costs every day).
A day's changes are simulated (--changed-percent of the customers get a new birthday), and
the timed run is the daily one: sync of the changed birthdays, the birthday lookup three
days ahead, the anniversary lookup for today, and the enrolment of everyone found into two
active journeys. Both warm (one process, one after another).
Target: the daily run under 10 s. Exit 1 when it misses the target or when the customers
enrolled differ from the ones computed from the generated data. --smoke: 3,000 customers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from _verdict import Verdict, set_smoke_tag

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--changed-percent", type=float, default=1.0)
    parser.add_argument("--database-url", default="", help="an empty database (default: SQLite)")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.customers = 3_000
        set_smoke_tag()
    if args.customers < 100:
        parser.error("--customers: at least 100")
    return args


def setup_django(database_url: str) -> None:
    os.environ["KEQUN_DATA_DIR"] = tempfile.mkdtemp(prefix="kequn-journey-dates-")
    if database_url:
        os.environ["KEQUN_DATABASE_URL"] = database_url
    else:
        os.environ.pop("KEQUN_DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kequn.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def celebrated(month: np.ndarray, day: np.ndarray, target: date) -> np.ndarray:
    """Return which (month, day) are celebrated on target (29 Feb on the 28th in other years)."""
    hit = (month == target.month) & (day == target.day)
    leap = target.year % 4 == 0 and (target.year % 100 != 0 or target.year % 400 == 0)
    if (target.month, target.day) == (2, 28) and not leap:
        hit |= (month == 2) & (day == 29)
    return hit


def main() -> int:
    args = parse_args()
    verdict = Verdict("journey_dates", smoke=args.smoke)
    setup_django(args.database_url)

    from django.db import connection
    from django.utils import timezone

    from kequn.commerce.models import Order
    from kequn.customers.models import Customer
    from kequn.db.writes import insert_columns
    from kequn.journeys import triggers
    from kequn.journeys.models import Enrollment, RunnerCursor
    from kequn.journeys.services import create_journey
    from kequn.security.actors import system_actor
    from kequn.security.keyring.services import encrypt_many

    by = system_actor("benchmark")
    n = args.customers
    rng = np.random.default_rng(16)
    now = timezone.now()
    day_run = now + timedelta(minutes=10)
    # The day the daily run sees: ten minutes on can be tomorrow when the run starts near
    # midnight, so the checks take the run's date, not the load's.
    today = timezone.localtime(day_run).date()
    verdict.conditions(
        f"{connection.vendor}, {n:,} customers; both warm, one process: the reference "
        "(every birthday decrypted) and the daily run one after another"
    )

    # ---- load: customers with encrypted birthdays, one order for 70 % of them
    started = time.perf_counter()
    base = np.datetime64("1950-01-01")
    birthdays = base + rng.integers(0, 55 * 365, n).astype("timedelta64[D]")
    has_birthday = rng.random(n) < 0.8
    purpose = Customer._meta.get_field("birthday").purpose
    ids: list[int] = []
    chunk = 50_000
    for start in range(0, n, chunk):
        part = slice(start, min(start + chunk, n))
        iso = [str(d) for d in birthdays[part]]
        stored = encrypt_many(purpose, iso)
        stored = [s if h else None for s, h in zip(stored, has_birthday[part], strict=True)]
        years = [int(d[:4]) if h else None for d, h in zip(iso, has_birthday[part], strict=True)]
        ids += (
            insert_columns(
                Customer,
                {
                    "name": [f"客户{i}" for i in range(part.start, part.stop)],
                    "birthday": stored,
                    "birth_year": years,
                },
                fixed={
                    "kind": "person",
                    "gender": "",
                    "age_band": "",
                    "income_band": "",
                    "occupation": "",
                    "industry": "",
                    "country": "CN",
                    "province": "",
                    "city": "",
                    "preferred_language": "",
                    "source_channel": "bench",
                    "external_ref": "",
                    "processing_restricted": False,
                    "created_at": now - timedelta(days=800),
                    "updated_at": now - timedelta(days=2),
                },
                return_ids=True,
            )
            or []
        )
    ids_array = np.array(ids)
    buyers = rng.random(n) < 0.7
    # First purchases over the last three years, whole seconds in UTC.
    seconds = rng.integers(0, 3 * 365 * 86400, n)
    firsts = [now - timedelta(seconds=int(s)) for s in seconds]
    ordered_at = Order._meta.get_field("ordered_at")
    buyer_index = np.flatnonzero(buyers)
    for start in range(0, len(buyer_index), chunk):
        rows = buyer_index[start : start + chunk]
        insert_columns(
            Order,
            {
                "number": [f"B{i}" for i in rows],
                "customer": [ids[i] for i in rows],
                "ordered_at": [ordered_at.get_db_prep_save(firsts[i], connection) for i in rows],
            },
            fixed={
                "status": "completed",
                "currency": "CNY",
                "total_amount": 99,
                "discount_amount": 0,
            },
        )
    print(
        f"loaded {n:,} customers and {len(buyer_index):,} orders in {time.perf_counter() - started:.1f} s",
        flush=True,
    )

    # ---- the reference: every birthday decrypted (what the day index spares every day)
    started = time.perf_counter()
    triggers.sync_birthdays(since=None, now=now)
    triggers.build_first_purchases(now=now)
    reference = time.perf_counter() - started
    RunnerCursor.objects.update_or_create(name="first_purchases_built", defaults={"moment": now})
    RunnerCursor.objects.update_or_create(name="birthdays", defaults={"moment": now})
    RunnerCursor.objects.update_or_create(
        name="dates", defaults={"moment": now - timedelta(days=1)}
    )

    # ---- a day's changes: new birthdays for some customers
    changed = rng.choice(n, max(1, int(n * args.changed_percent / 100)), replace=False)
    new_days = base + rng.integers(0, 55 * 365, len(changed)).astype("timedelta64[D]")
    later = now + timedelta(minutes=5)
    objects = []
    for index, day in zip(changed, new_days, strict=True):
        birthdays[index] = day
        has_birthday[index] = True
        objects.append(
            Customer(pk=ids[index], birthday=date.fromisoformat(str(day)), updated_at=later)
        )
    Customer.objects.bulk_update(objects, ["birthday", "updated_at"], batch_size=2000)

    birthday_journey = create_journey(
        name="birthday in three days",
        trigger_kind="birthday",
        trigger_config={"days_before": 3},
        steps=[{"id": "w", "kind": "wait", "config": {"days": 1}}],
        activate=True,
        by=by,
    )
    anniversary_journey = create_journey(
        name="first-purchase anniversary",
        trigger_kind="first_purchase_anniversary",
        steps=[{"id": "w", "kind": "wait", "config": {"days": 1}}],
        activate=True,
        by=by,
    )

    # ---- the daily run
    started, cpu_started = time.perf_counter(), time.process_time()
    entered = triggers.run_daily(now=day_run, by=by, force=True)
    daily = time.perf_counter() - started
    daily_cpu = time.process_time() - cpu_started  # this process only (not the database server)

    # ---- checks against the generated data
    target = today + timedelta(days=3)
    days = birthdays.astype("datetime64[D]").astype(object)
    months = np.array([d.month for d in days])
    mdays = np.array([d.day for d in days])
    expected_birthdays = set(ids_array[has_birthday & celebrated(months, mdays, target)].tolist())
    local_firsts = [timezone.localtime(f).date() for f in firsts]
    f_month = np.array([d.month for d in local_firsts])
    f_day = np.array([d.day for d in local_firsts])
    f_year = np.array([d.year for d in local_firsts])
    expected_anniversaries = set(
        ids_array[buyers & celebrated(f_month, f_day, today) & (f_year < today.year)].tolist()
    )
    got_birthdays = set(
        Enrollment.objects.filter(journey=birthday_journey).values_list("customer_id", flat=True)
    )
    got_anniversaries = set(
        Enrollment.objects.filter(journey=anniversary_journey).values_list("customer_id", flat=True)
    )
    verdict.check(
        "birthdays",
        got_birthdays == expected_birthdays,
        f"{len(got_birthdays):,} enrolled, {len(expected_birthdays):,} born on "
        f"{target:%m-%d} in the data",
    )
    verdict.check(
        "anniversaries",
        got_anniversaries == expected_anniversaries,
        f"{len(got_anniversaries):,} enrolled, {len(expected_anniversaries):,} first bought "
        f"on {today:%m-%d} of an earlier year",
    )
    verdict.check(
        "entered",
        entered == len(expected_birthdays) + len(expected_anniversaries),
        f"run_daily reported {entered:,}",
    )
    print(
        f"reference (every birthday decrypted, first purchases built): {reference:.2f} s\n"
        f"daily run ({len(changed):,} changed birthdays synced, both lookups, "
        f"{entered or 0:,} enrolled): {daily:.2f} s ({daily_cpu:.2f} s CPU in this process); "
        f"ratio reference/daily {reference / daily:.1f}x; load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    verdict.target("daily run < 10 s", daily < 10, f"{daily:.2f} s at {n:,} customers")
    return verdict.finish()


if __name__ == "__main__":
    try:
        status = main()
    finally:
        data_dir = os.environ.get("KEQUN_DATA_DIR", "")
        if "kequn-journey-dates-" in data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)
    sys.exit(status)
