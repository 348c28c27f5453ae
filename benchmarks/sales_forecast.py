"""Time the sales forecast (per month: weighted, commit, best case, won, quota) over 100,000 deals.

Usage:  python benchmarks/sales_forecast.py [--deals 100000] [--repeat 5]
The forecast of the next twelve months for everyone (administrator's scope) is computed by
kequn.sales.selectors.get_forecast, which aggregates in the database. The reference, in the
same run, loads every deal and adds the figures up in Python; both must agree to the cent.
Target: under 1 s. --smoke: 1,000 deals in a scratch SQLite database, target not judged.
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

TARGET_MS = 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="a small run in a scratch database")
    args = parser.parse_args(argv)
    if args.smoke:
        set_smoke_tag()
        args.deals, args.repeat = 1000, 2
    verdict = Verdict("sales_forecast", smoke=args.smoke)
    setup_django(args.smoke)
    from django.db import connection
    from django.utils import timezone

    from kequn.sales import selectors
    from kequn.sales.models import Deal, Stage
    from kequn.security.actors import system_actor

    fill_deals(args.deals, open_share=0.7)
    verdict.conditions(
        f"{args.deals:,} deals (70 % open) over 12 months, warm, median of {args.repeat}, "
        f"database {connection.vendor}"
    )
    viewer = system_actor("benchmark")
    start_month = selectors.month_start(timezone.localdate())
    selectors.get_forecast(viewer, start=start_month, months=12)  # warm
    times = []
    rows = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        rows = selectors.get_forecast(viewer, start=start_month, months=12)
        times.append((time.perf_counter() - start) * 1000)
    end = selectors.add_month(start_month, 12)
    reference_times = []
    reference: dict[str, list[Decimal]] = {}
    for _ in range(args.repeat):
        start = time.perf_counter()
        sums: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 4)
        deals = (
            Deal.objects.filter(close_date__gte=start_month, close_date__lt=end)
            .exclude(status="lost")
            .select_related("stage")
        )
        for deal in deals:
            row = sums[f"{deal.close_date:%Y-%m}"]
            amount = deal.amount or Decimal(0)
            if deal.status == "won":
                row[0] += amount
                row[1] += amount
                row[2] += amount
                row[3] += amount
                continue
            row[0] += deal.weighted_amount
            if deal.stage.forecast_category == Stage.Forecast.COMMIT:
                row[1] += amount
                row[2] += amount
            elif deal.stage.forecast_category == Stage.Forecast.BEST_CASE:
                row[2] += amount
        reference = dict(sums)
        reference_times.append((time.perf_counter() - start) * 1000)
    agree = all(
        abs(r.weighted - (reference.get(r.period, [0] * 4)[0] - r.won)) < Decimal("0.5")
        and r.commit == reference.get(r.period, [0] * 4)[1]
        and r.best_case == reference.get(r.period, [0] * 4)[2]
        and r.won == reference.get(r.period, [0] * 4)[3]
        for r in rows
    )
    verdict.check("figures", agree, "weighted, commit, best case and won equal the Python sums")
    ms, reference_ms = statistics.median(times), statistics.median(reference_times)
    print(
        f"forecast: median {ms:.1f} ms; Python over every deal: median {reference_ms:.1f} ms; "
        f"ratio {reference_ms / ms:.1f}x"
    )
    verdict.target("forecast", ms < TARGET_MS, f"{ms:.1f} ms < {TARGET_MS} ms")
    return verdict.finish()


if __name__ == "__main__":
    sys.exit(main())
