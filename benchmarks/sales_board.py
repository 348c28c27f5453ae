"""Time the deal board (kanban) page's server time with 10,000 open deals.

Usage:  python benchmarks/sales_board.py [--deals 10000] [--repeat 7]
        KEQUN_DATABASE_URL=postgresql://... python benchmarks/sales_board.py
The board page (/admin/sales/deal/board/) is requested through Django's test client as an
administrator; its server time is the median of --repeat warm requests. The reference,
measured in the same run, is the naive board: every open deal of the pipeline loaded as a
model and summed in Python (what a plain ORM page would do). The column counts, totals and
weighted amounts of both must agree. Target: under 500 ms per page.
--smoke: 300 deals in a scratch SQLite database, target not judged.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from decimal import Decimal

from _verdict import Verdict, set_smoke_tag
from sales_common import fill_deals, setup_django

TARGET_MS = 500


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=10_000, help="open deals on the board")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--smoke", action="store_true", help="a small run in a scratch database")
    args = parser.parse_args(argv)
    if args.smoke:
        set_smoke_tag()
        args.deals, args.repeat = 300, 2
    verdict = Verdict("sales_board", smoke=args.smoke)
    setup_django(args.smoke)
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import reverse

    from kequn.sales import selectors
    from kequn.sales.models import Deal

    setup_test_environment()
    # Every deal open, in one pipeline's board: the page's worst case.
    world = fill_deals(args.deals * 3, open_share=1.0)
    pipeline = world["pipelines"][0]
    admin, _created = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client = Client()
    client.force_login(admin)
    device = TOTPDevice.objects.get_or_create(user=admin, name="bench", confirmed=True)[0]
    session = client.session
    session["otp_device_id"] = device.persistent_id
    session.save()
    url = reverse("admin:sales_deal_board") + f"?pipeline={pipeline.pk}"
    first = client.get(url)
    verdict.check("page", first.status_code == 200, f"status {first.status_code}")
    open_deals = Deal.objects.filter(pipeline=pipeline, status="open").count()
    verdict.conditions(
        f"{open_deals:,} open deals on the board ({args.deals * 3:,} in all), warm, "
        f"median of {args.repeat} requests, database {connection.vendor}"
    )
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - start) * 1000)
    # The same admin shell around a three-row list: what any back-office page costs here.
    shell_url = reverse("admin:sales_pipeline_changelist")
    client.get(shell_url)
    shell_times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        client.get(shell_url)
        shell_times.append((time.perf_counter() - start) * 1000)
    naive_times = []
    naive: dict[int, list[Decimal]] = {}
    for _ in range(args.repeat):
        start = time.perf_counter()
        sums: dict[int, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0), Decimal(0)])
        for deal in Deal.objects.filter(pipeline=pipeline, status="open").select_related(
            "stage", "account", "owner"
        ):
            row = sums[deal.stage_id]
            row[0] += 1
            row[1] += deal.amount or 0
            row[2] += deal.weighted_amount
        naive = dict(sums)
        naive_times.append((time.perf_counter() - start) * 1000)
    board = selectors.get_board(admin, selectors.BoardFilters(pipeline_id=pipeline.pk))
    agree = all(
        naive.get(c.stage.pk, [0, 0, 0])[0] == c.count
        and Decimal(naive.get(c.stage.pk, [0, 0, 0])[1]) == c.total
        and abs(Decimal(naive.get(c.stage.pk, [0, 0, 0])[2]) - c.weighted) < Decimal("0.05")
        for c in board
    )
    verdict.check("columns", agree, "counts, totals and weighted amounts equal the naive sums")
    page_ms, naive_ms = statistics.median(times), statistics.median(naive_times)
    shell_ms = statistics.median(shell_times)
    print(
        f"board page: median {page_ms:.1f} ms; naive in-Python board: median {naive_ms:.1f} ms; "
        f"ratio {naive_ms / page_ms:.1f}x; a three-row admin list on this machine: "
        f"{shell_ms:.1f} ms (the board adds {page_ms - shell_ms:.1f} ms)"
    )
    verdict.target("board page", page_ms < TARGET_MS, f"{page_ms:.1f} ms < {TARGET_MS} ms")
    return verdict.finish()


if __name__ == "__main__":
    sys.exit(main())
