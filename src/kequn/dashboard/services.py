"""Compute the dashboard's aggregates from the store and read them back (the only writer).

The page never scans orders or customers: `refresh_dashboard()` reads them once in bulk
(COPY on PostgreSQL), aggregates every period × channel combination in DuckDB and stores a
few thousand rows; `build_dashboard()` reads those rows back with a handful of indexed queries.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from django.conf import settings
from django.db import connections, transaction
from django.db.models import QuerySet
from django.utils import timezone

from kequn.commerce.models import Order
from kequn.customers.models import Customer
from kequn.dashboard.models import ChartCell, DashboardRefresh, HistoryPoint, KpiWindow
from kequn.scoring.models import CustomerScore, StageChange

PERIODS = (7, 30, 90, 365)
DEFAULT_PERIOD = 30
# Upper bounds of the CLV histogram bins (currency units); the last bin is open-ended.
CLV_EDGES = (100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000)
CHURN_BINS = 10
COHORT_MONTHS = 12
TOP_CITIES = 20
HISTORY_DAYS = 180
# Revenue and orders over time: days per point, so each period draws 7 to 30 points.
TREND_BUCKET_DAYS = {7: 1, 30: 1, 90: 7, 365: 30}
WRITE_BATCH = 5_000
ALL = 0  # channel key of "all channels" inside the DuckDB tables


@dataclass
class Aggregates:
    """Everything the dashboard shows, computed in one pass over the store."""

    as_of: datetime
    customers: int
    purchases: int
    kpis: list[dict[str, Any]] = field(default_factory=list)
    cells: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


def _load(queryset: QuerySet, fields: list[str], schema: pa.Schema, using: str) -> pa.Table:
    """Read some columns of a queryset as an Arrow table (COPY on PostgreSQL)."""
    rows = queryset.using(using).order_by().values_list(*fields)
    connection = connections[using]
    if connection.vendor == "postgresql":
        import psycopg

        sql, params = rows.query.sql_with_params()
        connection.ensure_connection()
        raw = connection.connection
        literal = psycopg.ClientCursor(raw).mogrify(sql, params)
        buffer = io.BytesIO()
        with raw.cursor() as cursor, cursor.copy(f"COPY ({literal}) TO STDOUT (FORMAT csv)") as cp:
            for block in cp:
                buffer.write(block)
        if buffer.getbuffer().nbytes == 0:
            return schema.empty_table()
        buffer.seek(0)
        return pacsv.read_csv(
            buffer,
            read_options=pacsv.ReadOptions(column_names=schema.names),
            convert_options=pacsv.ConvertOptions(
                column_types=schema, strings_can_be_null=False, quoted_strings_can_be_null=False
            ),
        )
    columns: list[list] = [[] for _ in fields]
    decimal_columns = [i for i, f in enumerate(schema) if pa.types.is_floating(f.type)]
    for row in rows.iterator(chunk_size=20_000):
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    for i in decimal_columns:
        columns[i] = [None if v is None else float(v) for v in columns[i]]
    return pa.table(
        {
            name: pa.array(col, type=schema.field(name).type)
            for name, col in zip(schema.names, columns, strict=True)
        }
    )


def _localize(table: pa.Table, column: str) -> pa.Table:
    """Turn a UTC timestamp column into the business's local wall-clock time."""
    index = table.schema.get_field_index(column)
    zoned = table.column(column).cast(pa.timestamp("us", tz=settings.TIME_ZONE))
    return table.set_column(index, column, pc.local_timestamp(zoned))


def _local_naive(moment: datetime) -> datetime:
    return timezone.localtime(moment).replace(tzinfo=None)


def _aware(moment: datetime) -> datetime:
    return timezone.make_aware(moment, timezone.get_current_timezone())


def load_store(using: str = "default") -> dict[str, pa.Table]:
    """Read purchases, customers, scores and stage history as Arrow tables."""
    ts = pa.timestamp("us", tz="UTC")
    orders = _load(
        Order.objects.filter(status__in=Order.PURCHASE_STATUSES, customer__isnull=False),
        ["customer_id", "channel_id", "ordered_at", "total_amount"],
        pa.schema(
            [
                ("customer_id", pa.int64()),
                ("channel_id", pa.int64()),
                ("ts", ts),
                ("amount", pa.float64()),
            ]
        ),
        using,
    )
    customers = _load(
        Customer.objects.filter(merged_into__isnull=True),
        ["id", "created_at", "province", "city"],
        pa.schema(
            [
                ("id", pa.int64()),
                ("created_at", ts),
                ("province", pa.string()),
                ("city", pa.string()),
            ]
        ),
        using,
    )
    scores = _load(
        CustomerScore.objects.all(),
        [
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
        using,
    )
    changes = _load(
        StageChange.objects.all(),
        ["customer_id", "from_stage", "to_stage", "changed_at"],
        pa.schema(
            [
                ("customer_id", pa.int64()),
                ("from_stage", pa.string()),
                ("to_stage", pa.string()),
                ("changed_at", ts),
            ]
        ),
        using,
    )
    return {
        "orders_in": _localize(orders, "ts"),
        "customers_in": _localize(customers, "created_at"),
        "scores_in": scores,
        "changes_in": _localize(changes, "changed_at"),
    }


def _lit(moment: datetime) -> str:
    return f"TIMESTAMP '{moment:%Y-%m-%d %H:%M:%S.%f}'"


def _windows(now: datetime) -> list[tuple[int, bool, datetime, datetime]]:
    """Return (period, is_current, start, end) for each period's current and previous window."""
    windows = []
    for period in PERIODS:
        step = timedelta(days=period)
        windows.append((period, True, now - step, now))
        windows.append((period, False, now - 2 * step, now - step))
    return windows


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def get_trend_buckets(period: int) -> tuple[int, int]:
    """Return (days per point, number of points) of the revenue-over-time chart of a period."""
    days = TREND_BUCKET_DAYS.get(period, max(1, period // 30))
    return days, -(-period // days)


def _trend_rows(con: duckdb.DuckDBPyConnection, local_now: datetime, period: int) -> list[tuple]:
    """Orders and revenue per point of time, in this period ("cur") and the one before ("prev").

    Point i of either window covers the same offset from its window's start, so the two lines
    compare like with like. The first point of all (x = -1) marks the store's first purchase.
    """
    days, points = get_trend_buckets(period)
    start = local_now - timedelta(days=period)
    before = start - timedelta(days=period)
    seconds = days * 86_400
    offset = f"""least(floor((epoch(ts) - epoch(CASE WHEN ts > {_lit(start)}
        THEN {_lit(start)} ELSE {_lit(before)} END)) / {seconds})::INT, {points - 1})"""
    which = f"CASE WHEN ts > {_lit(start)} THEN 'cur' ELSE 'prev' END"
    inside = f"ts > {_lit(before)} AND ts <= {_lit(local_now)}"
    return _rows(
        con,
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
        ORDER BY ALL""",
    )


def compute_aggregates(*, now: datetime | None = None, using: str = "default") -> Aggregates:
    """Compute every KPI and chart cell for all periods and channels from the store."""
    now = now or timezone.now()
    tables = load_store(using)
    con = duckdb.connect()
    for name, table in tables.items():
        con.register(name, table)
    local_now = _local_naive(now)
    windows = _windows(local_now)
    result = Aggregates(
        as_of=now, customers=tables["customers_in"].num_rows, purchases=tables["orders_in"].num_rows
    )

    # Per customer and channel (channel 0: all channels together), counts in every window.
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
        FROM orders_in GROUP BY customer_id"""
    )
    # A customer belongs to a channel once they bought there; everyone belongs to "all".
    con.execute(
        f"""CREATE TABLE members AS
        SELECT customer_id, ch FROM cc WHERE ch <> {ALL}
        UNION ALL SELECT id AS customer_id, {ALL} AS ch FROM customers_in"""
    )

    kpi_columns = []
    for i, (_, _, start, end) in enumerate(windows):
        kpi_columns.append(
            f"count(*) FILTER (WHERE n{i} > 0), sum(n{i}), sum(r{i}), "
            f"count(*) FILTER (WHERE n{i} > 0 AND c{i} >= 2), "
            f"count(*) FILTER (WHERE first_ts <= {_lit(end)}), "
            f"count(*) FILTER (WHERE first_ts > {_lit(start)} AND first_ts <= {_lit(end)})"
        )
    kpi_rows = {
        row[0]: row[1:]
        for row in _rows(con, f"SELECT ch, {', '.join(kpi_columns)} FROM cc GROUP BY ch")
    }
    created_columns = ", ".join(
        f"count(*) FILTER (WHERE created_at <= {_lit(end)}), "
        f"count(*) FILTER (WHERE created_at > {_lit(start)} AND created_at <= {_lit(end)})"
        for (_, _, start, end) in windows
    )
    created = _rows(con, f"SELECT {created_columns} FROM customers_in")[0]

    has_scores = tables["scores_in"].num_rows > 0
    current_stages = {
        ch: (risk, churned, clv_total, clv_n)
        for ch, risk, churned, clv_total, clv_n in _rows(
            con,
            """SELECT m.ch, count(*) FILTER (WHERE s.lifecycle_stage = 'at_risk'),
                count(*) FILTER (WHERE s.lifecycle_stage = 'churned'), sum(s.clv), count(s.clv)
            FROM scores_in s JOIN members m USING (customer_id) GROUP BY m.ch""",
        )
    }
    history_start = _rows(con, "SELECT min(changed_at) FROM changes_in")[0][0]

    channel_keys = sorted({ALL, *kpi_rows})
    for i, (period, is_current, start, end) in enumerate(windows):
        previous_stages: dict[int, tuple[int, int]] = {}
        stages_known = has_scores
        if not is_current:
            # Stages as of the window's end are rebuilt from the history, if it reaches back.
            stages_known = history_start is not None and history_start <= end
            if stages_known:
                previous_stages = {
                    ch: (risk, churned)
                    for ch, risk, churned in _rows(
                        con,
                        f"""WITH stage_then AS (
                            SELECT customer_id, arg_max(to_stage, changed_at) AS stage
                            FROM changes_in WHERE changed_at <= {_lit(end)} GROUP BY customer_id)
                        SELECT m.ch, count(*) FILTER (WHERE stage = 'at_risk'),
                            count(*) FILTER (WHERE stage = 'churned')
                        FROM stage_then JOIN members m USING (customer_id) GROUP BY m.ch""",
                    )
                }
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
            result.kpis.append(
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

    cells = result.cells

    def add(chart: str, rows: list[tuple], period: int = 0) -> None:
        for position, (ch, x, y, customers, amount) in enumerate(rows):
            cells.append(
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
            )

    add(
        ChartCell.Chart.RFM,
        _rows(
            con,
            """SELECT m.ch, s.r_score, s.f_score, count(*), sum(s.revenue)
            FROM scores_in s JOIN members m USING (customer_id)
            WHERE s.r_score IS NOT NULL AND s.f_score IS NOT NULL GROUP BY ALL ORDER BY ALL""",
        ),
    )
    add(
        ChartCell.Chart.STAGES,
        _rows(
            con,
            """SELECT m.ch, s.lifecycle_stage, NULL, count(*), sum(s.revenue)
            FROM scores_in s JOIN members m USING (customer_id)
            WHERE s.lifecycle_stage <> '' GROUP BY ALL ORDER BY ALL""",
        ),
    )
    for period in PERIODS:
        since = _lit(local_now - timedelta(days=period))
        # A first score (from "") is not a move between stages.
        add(
            ChartCell.Chart.FLOWS,
            _rows(
                con,
                f"""SELECT m.ch, c.from_stage, c.to_stage, count(*), 0
                FROM changes_in c JOIN members m USING (customer_id)
                WHERE c.changed_at > {since} AND c.from_stage <> ''
                GROUP BY ALL ORDER BY 1, 4 DESC, 2, 3""",
            ),
            period,
        )
    first_cohort = (local_now.replace(day=1) - timedelta(days=31 * (COHORT_MONTHS - 1))).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )
    add(
        ChartCell.Chart.COHORTS,
        _rows(
            con,
            f"""WITH active AS (
                SELECT DISTINCT customer_id, channel_id AS ch, date_trunc('month', ts) AS month
                FROM orders_in WHERE channel_id IS NOT NULL
                UNION ALL
                SELECT DISTINCT customer_id, {ALL} AS ch, date_trunc('month', ts) AS month
                FROM orders_in),
            cohort AS (SELECT customer_id, ch, date_trunc('month', first_ts) AS month FROM cc)
            SELECT a.ch, strftime(c.month, '%Y-%m'), datediff('month', c.month, a.month),
                count(*), 0
            FROM active a JOIN cohort c USING (customer_id, ch)
            WHERE c.month >= {_lit(first_cohort)} GROUP BY ALL ORDER BY ALL""",
        ),
    )
    bins = " ".join(f"WHEN s.clv < {edge} THEN {i}" for i, edge in enumerate(CLV_EDGES))
    add(
        ChartCell.Chart.CLV,
        _rows(
            con,
            f"""SELECT m.ch, CASE {bins} ELSE {len(CLV_EDGES)} END, NULL, count(*), sum(s.clv)
            FROM scores_in s JOIN members m USING (customer_id)
            WHERE s.clv IS NOT NULL GROUP BY ALL ORDER BY ALL""",
        ),
    )
    add(
        ChartCell.Chart.CHURN,
        _rows(
            con,
            f"""SELECT m.ch, least(floor(s.churn_risk * {CHURN_BINS}), {CHURN_BINS - 1})::INT,
                printf('%.4f:%.4f', min(s.churn_percentile) - 0.00005,
                    max(s.churn_percentile) + 0.00005),
                count(*), sum(s.clv)
            FROM scores_in s JOIN members m USING (customer_id)
            WHERE s.churn_risk IS NOT NULL GROUP BY ALL ORDER BY ALL""",
        ),
    )
    for i, (period, is_current, _, _) in enumerate(windows):
        if not is_current:
            continue
        for chart, column in (
            (ChartCell.Chart.PROVINCE, "province"),
            (ChartCell.Chart.CITY, "city"),
        ):
            limit = TOP_CITIES if column == "city" else 10_000
            add(
                chart,
                _rows(
                    con,
                    f"""SELECT ch, place, NULL, buyers, revenue FROM (
                        SELECT cc.ch, c.{column} AS place, count(*) AS buyers,
                            sum(r{i}) AS revenue,
                            row_number() OVER (
                                PARTITION BY cc.ch ORDER BY sum(r{i}) DESC, c.{column}) AS rank
                        FROM cc JOIN customers_in c ON c.id = cc.customer_id
                        WHERE n{i} > 0 GROUP BY cc.ch, c.{column})
                    WHERE rank <= {limit} ORDER BY ch, rank""",
                ),
                period,
            )

    for period in PERIODS:
        add(ChartCell.Chart.TREND, _trend_rows(con, local_now, period), period)

    day = local_now.date()
    for ch, (_, _, clv_total, clv_n) in current_stages.items():
        if clv_n:
            result.history.append(
                {
                    "day": day,
                    "channel_id": ch or None,
                    "metric": "clv_total",
                    "key": "",
                    "value": float(clv_total),
                }
            )
            result.history.append(
                {
                    "day": day,
                    "channel_id": ch or None,
                    "metric": "clv_customers",
                    "key": "",
                    "value": float(clv_n),
                }
            )
    for segment, count in _rows(
        con,
        "SELECT rfm_segment, count(*) FROM scores_in WHERE rfm_segment <> '' GROUP BY ALL ORDER BY ALL",
    ):
        result.history.append(
            {
                "day": day,
                "channel_id": None,
                "metric": "rfm_segment",
                "key": segment,
                "value": float(count),
            }
        )
    con.close()
    return result


def store_aggregates(aggregates: Aggregates, using: str = "default") -> None:
    """Replace the stored aggregates with new ones, keeping one history point per day."""
    days = {point["day"] for point in aggregates.history}
    with transaction.atomic(using=using):
        KpiWindow.objects.using(using).all().delete()
        ChartCell.objects.using(using).all().delete()
        HistoryPoint.objects.using(using).filter(day__in=days).delete()
        KpiWindow.objects.using(using).bulk_create(
            [KpiWindow(**row) for row in aggregates.kpis], batch_size=WRITE_BATCH
        )
        ChartCell.objects.using(using).bulk_create(
            [ChartCell(**row) for row in aggregates.cells], batch_size=WRITE_BATCH
        )
        HistoryPoint.objects.using(using).bulk_create(
            [HistoryPoint(**row) for row in aggregates.history], batch_size=WRITE_BATCH
        )


def refresh_dashboard(*, now: datetime | None = None, using: str = "default") -> DashboardRefresh:
    """Recompute and store the dashboard's aggregates; call it right after refresh_scores()."""
    now = now or timezone.now()
    started = time.perf_counter()
    run = DashboardRefresh.objects.using(using).create(
        started_at=timezone.now(), as_of=now, status=DashboardRefresh.Status.RUNNING
    )
    try:
        aggregates = compute_aggregates(now=now, using=using)
        store_aggregates(aggregates, using)
        run.status = DashboardRefresh.Status.DONE
        run.customers = aggregates.customers
        run.purchases = aggregates.purchases
    except Exception as exc:
        run.status = DashboardRefresh.Status.FAILED
        run.message = f"{type(exc).__name__}: {exc}"[:2000]
        raise
    finally:
        run.finished_at = timezone.now()
        run.seconds = time.perf_counter() - started
        run.save(using=using)
    return run


def enqueue_dashboard_refresh() -> None:
    """Queue a refresh of the aggregates for the worker."""
    from kequn.dashboard.tasks import refresh_dashboard_task

    refresh_dashboard_task.enqueue()


def get_history_start(day: date) -> date:
    """Return the first day shown in charts over time that end on the given day."""
    return day - timedelta(days=HISTORY_DAYS)


def get_reports_dir() -> Path:
    """Return the directory the report files are written to."""
    return Path(settings.DATA_DIR) / "reports"


def list_reports() -> list[Path]:
    """Return the report files, newest first."""
    folder = get_reports_dir()
    if not folder.is_dir():
        return []
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix in (".pdf", ".xlsx")]
    return sorted(files, key=lambda p: p.name, reverse=True)


def write_weekly_report(*, now: datetime | None = None) -> list[Path]:
    """Write the last seven days' summary as PDF and Excel files into the reports directory."""
    from django.utils import translation

    from kequn.dashboard.exports import PdfFontError, build_dashboard_pdf, build_dashboard_xlsx
    from kequn.dashboard.queries import Filters, build_dashboard

    now = now or timezone.now()
    folder = get_reports_dir()
    folder.mkdir(parents=True, exist_ok=True)
    year, week, _ = timezone.localtime(now).isocalendar()
    stem = f"kequn-weekly-{year}-W{week:02d}"
    font_error = None
    with translation.override(settings.LANGUAGE_CODE):
        data = build_dashboard(Filters(period=7))
        contents = {".xlsx": build_dashboard_xlsx(data)}
        try:
            contents[".pdf"] = build_dashboard_pdf(data)
        except PdfFontError as exc:
            font_error = exc
    written = []
    for suffix, content in contents.items():
        path = folder / f"{stem}{suffix}"
        # Write then rename, so a reader never sees half a file and a re-run replaces it whole.
        partial = path.with_suffix(suffix + ".part")
        partial.write_bytes(content)
        partial.replace(path)
        written.append(path)
    if font_error is not None:
        # The Excel file is written; the PDF waits for the font.
        raise font_error
    return sorted(written)
