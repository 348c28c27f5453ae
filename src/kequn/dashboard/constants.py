"""What the dashboard shows, fixed in code: periods, histogram edges, chart titles.

The bottom of the dashboard's modules: constants → aggregates → queries → exports → reports →
services → tasks. Everything here is plain data and arithmetic; it imports no other module of
the dashboard.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.utils.translation import gettext_lazy

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

CHART_TITLES = {
    "trend": gettext_lazy("Revenue and orders over time"),
    "rfm": gettext_lazy("RFM grid: recency × frequency"),
    "stages": gettext_lazy("Lifecycle stages"),
    "flows": gettext_lazy("Moves between stages"),
    "cohorts": gettext_lazy("Cohort retention"),
    "clv": gettext_lazy("Customer lifetime value"),
    "churn": gettext_lazy("Churn risk"),
    "channel_breakdown": gettext_lazy("Revenue by store or channel"),
    "provinces": gettext_lazy("Revenue by province"),
    "cities": gettext_lazy("Revenue by city (top 20)"),
    "segments_over_time": gettext_lazy("RFM segment sizes over time"),
}


def get_trend_buckets(period: int) -> tuple[int, int]:
    """Return (days per point, number of points) of the revenue-over-time chart of a period."""
    days = TREND_BUCKET_DAYS.get(period, max(1, period // 30))
    return days, -(-period // days)


def get_history_start(day: date) -> date:
    """Return the first day shown in charts over time that end on the given day."""
    return day - timedelta(days=HISTORY_DAYS)
