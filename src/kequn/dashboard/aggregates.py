"""Compute the dashboard's KPIs and chart cells from the store, one function per figure.

The page never scans orders or customers: the store is read once in bulk (kequn.db's Arrow
reads, COPY on PostgreSQL), registered in an in-process DuckDB, and each KPI and chart is aggregated there for every
period × channel combination. Nothing here writes; services.store_aggregates does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from django.conf import settings
from django.utils import timezone

from kequn.analytics.cohorts import compute_cohort_activity
from kequn.commerce.models import Order
from kequn.customers.models import Customer
from kequn.dashboard.constants import (
    ALL,
    CHURN_BINS,
    CLV_EDGES,
    COHORT_MONTHS,
    PERIODS,
    TOP_CITIES,
    get_trend_buckets,
)
from kequn.dashboard.models import ChartCell
from kequn.db import read_arrow
from kequn.scoring.models import CustomerScore, StageChange

# (period, is_current, start, end) of one KPI window, in local wall-clock time.
Window = tuple[int, bool, datetime, datetime]
UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass
class Aggregates:
    """Everything the dashboard shows, computed in one pass over the store."""

    as_of: datetime
    customers: int
    purchases: int
    kpis: list[dict[str, Any]] = field(default_factory=list)
    cells: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Scan:
    """The store registered in DuckDB, with the per-customer tables every figure starts from.

    ``cc``: per customer and channel (channel 0: all channels together), first purchase and
    purchases, revenue and purchases-so-far in every window (columns n{i}, r{i}, c{i}).
    ``members``: a customer belongs to a channel once they bought there; everyone to "all".
    """

    con: duckdb.DuckDBPyConnection
    tables: dict[str, pa.Table]
    local_now: datetime
    windows: list[Window]


def _localize(table: pa.Table, column: str) -> pa.Table:
    """Turn a UTC timestamp column into the business's local wall-clock time."""
    index = table.schema.get_field_index(column)
    zoned = table.column(column).cast(pa.timestamp("us", tz=settings.TIME_ZONE))
    return table.set_column(index, column, pc.local_timestamp(zoned))


def load_store(using: str = "default") -> dict[str, pa.Table]:
    """Read purchases, customers, scores and stage history as Arrow tables, in local time."""
    orders = read_arrow(
        Order.objects.filter(status__in=Order.PURCHASE_STATUSES, customer__isnull=False),
        pa.schema(
            [
                ("customer_id", pa.int64()),
                ("channel_id", pa.int64()),
                ("ts", UTC_TIMESTAMP),
                ("amount", pa.float64()),
            ]
        ),
        fields=["customer_id", "channel_id", "ordered_at", "total_amount"],
        using=using,
    )
    customers = read_arrow(
        Customer.objects.filter(merged_into__isnull=True),
        pa.schema(
            [
                ("id", pa.int64()),
                ("created_at", UTC_TIMESTAMP),
                ("province", pa.string()),
                ("city", pa.string()),
            ]
        ),
        fields=["id", "created_at", "province", "city"],
        using=using,
    )
    scores = read_arrow(
        CustomerScore.objects.all(),
        pa.schema(
            [
                ("customer_id", pa.int64()),
                ("r_score", pa.int64()),
                ("f_score", pa.int64()),
                ("revenue", pa.float64()),
                ("rfm_segment", pa.string()),
                ("lifecycle_stage", pa.string()),
                ("clv", pa.float64()),
                ("churn_risk", pa.float64()),
                ("churn_percentile", pa.float64()),
            ]
        ),
        fields=[
            "customer_id",
            "r_score",
            "f_score",
            "revenue",
            "rfm_segment",
            "lifecycle_stage",
            "clv",
            "churn_risk",
            "churn_percentile",
        ],
        using=using,
    )
    changes = read_arrow(
        StageChange.objects.all(),
        pa.schema(
            [
                ("customer_id", pa.int64()),
                ("from_stage", pa.string()),
                ("to_stage", pa.string()),
                ("changed_at", UTC_TIMESTAMP),
            ]
        ),
        fields=["customer_id", "from_stage", "to_stage", "changed_at"],
        using=using,
    )
    return {
        "orders_in": _localize(orders, "ts"),
        "customers_in": _localize(customers, "created_at"),
        "scores_in": scores,
        "changes_in": _localize(changes, "changed_at"),
    }


def _lit(moment: datetime) -> str:
    return f"TIMESTAMP '{moment:%Y-%m-%d %H:%M:%S.%f}'"


def _local_naive(moment: datetime) -> datetime:
    return timezone.localtime(moment).replace(tzinfo=None)


def _aware(moment: datetime) -> datetime:
    return timezone.make_aware(moment, timezone.get_current_timezone())


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    # Every statement here is built from code: window bounds, constants and column names.
    return con.execute(sql).fetchall()


def get_windows(now: datetime) -> list[Window]:
    """Return (period, is_current, start, end) for each period's current and previous window."""
    windows = []
    for period in PERIODS:
        step = timedelta(days=period)
        windows.append((period, True, now - step, now))
        windows.append((period, False, now - 2 * step, now - step))
    return windows


def open_scan(tables: dict[str, pa.Table], now: datetime) -> Scan:
    """Register the store's tables in DuckDB and build the per-customer tables."""
    con = duckdb.connect()
    for name, table in tables.items():
        con.register(name, table)
    local_now = _local_naive(now)
    windows = get_windows(local_now)
    per_window = []
    for i, (_, _, start, end) in enumerate(windows):
        inside = f"ts > {_lit(start)} AND ts <= {_lit(end)}"
        per_window.append(
            f"count(*) FILTER (WHERE {inside}) AS n{i}, "
            f"coalesce(sum(amount) FILTER (WHERE {inside}), 0) AS r{i}, "
            f"count(*) FILTER (WHERE ts <= {_lit(end)}) AS c{i}"
        )
    columns = ", ".join(per_window)
    con.execute(
        f"""CREATE TABLE cc AS
        SELECT customer_id, channel_id AS ch, min(ts) AS first_ts, {columns}
        FROM orders_in WHERE channel_id IS NOT NULL GROUP BY customer_id, channel_id
        UNION ALL
        SELECT customer_id, {ALL} AS ch, min(ts) AS first_ts, {columns}
        FROM orders_in GROUP BY customer_id"""  # noqa: S608 -- SQL from code: window bounds, constants, column names
    )
    con.execute(
        f"""CREATE TABLE members AS
        SELECT customer_id, ch FROM cc WHERE ch <> {ALL}
        UNION ALL SELECT id AS customer_id, {ALL} AS ch FROM customers_in"""  # noqa: S608 -- SQL from code: window bounds, constants, column names
    )
    return Scan(con=con, tables=tables, local_now=local_now, windows=windows)


def get_current_stages(scan: Scan) -> dict[int, tuple[int, int, float | None, int]]:
    """Return per channel: customers at risk, churned, total CLV and CLV count, as scored now."""
    return {
        ch: (risk, churned, clv_total, clv_n)
        for ch, risk, churned, clv_total, clv_n in _rows(
            scan.con,
            """SELECT m.ch, count(*) FILTER (WHERE s.lifecycle_stage = 'at_risk'),
                count(*) FILTER (WHERE s.lifecycle_stage = 'churned'), sum(s.clv), count(s.clv)
            FROM scores_in s JOIN members m USING (customer_id) GROUP BY m.ch""",
        )
    }


def _get_stages_at(scan: Scan, end: datetime) -> dict[int, tuple[int, int]]:
    """Return per channel the customers at risk and churned as of a moment, from the history."""
    return {
        ch: (risk, churned)
        for ch, risk, churned in _rows(
            scan.con,
            f"""WITH stage_then AS (
                SELECT customer_id, arg_max(to_stage, changed_at) AS stage
                FROM changes_in WHERE changed_at <= {_lit(end)} GROUP BY customer_id)
            SELECT m.ch, count(*) FILTER (WHERE stage = 'at_risk'),
                count(*) FILTER (WHERE stage = 'churned')
            FROM stage_then JOIN members m USING (customer_id) GROUP BY m.ch""",  # noqa: S608 -- SQL from code: window bounds, constants, column names
        )
    }


def compute_kpis(
    scan: Scan, current_stages: dict[int, tuple[int, int, float | None, int]]
) -> list[dict[str, Any]]:
    """Return one KPI row per period, window (current and previous) and channel."""
    con, windows = scan.con, scan.windows
    kpi_columns = [
        f"count(*) FILTER (WHERE n{i} > 0), sum(n{i}), sum(r{i}), "
        f"count(*) FILTER (WHERE n{i} > 0 AND c{i} >= 2), "
        f"count(*) FILTER (WHERE first_ts <= {_lit(end)}), "
        f"count(*) FILTER (WHERE first_ts > {_lit(start)} AND first_ts <= {_lit(end)})"
        for i, (_, _, start, end) in enumerate(windows)
    ]
    kpi_rows = {
        row[0]: row[1:]
        for row in _rows(con, f"SELECT ch, {', '.join(kpi_columns)} FROM cc GROUP BY ch")  # noqa: S608 -- SQL from code: window bounds, constants, column names
    }
    # "All channels" counts every customer on file, buyers or not, by when they were created.
    created_columns = ", ".join(
        f"count(*) FILTER (WHERE created_at <= {_lit(end)}), "
        f"count(*) FILTER (WHERE created_at > {_lit(start)} AND created_at <= {_lit(end)})"
        for (_, _, start, end) in windows
    )
    created = _rows(con, f"SELECT {created_columns} FROM customers_in")[0]  # noqa: S608 -- SQL from code: window bounds, constants, column names
    has_scores = scan.tables["scores_in"].num_rows > 0
    history_start = _rows(con, "SELECT min(changed_at) FROM changes_in")[0][0]

    kpis = []
    channel_keys = sorted({ALL, *kpi_rows})
    for i, (period, is_current, start, end) in enumerate(windows):
        previous_stages: dict[int, tuple[int, int]] = {}
        stages_known = has_scores
        if not is_current:
            # Stages as of the window's end are rebuilt from the history, if it reaches back.
            stages_known = history_start is not None and history_start <= end
            if stages_known:
                previous_stages = _get_stages_at(scan, end)
        for ch in channel_keys:
            values = kpi_rows.get(ch)
            active, purchases, revenue, repeat, members, new = (
                values[i * 6 : i * 6 + 6] if values else (0, 0, 0.0, 0, 0, 0)
            )
            if ch == ALL:
                members, new = created[i * 2], created[i * 2 + 1]
            if is_current:
                risk, churned, clv_total, clv_n = current_stages.get(ch, (0, 0, None, 0))
            else:
                risk, churned = previous_stages.get(ch, (0, 0))
                clv_total, clv_n = None, None
            kpis.append(
                {
                    "period_days": period,
                    "channel_id": ch or None,
                    "is_current": is_current,
                    "starts_at": _aware(start),
                    "ends_at": _aware(end),
                    "customers": int(members or 0),
                    "new_customers": int(new or 0),
                    "active_customers": int(active or 0),
                    "at_risk": int(risk or 0) if stages_known else None,
                    "churned": int(churned or 0) if stages_known else None,
                    "purchases": int(purchases or 0),
                    "revenue": float(revenue or 0.0),
                    "repeat_buyers": int(repeat or 0),
                    "clv_total": float(clv_total) if clv_n else None,
                    "clv_customers": int(clv_n) if clv_n else None,
                }
            )
    return kpis


def make_cells(chart: str, rows: list[tuple], period: int = 0) -> list[dict[str, Any]]:
    """Turn (channel, x, y, customers, amount) rows into chart cells, in the rows' order."""
    return [
        {
            "chart": chart,
            "period_days": period,
            "channel_id": ch or None,
            "x": str(x),
            "y": "" if y is None else str(y),
            "position": position,
            "customers": int(customers or 0),
            "amount": float(amount or 0.0),
        }
        for position, (ch, x, y, customers, amount) in enumerate(rows)
    ]


def compute_rfm_cells(scan: Scan) -> list[dict[str, Any]]:
    """Customers and revenue per recency × frequency score."""
    rows = _rows(
        scan.con,
        """SELECT m.ch, s.r_score, s.f_score, count(*), sum(s.revenue)
        FROM scores_in s JOIN members m USING (customer_id)
        WHERE s.r_score IS NOT NULL AND s.f_score IS NOT NULL GROUP BY ALL ORDER BY ALL""",
    )
    return make_cells(ChartCell.Chart.RFM, rows)


def compute_stage_cells(scan: Scan) -> list[dict[str, Any]]:
    """Customers and revenue per lifecycle stage."""
    rows = _rows(
        scan.con,
        """SELECT m.ch, s.lifecycle_stage, NULL, count(*), sum(s.revenue)
        FROM scores_in s JOIN members m USING (customer_id)
        WHERE s.lifecycle_stage <> '' GROUP BY ALL ORDER BY ALL""",
    )
    return make_cells(ChartCell.Chart.STAGES, rows)


def compute_flow_cells(scan: Scan, period: int) -> list[dict[str, Any]]:
    """Moves between lifecycle stages in a period, the largest first."""
    since = _lit(scan.local_now - timedelta(days=period))
    # A first score (from "") is not a move between stages.
    rows = _rows(
        scan.con,
        f"""SELECT m.ch, c.from_stage, c.to_stage, count(*), 0
        FROM changes_in c JOIN members m USING (customer_id)
        WHERE c.changed_at > {since} AND c.from_stage <> ''
        GROUP BY ALL ORDER BY 1, 4 DESC, 2, 3""",  # noqa: S608 -- SQL from code: window bounds, constants, column names
    )
    return make_cells(ChartCell.Chart.FLOWS, rows, period)


def _get_first_cohort(local_now: datetime) -> str:
    """Return the oldest cohort month shown (YYYY-MM): COHORT_MONTHS months up to this one."""
    first = (local_now.replace(day=1) - timedelta(days=31 * (COHORT_MONTHS - 1))).replace(day=1)
    return f"{first:%Y-%m}"


def _get_purchase_months(scan: Scan) -> tuple[pa.Table, list[int]]:
    """Return the months each customer bought in, overall and per channel, as cohort input.

    A customer's cohort in a channel is the month of their first purchase there, so each
    (customer, channel) pair is its own cohort member: its key is customer_id × (channels + 1)
    + the channel's place (0: all channels, 1…: the channels in id order), and the channel
    column holds the place. One row per member and month, amount 1: the chart counts months
    with a purchase, whatever the amounts net to, and DuckDB folds the orders fastest.
    """
    channel_ids = [
        ch
        for (ch,) in _rows(
            scan.con,
            "SELECT DISTINCT channel_id FROM orders_in WHERE channel_id IS NOT NULL ORDER BY 1",
        )
    ]
    stride = len(channel_ids) + 1
    months = scan.con.execute(
        f"""WITH places AS (
            SELECT channel_id, row_number() OVER (ORDER BY channel_id) AS place
            FROM (SELECT DISTINCT channel_id FROM orders_in WHERE channel_id IS NOT NULL)),
        months AS (
            SELECT DISTINCT customer_id, 0 AS place, date_trunc('month', ts) AS month
            FROM orders_in
            UNION ALL
            SELECT DISTINCT o.customer_id, p.place, date_trunc('month', o.ts) AS month
            FROM orders_in o JOIN places p USING (channel_id))
        SELECT customer_id * {stride} + place AS customer_id, month::TIMESTAMP AS ts,
            1.0::DOUBLE AS amount, NULL::DOUBLE AS quantity, place::BIGINT AS channel
        FROM months"""  # noqa: S608 -- SQL from code: window bounds, constants, column names
    ).to_arrow_table()
    return months, [ALL, *channel_ids]


def compute_cohort_cells(scan: Scan) -> list[dict[str, Any]]:
    """Customers of each first-purchase month who bought again k months later, per channel."""
    orders = scan.tables["orders_in"]
    if orders.num_rows == 0:
        return []
    months, channels = _get_purchase_months(scan)
    last_day: date = pc.max(orders.column("ts")).as_py().date()
    activity = compute_cohort_activity(months, last_day, by="channel")
    activity = activity[activity["cohort"] >= _get_first_cohort(scan.local_now)]
    activity = activity.sort_values(["channel", "cohort", "age"])
    rows = [
        (channels[int(place)], cohort, int(age), int(customers), 0)
        for place, cohort, age, customers in activity[
            ["channel", "cohort", "age", "customers"]
        ].itertuples(index=False)
    ]
    return make_cells(ChartCell.Chart.COHORTS, rows)


def compute_clv_cells(scan: Scan) -> list[dict[str, Any]]:
    """Customers and total CLV per CLV band (CLV_EDGES)."""
    bins = " ".join(f"WHEN s.clv < {edge} THEN {i}" for i, edge in enumerate(CLV_EDGES))
    rows = _rows(
        scan.con,
        f"""SELECT m.ch, CASE {bins} ELSE {len(CLV_EDGES)} END, NULL, count(*), sum(s.clv)
        FROM scores_in s JOIN members m USING (customer_id)
        WHERE s.clv IS NOT NULL GROUP BY ALL ORDER BY ALL""",  # noqa: S608 -- SQL from code: window bounds, constants, column names
    )
    return make_cells(ChartCell.Chart.CLV, rows)


def compute_churn_cells(scan: Scan) -> list[dict[str, Any]]:
    """Customers and CLV at stake per churn-risk decile, with the decile's percentile range."""
    rows = _rows(
        scan.con,
        f"""SELECT m.ch, least(floor(s.churn_risk * {CHURN_BINS}), {CHURN_BINS - 1})::INT,
            printf('%.4f:%.4f', min(s.churn_percentile) - 0.00005,
                max(s.churn_percentile) + 0.00005),
            count(*), sum(s.clv)
        FROM scores_in s JOIN members m USING (customer_id)
        WHERE s.churn_risk IS NOT NULL GROUP BY ALL ORDER BY ALL""",  # noqa: S608 -- SQL from code: window bounds, constants, column names
    )
    return make_cells(ChartCell.Chart.CHURN, rows)


def compute_place_cells(scan: Scan, window: int, column: str) -> list[dict[str, Any]]:
    """Buyers and revenue per province or city (the top TOP_CITIES cities) in a current window."""
    chart = ChartCell.Chart.CITY if column == "city" else ChartCell.Chart.PROVINCE
    limit = TOP_CITIES if column == "city" else 10_000
    i = window
    rows = _rows(
        scan.con,
        f"""SELECT ch, place, NULL, buyers, revenue FROM (
            SELECT cc.ch, c.{column} AS place, count(*) AS buyers,
                sum(r{i}) AS revenue,
                row_number() OVER (
                    PARTITION BY cc.ch ORDER BY sum(r{i}) DESC, c.{column}) AS rank
            FROM cc JOIN customers_in c ON c.id = cc.customer_id
            WHERE n{i} > 0 GROUP BY cc.ch, c.{column})
        WHERE rank <= {limit} ORDER BY ch, rank""",  # noqa: S608 -- SQL from code: window bounds, constants, column names
    )
    return make_cells(chart, rows, scan.windows[window][0])


def compute_trend_cells(scan: Scan, period: int) -> list[dict[str, Any]]:
    """Orders and revenue per point of time, in this period ("cur") and the one before ("prev").

    Point i of either window covers the same offset from its window's start, so the two lines
    compare like with like. The first point of all (x = -1) marks the store's first purchase.
    """
    days, points = get_trend_buckets(period)
    start = scan.local_now - timedelta(days=period)
    before = start - timedelta(days=period)
    seconds = days * 86_400
    offset = f"""least(floor((epoch(ts) - epoch(CASE WHEN ts > {_lit(start)}
        THEN {_lit(start)} ELSE {_lit(before)} END)) / {seconds})::INT, {points - 1})"""
    which = f"CASE WHEN ts > {_lit(start)} THEN 'cur' ELSE 'prev' END"
    inside = f"ts > {_lit(before)} AND ts <= {_lit(scan.local_now)}"
    rows = _rows(
        scan.con,
        f"""SELECT ch, x, y, count(*), sum(amount) FROM (
            SELECT channel_id AS ch, {offset} AS x, {which} AS y, amount
            FROM orders_in WHERE channel_id IS NOT NULL AND {inside}
            UNION ALL
            SELECT {ALL} AS ch, {offset} AS x, {which} AS y, amount FROM orders_in WHERE {inside})
        GROUP BY ALL
        UNION ALL
        SELECT channel_id, -1, strftime(min(ts), '%Y-%m-%d %H:%M:%S'), count(*), 0
        FROM orders_in WHERE channel_id IS NOT NULL GROUP BY channel_id
        UNION ALL
        SELECT {ALL}, -1, strftime(min(ts), '%Y-%m-%d %H:%M:%S'), count(*), 0
        FROM orders_in HAVING count(*) > 0
        ORDER BY ALL""",  # noqa: S608 -- SQL from code: window bounds, constants, column names
    )
    return make_cells(ChartCell.Chart.TREND, rows, period)


def compute_history(
    scan: Scan, current_stages: dict[int, tuple[int, int, float | None, int]]
) -> list[dict[str, Any]]:
    """Return today's points of the charts over time: CLV per channel, RFM segment sizes."""
    day = scan.local_now.date()
    history = []
    for ch, (_, _, clv_total, clv_n) in current_stages.items():
        if clv_n:
            for metric, value in (("clv_total", clv_total), ("clv_customers", clv_n)):
                history.append(
                    {
                        "day": day,
                        "channel_id": ch or None,
                        "metric": metric,
                        "key": "",
                        "value": float(value),
                    }
                )
    for segment, count in _rows(
        scan.con,
        "SELECT rfm_segment, count(*) FROM scores_in WHERE rfm_segment <> '' GROUP BY ALL ORDER BY ALL",
    ):
        history.append(
            {
                "day": day,
                "channel_id": None,
                "metric": "rfm_segment",
                "key": segment,
                "value": float(count),
            }
        )
    return history


def compute_cells(scan: Scan) -> list[dict[str, Any]]:
    """Return the cells of every chart for all periods and channels."""
    cells = [*compute_rfm_cells(scan), *compute_stage_cells(scan)]
    for period in PERIODS:
        cells.extend(compute_flow_cells(scan, period))
    cells.extend(compute_cohort_cells(scan))
    cells.extend(compute_clv_cells(scan))
    cells.extend(compute_churn_cells(scan))
    for i, (_, is_current, _, _) in enumerate(scan.windows):
        if is_current:
            cells.extend(compute_place_cells(scan, i, "province"))
            cells.extend(compute_place_cells(scan, i, "city"))
    for period in PERIODS:
        cells.extend(compute_trend_cells(scan, period))
    return cells


def compute_aggregates(*, now: datetime | None = None, using: str = "default") -> Aggregates:
    """Compute every KPI and chart cell for all periods and channels from the store."""
    now = now or timezone.now()
    tables = load_store(using)
    scan = open_scan(tables, now)
    try:
        current_stages = get_current_stages(scan)
        return Aggregates(
            as_of=now,
            customers=tables["customers_in"].num_rows,
            purchases=tables["orders_in"].num_rows,
            kpis=compute_kpis(scan, current_stages),
            cells=compute_cells(scan),
            history=compute_history(scan, current_stages),
        )
    finally:
        scan.con.close()
