"""Read the precomputed aggregates back into what the page, the exports and the reports show."""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from kequn.commerce.models import Channel
from kequn.customers.models import Customer
from kequn.dashboard.constants import (
    CHURN_BINS,
    CLV_EDGES,
    COHORT_MONTHS,
    DEFAULT_PERIOD,
    PERIODS,
    get_history_start,
    get_trend_buckets,
)
from kequn.dashboard.models import ChartCell, DashboardRefresh, HistoryPoint, KpiWindow
from kequn.dashboard.numbers import format_change, format_compact, format_number
from kequn.links import get_url
from kequn.scoring.models import LifecycleStage, RFMSegment
from kequn.segments.models import Segment

SERIES_COLOURS = (
    "#6366f1",
    "#f59e0b",
    "#10b981",
    "#ef4444",
    "#0ea5e9",
    "#a855f7",
    "#84cc16",
    "#f97316",
    "#14b8a6",
    "#64748b",
)


@dataclass
class Filters:
    period: int = DEFAULT_PERIOD
    channel: Channel | None = None
    errors: list[str] = field(default_factory=list)

    def as_query(self) -> str:
        """Return the filters as a URL query string."""
        params: dict[str, Any] = {"period": self.period}
        if self.channel is not None:
            params["channel"] = self.channel.pk
        return urlencode(params)


def parse_filters(params: Any) -> Filters:
    """Read period and channel from request parameters, explaining any value that cannot be used."""
    filters = Filters()
    raw_period = (params.get("period") or "").strip()
    if raw_period:
        try:
            period = int(raw_period)
        except ValueError:
            period = None
        if period in PERIODS:
            filters.period = period
        else:
            filters.errors.append(
                _(
                    "“%(value)s” is not a period the dashboard can show: choose 7, 30, 90 or "
                    "365 days. Showing the last %(default)s days."
                )
                % {"value": raw_period, "default": DEFAULT_PERIOD}
            )
    raw_channel = (params.get("channel") or "").strip()
    if raw_channel:
        channel = None
        if raw_channel.isdigit() and len(raw_channel) < 19:
            channel = Channel.objects.filter(pk=int(raw_channel)).first()
        if channel is None:
            filters.errors.append(
                _("There is no store or channel “%(value)s”. Showing all channels.")
                % {"value": raw_channel}
            )
        filters.channel = channel
    return filters


def get_customer_filter_params() -> frozenset[str]:
    """Return the query parameters the customer list's filters accept."""
    return _get_filter_params(admin.site._registry.get(Customer))


@functools.lru_cache(maxsize=4)
def _get_filter_params(model_admin: admin.ModelAdmin | None) -> frozenset[str]:
    # Once per registered admin: the dashboard asks for every one of its 240 links.
    names: set[str] = set()
    for spec in getattr(model_admin, "list_filter", ()):
        if isinstance(spec, (tuple, list)):
            path, cls = spec[0], spec[1]
            if "Range" in cls.__name__:
                names.update({f"{path}_from", f"{path}_to"})
            elif issubclass(cls, admin.RelatedFieldListFilter):
                names.add(f"{path}__id__exact")
            else:
                names.update({path, f"{path}__exact"})
        elif isinstance(spec, str):
            names.update({spec, f"{spec}__exact"})
        elif getattr(spec, "parameter_name", None):
            names.add(spec.parameter_name)
    return frozenset(names)


def customers_url(**params: Any) -> str:
    """Link to the customer list filtered by these parameters, or "" if the list cannot filter so.

    A list that silently ignored one of the parameters would show the wrong customers, so a
    chart element links only when every parameter is a filter of the customer list.
    """
    clean = {k: v for k, v in params.items() if v not in (None, "")}
    if not set(clean) <= get_customer_filter_params():
        return ""
    base = get_url("admin:customers_customer_changelist")
    return f"{base}?{urlencode(clean)}" if clean else base


def _change(current: float | None, previous: float | None) -> float | None:
    if current is None or previous is None or previous == 0:
        return None
    return (current - previous) / previous * 100


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _alpha(value: float, top: float) -> float:
    return round(0.08 + 0.82 * value / top, 3) if top else 0.0


def _kpi(
    key: str,
    label: str,
    value: float | None,
    previous: float | None,
    kind: str = "count",
    link: str = "",
    up_is_good: bool = True,
    definition: str = "",
) -> dict[str, Any]:
    change = _change(value, previous)
    if change is None:
        trend = "none"
    elif abs(change) < 0.05:
        trend = "flat"
    else:
        trend = "up" if change > 0 else "down"
    good = None if trend in ("none", "flat") else (trend == "up") == up_is_good
    return {
        "key": key,
        "label": label,
        "value": value,
        "previous": previous,
        "change": change,
        "trend": trend,
        "good": good,
        "kind": kind,
        "link": link,
        "definition": definition,
        "exact": format_number(value, kind),
        "short": format_compact(value, kind),
        "previous_text": format_number(previous, kind),
        "change_text": format_change(change),
    }


def _window_pair(rows: list[KpiWindow], channel: Channel | None) -> tuple[KpiWindow | None, ...]:
    channel_id = channel.pk if channel else None
    current = next((r for r in rows if r.channel_id == channel_id and r.is_current), None)
    previous = next((r for r in rows if r.channel_id == channel_id and not r.is_current), None)
    return current, previous


def _previous_clv(filters: Filters, as_of_day: Any) -> tuple[float | None, float | None]:
    target = as_of_day - timedelta(days=filters.period)
    points = list(
        HistoryPoint.objects.filter(
            metric__in=("clv_total", "clv_customers"), channel=filters.channel, day__lte=target
        )
        .order_by("-day")
        .values_list("day", "metric", "value")[:2]
    )
    if not points:
        return None, None
    by_metric = {metric: value for day, metric, value in points if day == points[0][0]}
    return by_metric.get("clv_total"), by_metric.get("clv_customers")


def _build_kpis(
    filters: Filters, current: KpiWindow, previous: KpiWindow | None, as_of: Any
) -> list[dict]:
    prev = previous or KpiWindow()
    start = timezone.localtime(current.starts_at).date()
    end = timezone.localtime(current.ends_at).date()
    channel_param = filters.channel.pk if filters.channel else None
    clv_prev_total, clv_prev_n = _previous_clv(filters, timezone.localtime(as_of).date())
    return [
        _kpi(
            "customers",
            _("Customers"),
            current.customers,
            prev.customers if previous else None,
            link=customers_url(purchase_channel=channel_param),
            definition=_(
                "Every customer on file at the end of the period (merged duplicates counted "
                "once); with a store or channel chosen, those who bought there."
            ),
        ),
        _kpi(
            "new_customers",
            _("Customers added"),
            current.new_customers,
            prev.new_customers if previous else None,
            link=customers_url(created_at_from=start, created_at_to=end)
            if channel_param is None
            else customers_url(
                purchase_channel=channel_param, first_purchase_from=start, first_purchase_to=end
            ),
            definition=_(
                "Customers created in the period (sign-ups and imports); with a store or channel "
                "chosen, those whose first purchase there fell in the period. Not the lifecycle "
                "stage “New”."
            ),
        ),
        _kpi(
            "active_customers",
            _("Active customers"),
            current.active_customers,
            prev.active_customers if previous else None,
            link=customers_url(
                purchased_from=start, purchased_to=end, purchase_channel=channel_param
            ),
            definition=_(
                "Customers with at least one paid, shipped or completed order in the period."
            ),
        ),
        _kpi(
            "at_risk",
            _("At risk"),
            current.at_risk,
            prev.at_risk if previous else None,
            link=customers_url(
                score__lifecycle_stage__exact="at_risk", purchase_channel=channel_param
            ),
            up_is_good=False,
            definition=_(
                "Customers whose lifecycle stage is “At risk” now (from the last analytics "
                "refresh). The RFM segment of the same name is a different measure."
            ),
        ),
        _kpi(
            "churned",
            _("Churned"),
            current.churned,
            prev.churned if previous else None,
            link=customers_url(
                score__lifecycle_stage__exact="churned", purchase_channel=channel_param
            ),
            up_is_good=False,
            definition=_(
                "Customers whose lifecycle stage is “Churned” now (from the last analytics "
                "refresh)."
            ),
        ),
        _kpi(
            "revenue",
            _("Revenue"),
            current.revenue,
            prev.revenue if previous else None,
            kind="money",
            link=customers_url(
                purchased_from=start, purchased_to=end, purchase_channel=channel_param
            ),
            definition=_("Total of paid, shipped and completed orders placed in the period."),
        ),
        _kpi(
            "repeat_rate",
            _("Repeat-purchase rate"),
            _ratio(current.repeat_buyers * 100, current.active_customers),
            _ratio(prev.repeat_buyers * 100, prev.active_customers) if previous else None,
            kind="percent",
            definition=_(
                "Share of the period’s active customers who had bought at least twice by its end."
            ),
        ),
        _kpi(
            "average_order_value",
            _("Average order value"),
            _ratio(current.revenue, current.purchases),
            _ratio(prev.revenue, prev.purchases) if previous else None,
            kind="money",
            definition=_("Revenue divided by the number of orders in the period."),
        ),
        _kpi(
            "clv_total",
            _("Total CLV"),
            current.clv_total,
            clv_prev_total,
            kind="money",
            definition=_(
                "Predicted value of all scored customers over the analytics horizon, summed."
            ),
        ),
        _kpi(
            "clv_average",
            _("Average CLV"),
            _ratio(current.clv_total, current.clv_customers),
            _ratio(clv_prev_total, clv_prev_n),
            kind="money",
            definition=_("Total CLV divided by the number of scored customers."),
        ),
    ]


def _rfm(cells: list[ChartCell], channel_param: int | None) -> dict[str, Any]:
    grid = {(int(c.x), int(c.y)): c for c in cells}
    top = max((c.customers for c in cells), default=0)
    rows = []
    for r in range(5, 0, -1):
        row = []
        for f in range(1, 6):
            cell = grid.get((r, f))
            customers = cell.customers if cell else 0
            row.append(
                {
                    "r": r,
                    "f": f,
                    "customers": customers,
                    "revenue": cell.amount if cell else 0.0,
                    "alpha": _alpha(customers, top),
                    "link": customers_url(
                        score__r_score__exact=r,
                        score__f_score__exact=f,
                        purchase_channel=channel_param,
                    ),
                }
            )
        rows.append({"r": r, "cells": row})
    return {"rows": rows, "has_data": bool(cells), "columns": list(range(1, 6))}


def _bars(items: list[dict[str, Any]], value_key: str = "customers") -> list[dict[str, Any]]:
    top = max((item[value_key] for item in items), default=0)
    for item in items:
        item["pct"] = round(item[value_key] / top * 100, 1) if top else 0
    return items


def _clv_label(index: int) -> str:
    low = 0 if index == 0 else CLV_EDGES[index - 1]
    if index >= len(CLV_EDGES):
        return f"≥ {low:,}"
    return f"{low:,} – {CLV_EDGES[index]:,}"


def _month_days(month: str, offset: int) -> tuple[date, date]:
    """Return the first and last day of the month `offset` months after a YYYY-MM month."""
    year, number = (int(part) for part in month.split("-"))
    index = year * 12 + number - 1 + offset
    first = date(index // 12, index % 12 + 1, 1)
    following = date((index + 1) // 12, (index + 1) % 12 + 1, 1)
    return first, following - timedelta(days=1)


def _cohorts(cells: list[ChartCell], channel_param: int | None = None) -> dict[str, Any]:
    by_month: dict[str, dict[int, int]] = defaultdict(dict)
    for cell in cells:
        by_month[cell.x][int(cell.y)] = cell.customers
    rows = []
    for month in sorted(by_month):
        counts = by_month[month]
        size = counts.get(0, 0)
        row_cells = []
        for offset in range(COHORT_MONTHS):
            if offset not in counts and offset > max(counts):
                row_cells.append(None)
                continue
            n = counts.get(offset, 0)
            pct = n / size * 100 if size else 0.0
            first, last = _month_days(month, offset)
            row_cells.append(
                {
                    "offset": offset,
                    "customers": n,
                    "pct": pct,
                    "alpha": _alpha(pct, 100),
                    # The cohort's customers who bought again in that month (same channel).
                    "link": customers_url(
                        first_purchase_month=month,
                        purchased_from=first,
                        purchased_to=last,
                        purchase_channel=channel_param,
                    )
                    if n
                    else "",
                }
            )
        rows.append(
            {
                "month": month,
                "size": size,
                "cells": row_cells,
                "link": customers_url(first_purchase_month=month, purchase_channel=channel_param),
            }
        )
    return {"rows": rows, "offsets": list(range(COHORT_MONTHS))}


def _segments_over_time(as_of_day: Any) -> dict[str, Any]:
    points = HistoryPoint.objects.filter(
        metric="rfm_segment", channel__isnull=True, day__gte=get_history_start(as_of_day)
    ).values_list("day", "key", "value")
    series: dict[str, list[tuple]] = defaultdict(list)
    for day, key, value in points:
        series[key].append((day, value))
    days = sorted({day for values in series.values() for day, _ in values})
    width, height, pad = 640, 220, 30
    top = max((v for values in series.values() for _, v in values), default=0)
    labels = dict(RFMSegment.choices)
    out = []
    for index, key in enumerate(sorted(series)):
        values = sorted(series[key])

        def x(day: Any) -> float:
            if len(days) < 2:
                return width / 2
            return pad + (days.index(day) / (len(days) - 1)) * (width - 2 * pad)

        coords = " ".join(
            f"{x(day):.1f},{height - pad - (v / top if top else 0) * (height - 2 * pad):.1f}"
            for day, v in values
        )
        out.append(
            {
                "key": key,
                # Named apart from the lifecycle stages that share some of these words.
                "label": _("%(segment)s (RFM)") % {"segment": labels.get(key, key)},
                "points": coords,
                "dots": [pair.split(",") for pair in coords.split()],
                "values": values,
                "latest": values[-1][1] if values else 0,
                "colour": SERIES_COLOURS[index % len(SERIES_COLOURS)],
                "link": customers_url(score__rfm_segment__exact=key),
            }
        )
    return {
        "series": out,
        "days": days,
        "width": width,
        "height": height,
        "top": top,
        "single_day": len(days) == 1,
    }


def _trend(cells: list[ChartCell], period: int, starts_at: Any) -> dict[str, Any]:
    """Revenue and orders per point of time, this period against the one before.

    Points before the store's first purchase are left out: a shop three days old has three
    points, not a month of zeros. With fewer than two points there is no line to draw.
    """
    days, points = get_trend_buckets(period)
    start = timezone.localtime(starts_at)
    current = {"revenue": [0.0] * points, "orders": [0] * points}
    previous = {"revenue": [0.0] * points, "orders": [0] * points}
    first_purchase = None
    for cell in cells:
        index = int(cell.x)
        if index < 0:
            first_purchase = cell.y
            continue
        target = current if cell.y == "cur" else previous
        target["revenue"][index] = round(cell.amount, 2)
        target["orders"][index] = cell.customers
    first, has_previous = 0, False
    if first_purchase:
        # The refresh wrote the first purchase in local wall-clock time, as start is.
        since = datetime.strptime(first_purchase, "%Y-%m-%d %H:%M:%S").replace(tzinfo=start.tzinfo)
        offset = (since - start).total_seconds()
        has_previous = offset <= 0
        if offset > 0:
            first = min(int(offset // (days * 86_400)), points - 1)
    labels = [(start + timedelta(days=days * i)).strftime("%m-%d") for i in range(first, points)]
    shown = len(labels) if first_purchase else 0
    return {
        "labels": labels,
        "days_per_point": days,
        "revenue": current["revenue"][first:],
        "orders": current["orders"][first:],
        "previous_revenue": previous["revenue"][first:] if has_previous else [],
        "previous_orders": previous["orders"][first:] if has_previous else [],
        "points": shown,
        "enough": shown >= 2,
        "labels_text": {
            "revenue": str(_("Revenue")),
            "orders": str(_("Orders")),
            "previous_revenue": str(_("Revenue, previous period")),
            "previous_orders": str(_("Orders, previous period")),
        },
    }


def _custom_segments() -> list[dict[str, Any]] | None:
    """Return the operator's largest segments with their latest size (None when there are none)."""
    items = []
    for segment in Segment.objects.order_by("-member_count")[:15]:
        # The bar opens the segment's members; the segment's own page if the list cannot.
        link = customers_url(segment=segment.pk)
        if not link:
            try:
                link = reverse("admin:segments_segment_change", args=[segment.pk])
            except NoReverseMatch:
                link = ""
        items.append({"label": segment.name, "customers": segment.member_count, "link": link})
    return _bars(items) if items else None


def get_state() -> tuple[str, DashboardRefresh | None]:
    """Tell whether there are customers and whether aggregates were computed."""
    refresh = DashboardRefresh.objects.filter(status=DashboardRefresh.Status.DONE).first()
    if refresh is not None and refresh.customers:
        return "ready", refresh
    if not Customer.objects.exists():
        return "no_customers", refresh
    if refresh is None:
        return "not_computed", None
    return "ready", refresh


def get_import_url() -> str:
    """Return the upload page of the importer, if the ingest app has one."""
    for name in ("admin:ingest_upload", "ingest:upload", "admin:ingest_importjob_add"):
        try:
            return reverse(name)
        except NoReverseMatch:
            continue
    return ""


def build_dashboard(filters: Filters) -> dict[str, Any]:
    """Return everything the dashboard shows for the chosen period and channel."""
    state, refresh = get_state()
    data: dict[str, Any] = {
        "state": state,
        "refresh": refresh,
        "filters": filters,
        "periods": [(p, _("Last %(days)s days") % {"days": p}) for p in PERIODS],
        "channels": list(Channel.objects.order_by("name").only("pk", "name")),
        "import_url": get_import_url(),
    }
    if state != "ready":
        return data
    channel = filters.channel
    channel_param = channel.pk if channel else None
    windows = list(
        KpiWindow.objects.filter(period_days=filters.period).filter(
            Q(channel=channel) | Q(is_current=True)
        )
    )
    current, previous = _window_pair(windows, channel)
    if current is None:
        # The channel appeared after the last refresh: it has no aggregates yet.
        current = KpiWindow(
            period_days=filters.period,
            is_current=True,
            starts_at=refresh.as_of - timedelta(days=filters.period),
            ends_at=refresh.as_of,
        )
    data["window"] = current
    data["previous_window"] = previous
    data["kpis"] = _build_kpis(filters, current, previous, refresh.as_of)

    cells: dict[str, list[ChartCell]] = defaultdict(list)
    for cell in ChartCell.objects.filter(
        channel=channel, period_days__in=(0, filters.period)
    ).order_by("chart", "position"):
        cells[cell.chart].append(cell)
    data["rfm"] = _rfm(cells[ChartCell.Chart.RFM], channel_param)

    stage_labels = dict(LifecycleStage.choices)
    stage_counts = {c.x: c for c in cells[ChartCell.Chart.STAGES]}
    data["stages"] = _bars(
        [
            {
                "key": key,
                "label": stage_labels[key],
                "customers": stage_counts[key].customers,
                "revenue": stage_counts[key].amount,
                "link": customers_url(
                    score__lifecycle_stage__exact=key, purchase_channel=channel_param
                ),
            }
            for key in LifecycleStage.values
            if key in stage_counts
        ]
    )
    data["flows"] = _bars(
        [
            {
                "from_label": stage_labels.get(c.x, c.x),
                "to_label": stage_labels.get(c.y, c.y),
                "from_key": c.x,
                "to_key": c.y,
                "customers": c.customers,
                "link": customers_url(
                    score__lifecycle_stage__exact=c.y, purchase_channel=channel_param
                ),
            }
            for c in cells[ChartCell.Chart.FLOWS][:15]
        ]
    )
    data["cohorts"] = _cohorts(cells[ChartCell.Chart.COHORTS], channel_param)
    clv_edges = (0, *CLV_EDGES)
    data["clv"] = _bars(
        [
            {
                "label": _clv_label(int(c.x)),
                "customers": c.customers,
                "amount": c.amount,
                "link": customers_url(
                    score__clv_from=clv_edges[int(c.x)],
                    score__clv_to=CLV_EDGES[int(c.x)] - 0.01 if int(c.x) < len(CLV_EDGES) else None,
                    purchase_channel=channel_param,
                ),
            }
            for c in cells[ChartCell.Chart.CLV]
        ]
    )
    data["churn"] = _bars(
        [
            {
                "label": f"{int(c.x) * 100 // CHURN_BINS}–{(int(c.x) + 1) * 100 // CHURN_BINS}%",
                "customers": c.customers,
                "amount": c.amount,
                # The list filters on the percentile; the refresh stored the bin's percentile range.
                "link": customers_url(
                    score__churn_percentile_from=c.y.partition(":")[0],
                    score__churn_percentile_to=c.y.partition(":")[2],
                    purchase_channel=channel_param,
                ),
            }
            for c in cells[ChartCell.Chart.CHURN]
        ]
    )
    start = timezone.localtime(current.starts_at).date()
    end = timezone.localtime(current.ends_at).date()
    data["channel_breakdown"] = _bars(
        sorted(
            [
                {
                    "label": w.channel.name if w.channel_id else "",
                    "channel_id": w.channel_id,
                    "customers": w.active_customers,
                    "revenue": w.revenue,
                    "purchases": w.purchases,
                    "selected": w.channel_id == channel_param,
                    "link": customers_url(
                        purchase_channel=w.channel_id, purchased_from=start, purchased_to=end
                    ),
                }
                for w in KpiWindow.objects.filter(
                    period_days=filters.period, is_current=True, channel__isnull=False
                ).select_related("channel")
            ],
            key=lambda item: -item["revenue"],
        ),
        "revenue",
    )
    unknown = _("(not given)")
    data["provinces"] = _bars(
        [
            {
                "label": c.x or unknown,
                "customers": c.customers,
                "revenue": c.amount,
                "link": customers_url(province=c.x, purchase_channel=channel_param) if c.x else "",
            }
            for c in cells[ChartCell.Chart.PROVINCE]
        ],
        "revenue",
    )
    data["cities"] = _bars(
        [
            {
                "label": c.x or unknown,
                "customers": c.customers,
                "revenue": c.amount,
                "link": customers_url(city=c.x, purchase_channel=channel_param) if c.x else "",
            }
            for c in cells[ChartCell.Chart.CITY]
        ],
        "revenue",
    )
    data["trend"] = _trend(cells[ChartCell.Chart.TREND], filters.period, current.starts_at)
    as_of_day = timezone.localtime(refresh.as_of).date()
    data["segments_over_time"] = _segments_over_time(as_of_day)
    data["custom_segments"] = _custom_segments()
    data["period_has_purchases"] = current.purchases > 0
    return data
