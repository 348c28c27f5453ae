"""Time the dashboard's server-side render from precomputed aggregates against a live scan.

Usage (PostgreSQL, 1M customers and 10M orders):
    KEQUN_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/kequn_bench \
        python benchmarks/dashboard_render.py --customers 1000000 --orders 10000000 --fill

--fill empties the database's customer tables and loads synthetic data, through the demo
generator when it is installed, otherwise through a bulk COPY written here.
The reference, measured in the same run, computes the same numbers from the base tables at
request time (what the page would cost without the aggregate tables). Both run warm: the
page is timed after one untimed render, the live scan after refresh_dashboard() has run the
same scan once. Target: under 1 s of server time per page. Exit status 1 when the target is
missed, a page does not answer 200, or the live scan disagrees with the stored aggregates.
--smoke: 300 demo customers in a scratch SQLite database of its own, target not judged.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from _verdict import Verdict

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kequn.settings")

PROVINCES = {
    "广东": ["广州", "深圳", "东莞", "佛山"],
    "北京": ["北京"],
    "上海": ["上海"],
    "浙江": ["杭州", "宁波", "温州"],
    "江苏": ["南京", "苏州", "无锡"],
    "四川": ["成都", "绵阳"],
    "湖北": ["武汉", "宜昌"],
    "山东": ["济南", "青岛", "烟台"],
}
CHANNELS = [
    ("online", "Online shop", "online"),
    ("app", "App", "app"),
    ("tmall", "Tmall", "marketplace"),
    ("jd", "JD", "marketplace"),
    ("sz-01", "Shenzhen store", "store"),
    ("bj-01", "Beijing store", "store"),
    ("sh-01", "Shanghai store", "store"),
    ("gz-01", "Guangzhou store", "store"),
]
STAGES = ["new", "active", "loyal", "at_risk", "churned", "reactivated"]
SEGMENTS = [
    "champions",
    "loyal_customers",
    "potential_loyalists",
    "new_customers",
    "promising",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "cant_lose_them",
    "hibernating",
]


def copy_frame(cursor, table: str, frame: pd.DataFrame) -> None:
    """Stream a frame into a table with COPY."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False, na_rep="\\N")
    buffer.seek(0)
    columns = ", ".join(frame.columns)
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv, NULL '\\N')") as copy:
        while block := buffer.read(1 << 20):
            copy.write(block)


def fill_with_copy(n_customers: int, n_orders: int, seed: int, now: datetime) -> None:
    """Load synthetic customers, orders, scores and stage history with COPY (PostgreSQL)."""
    from django.db import connection

    from kequn.commerce.models import Channel

    rng = np.random.default_rng(seed)
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE scoring_stagechange, scoring_customerscore, commerce_orderline, "
            "commerce_order, customers_customer RESTART IDENTITY CASCADE"
        )
    Channel.objects.all().delete()
    channels = [Channel.objects.create(code=c, name=n, kind=k) for c, n, k in CHANNELS]
    channel_ids = np.array([c.pk for c in channels])
    provinces = list(PROVINCES)
    cities = [(p, c) for p in provinces for c in PROVINCES[p]]
    start = now - timedelta(days=3 * 365)
    span = (now - start).total_seconds()
    connection.ensure_connection()
    raw = connection.connection

    print(f"  customers: {n_customers:,}", file=sys.stderr)
    city_idx = rng.integers(0, len(cities), n_customers)
    created = pd.to_datetime(start) + pd.to_timedelta(
        np.sort(rng.random(n_customers)) * span, unit="s"
    )
    customers = pd.DataFrame(
        {
            "id": np.arange(1, n_customers + 1),
            "kind": "person",
            "name": [f"客户{i}" for i in range(1, n_customers + 1)],
            "gender": "",
            "age_band": "",
            "income_band": "",
            "occupation": "",
            "industry": "",
            "country": "CN",
            "province": [cities[i][0] for i in city_idx],
            "city": [cities[i][1] for i in city_idx],
            "preferred_language": "",
            "source_channel": "",
            "external_ref": "",
            "created_at": created.strftime("%Y-%m-%d %H:%M:%S+00"),
            "updated_at": created.strftime("%Y-%m-%d %H:%M:%S+00"),
        }
    )
    with raw.cursor() as cursor:
        copy_frame(cursor, "customers_customer", customers)
    raw.commit()
    created_s = (created - pd.Timestamp(start)).total_seconds().to_numpy()

    # One customer in five never buys; buyers' order counts are skewed (a few buy a lot).
    buyers = rng.random(n_customers) < 0.8
    weights = np.where(buyers, rng.gamma(0.8, 1.0, n_customers), 0.0)
    weights /= weights.sum()
    chunk = 1_000_000
    done = 0
    while done < n_orders:
        size = min(chunk, n_orders - done)
        cust = rng.choice(n_customers, size=size, p=weights)
        offset = created_s[cust] + rng.random(size) * (span - created_s[cust])
        ts = pd.to_datetime(start) + pd.to_timedelta(offset, unit="s")
        status = np.where(rng.random(size) < 0.93, "completed", "cancelled")
        frame = pd.DataFrame(
            {
                "number": [f"B{done + i}" for i in range(size)],
                "customer_id": cust + 1,
                "channel_id": channel_ids[rng.integers(0, len(channel_ids), size)],
                "status": status,
                "currency": "CNY",
                "total_amount": np.round(rng.lognormal(5.5, 1.0, size), 2),
                "discount_amount": 0,
                "ordered_at": ts.strftime("%Y-%m-%d %H:%M:%S+00"),
            }
        )
        with raw.cursor() as cursor:
            copy_frame(cursor, "commerce_order", frame)
        raw.commit()
        done += size
        print(f"  orders: {done:,}/{n_orders:,}", file=sys.stderr)

    print("  scores", file=sys.stderr)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE commerce_order")
        cursor.execute("ANALYZE customers_customer")
        cursor.execute(
            "SELECT customer_id, count(*), sum(total_amount)::float8, max(ordered_at) "
            "FROM commerce_order WHERE status = 'completed' GROUP BY customer_id"
        )
        rows = cursor.fetchall()
    stats = pd.DataFrame(rows, columns=["customer_id", "orders", "revenue", "last"])
    ids = pd.DataFrame({"customer_id": np.arange(1, n_customers + 1)})
    scores = ids.merge(stats, how="left", on="customer_id")
    bought = scores["orders"].notna()
    recency = (pd.Timestamp(now) - pd.to_datetime(scores["last"], utc=True)).dt.days
    n = len(scores)
    scores["computed_at"] = now.strftime("%Y-%m-%d %H:%M:%S+00")
    scores["orders"] = scores["orders"].fillna(0).astype(int)
    scores["revenue"] = scores["revenue"].fillna(0.0)
    scores["recency_days"] = recency.astype("Int64")
    for col in ("r_score", "f_score", "m_score"):
        scores[col] = pd.array(np.where(bought, rng.integers(1, 6, n), 0), dtype="Int64")
        scores.loc[~bought, col] = pd.NA
    scores["rfm_segment"] = np.where(bought, np.array(SEGMENTS)[rng.integers(0, 10, n)], "")
    stage = np.select(
        [~bought, recency < 60, recency < 180, recency < 365],
        ["prospect", "active", "loyal", "at_risk"],
        "churned",
    )
    scores["lifecycle_stage"] = stage
    scores["clv"] = np.where(bought, np.round(rng.lognormal(6.5, 1.2, n), 2), np.nan)
    risk = np.where(bought, rng.random(n), np.nan)
    scores["churn_risk"] = risk
    scores["churn_percentile"] = pd.Series(risk).rank(pct=True).to_numpy() * 100
    scores["churn_reasons"] = "[]"
    scores = scores.drop(columns=["last"])
    with raw.cursor() as cursor:
        copy_frame(cursor, "scoring_customerscore", scores)
    raw.commit()
    # Stage history: one move per buyer 30 days ago, so flows and stage changes have data.
    moved = scores[bought & (rng.random(n) < 0.3)]
    history = pd.DataFrame(
        {
            "customer_id": moved["customer_id"],
            "from_stage": np.array(STAGES)[rng.integers(0, len(STAGES), len(moved))],
            "to_stage": moved["lifecycle_stage"],
            "changed_at": (now - timedelta(days=30)).strftime("%Y-%m-%d %H:%M:%S+00"),
        }
    )
    with raw.cursor() as cursor:
        copy_frame(cursor, "scoring_stagechange", history)
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('customers_customer', 'id'), %s)",
            [n_customers],
        )
        cursor.execute("ANALYZE")
    raw.commit()


def fill(n_customers: int, n_orders: int, seed: int, now: datetime) -> None:
    """Fill the database through the demo generator if installed, otherwise with COPY."""
    try:
        from kequn.demo.generator import generate_demo_data
    except ImportError:
        generate_demo_data = None
    if generate_demo_data is not None and os.environ.get("BENCH_OWN_COPY") != "1":
        generate_demo_data(n_customers, seed=seed, progress=True)
        from kequn.scoring.services import refresh_scores
        from kequn.security.actors import system_actor

        refresh_scores(now=now, progress=True, by=system_actor("benchmark"))
    else:
        fill_with_copy(n_customers, n_orders, seed, now)


def time_call(fn, repeat: int) -> list[float]:
    """Return the wall-clock seconds of each call."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def main(argv: list[str] | None = None) -> int:
    """Fill (optionally), refresh the aggregates, time the page against the live scan."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--fill", action="store_true", help="load synthetic data first")
    parser.add_argument("--fill-only", action="store_true", help="load data, measure nothing")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-live", action="store_true", help="skip the live-scan reference")
    parser.add_argument("--smoke", action="store_true", help="a small run in a scratch database")
    args = parser.parse_args(argv)
    if args.smoke:
        # Never fill the database the environment points at: a scratch SQLite file of its own.
        os.environ["KEQUN_DATA_DIR"] = tempfile.mkdtemp(prefix="kequn-bench-dash-")
        os.environ.pop("KEQUN_DATABASE_URL", None)
        args.customers, args.orders, args.fill, args.repeat = 300, 3000, True, 2
    verdict = Verdict("dashboard_render", smoke=args.smoke)
    verdict.conditions(
        "both warm: the page after one untimed render, the live scan after the refresh "
        "has run the same scan once"
    )

    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from kequn.commerce.models import Order
    from kequn.customers.models import Customer

    call_command("migrate", interactive=False, verbosity=0)
    now = datetime.now(UTC).replace(microsecond=0)
    if args.fill or args.fill_only:
        started = time.perf_counter()
        fill(args.customers, args.orders, args.seed, now)
        print(f"fill: {time.perf_counter() - started:.1f} s", file=sys.stderr)
        if args.fill_only:
            return 0

    from kequn.dashboard import aggregates, services
    from kequn.dashboard.models import ChartCell, KpiWindow
    from kequn.security.actors import system_actor

    customers = Customer.objects.count()
    orders = Order.objects.count()
    started = time.perf_counter()
    services.refresh_dashboard(now=now, by=system_actor("benchmark"))
    refresh_seconds = time.perf_counter() - started

    setup_test_environment()
    user, _ = User.objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    # Administrators must pass the second factor: mark this session as verified.
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device, _ = TOTPDevice.objects.get_or_create(user=user, name="bench", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    urls = ["/admin/?period=30", "/admin/?period=365", "/admin/?period=7&channel=1"]

    statuses: list[int] = []

    def render_precomputed() -> None:
        for url in urls:
            statuses.append(client.get(url).status_code)

    render_precomputed()  # warm caches (templates, connection)
    render = [t / len(urls) for t in time_call(render_precomputed, args.repeat)]

    def render_live() -> None:
        # One page's numbers computed from the base tables at request time (every period and
        # channel come out of the same scan, so one scan is the cost of one page).
        aggregates.compute_aggregates(now=now)

    live = [] if args.skip_live else time_call(render_live, 1)
    render_median = statistics.median(render)
    verdict.check(
        "every page answers 200", set(statuses) == {200}, f"statuses {sorted(set(statuses))}"
    )
    fresh = aggregates.compute_aggregates(now=now)
    stored = (KpiWindow.objects.count(), ChartCell.objects.count())
    verdict.check(
        "the live scan gives the stored aggregates",
        stored == (len(fresh.kpis), len(fresh.cells)),
        f"stored {stored[0]} KPI windows, {stored[1]} chart cells; live {len(fresh.kpis)}, "
        f"{len(fresh.cells)}",
    )
    verdict.check("the dashboard counts customers", fresh.customers > 0, f"{fresh.customers:,}")
    print(f"database: {connection.vendor}, {customers:,} customers, {orders:,} orders")
    print(f"refresh_dashboard(): {refresh_seconds:.1f} s")
    print(
        f"dashboard render (precomputed, server time per page, median of {args.repeat}): "
        f"{render_median * 1000:.1f} ms"
    )
    if live:
        live_per_page = live[0]
        print(f"reference live scan per page: {live_per_page * 1000:.0f} ms")
        print(f"ratio live / precomputed: {live_per_page / render_median:.0f}x")
    verdict.target("dashboard page < 1 s server time", render_median < 1,
                   f"{render_median * 1000:.0f} ms")  # fmt: skip
    return verdict.finish()


if __name__ == "__main__":
    sys.exit(main())
