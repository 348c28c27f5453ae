"""Reads of sales data: the board, forecast, funnel, velocity, win rates and due tasks.

Every read takes the viewing user and stays within their scope (kequn.sales.access). The
heavy ones aggregate in the database, so they stay fast over a hundred thousand deals.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import (
    Avg,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import timezone

from kequn.sales.access import get_visible_owner_ids, scope_owned
from kequn.sales.models import (
    Deal,
    DealProduct,
    DealStageChange,
    ForecastSnapshot,
    Pipeline,
    Quota,
    Stage,
    Task,
    Team,
)

ZERO = Decimal(0)
MONEY = DecimalField(max_digits=20, decimal_places=2)
# amount × (the deal's probability, else its stage's) / 100, summed in the database.
WEIGHTED = ExpressionWrapper(
    Coalesce(F("amount"), Value(ZERO), output_field=MONEY)
    * Coalesce(F("probability"), F("stage__probability"))
    / Value(Decimal(100)),
    output_field=MONEY,
)


@dataclass
class BoardFilters:
    pipeline_id: int | None = None
    owner_id: int | None = None
    team_id: int | None = None
    close_month: date | None = None  # any day of the month
    q: str = ""


@dataclass
class Column:
    stage: Stage
    count: int = 0
    total: Decimal = ZERO
    weighted: Decimal = ZERO
    deals: list[Deal] = field(default_factory=list)

    @property
    def more(self) -> int:
        """Return how many deals of the column are not shown as cards."""
        return self.count - len(self.deals)


def scope_deals(user: Any, queryset: QuerySet | None = None) -> QuerySet:
    """Return the deals the user may see."""
    return scope_owned(user, Deal.objects.all() if queryset is None else queryset)


def get_default_pipeline() -> Pipeline | None:
    """Return the first active pipeline."""
    return Pipeline.objects.filter(is_active=True).order_by("position", "id").first()


def filter_deals(user: Any, filters: BoardFilters) -> QuerySet:
    """Return the user's deals narrowed by the board's filters."""
    deals = scope_deals(user)
    if filters.pipeline_id:
        deals = deals.filter(pipeline_id=filters.pipeline_id)
    if filters.owner_id:
        deals = deals.filter(owner_id=filters.owner_id)
    if filters.team_id:
        deals = deals.filter(team_id=filters.team_id)
    if filters.close_month:
        start = filters.close_month.replace(day=1)
        end = date(start.year + start.month // 12, start.month % 12 + 1, 1)
        deals = deals.filter(close_date__gte=start, close_date__lt=end)
    if filters.q:
        deals = deals.filter(name__icontains=filters.q)
    return deals


def get_board(user: Any, filters: BoardFilters, cards_per_column: int = 50) -> list[Column]:
    """Return the pipeline's columns: count, total and weighted amount, and the first cards.

    Closed columns show the deals closed in the filtered month (or the last 30 days).
    """
    pipeline_id = filters.pipeline_id
    if pipeline_id is None:
        default = get_default_pipeline()
        if default is None:
            return []
        pipeline_id = default.pk
    stages = list(Stage.objects.filter(pipeline_id=pipeline_id).order_by("position", "id"))
    filters = BoardFilters(**{**filters.__dict__, "pipeline_id": pipeline_id})
    deals = filter_deals(user, filters)
    if not filters.close_month:
        recent = timezone.now() - timedelta(days=30)
        deals = deals.filter(Q(status=Deal.Status.OPEN) | Q(closed_at__gte=recent))
    columns = {stage.pk: Column(stage) for stage in stages}
    totals = deals.values("stage_id").annotate(
        n=Count("id"), total=Sum("amount"), weighted=Sum(WEIGHTED)
    )
    for row in totals.order_by():
        column = columns.get(row["stage_id"])
        if column is not None:
            column.count = row["n"]
            column.total = Decimal(row["total"] or ZERO).quantize(Decimal("0.01"))
            column.weighted = Decimal(row["weighted"] or ZERO).quantize(Decimal("0.01"))
    fields = ("id", "name", "amount", "currency", "close_date", "probability", "stage_id",
              "status", "account__name", "owner__username", "stage__probability")  # fmt: skip
    for column in columns.values():
        if column.count:
            column.deals = list(
                deals.filter(stage_id=column.stage.pk)
                .select_related("account", "owner", "stage")
                .only(*fields)
                .order_by("close_date", "id")[:cards_per_column]
            )
    return [columns[s.pk] for s in stages]


# --- forecast ---------------------------------------------------------------------------


def month_start(day: date) -> date:
    """Return the first day of the day's month."""
    return day.replace(day=1)


def add_month(day: date, months: int = 1) -> date:
    """Return the first day of the month `months` after the day's month."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def quarter_of(day: date) -> str:
    """Return the quarter's label, e.g. 2026-Q4."""
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


@dataclass
class ForecastRow:
    period: str
    pipeline: Decimal = ZERO  # every open deal's amount
    weighted: Decimal = ZERO  # open deals × probability
    best_case: Decimal = ZERO  # won + commit + best-case categories
    commit: Decimal = ZERO  # won + commit category
    won: Decimal = ZERO
    quota: Decimal | None = None
    deals: int = 0

    @property
    def attainment(self) -> float | None:
        """Return won / quota, or None without a quota."""
        return float(self.won / self.quota) if self.quota else None


def _owner_ids_for(user: Any, owner_id: int | None, team_id: int | None) -> set[int] | None:
    owners = get_visible_owner_ids(user)
    chosen: set[int] | None = owners
    if team_id:
        members = set(
            Team.members.through.objects.filter(team_id=team_id).values_list("user_id", flat=True)
        )
        chosen = members if chosen is None else chosen & members
    if owner_id:
        chosen = {owner_id} if chosen is None else chosen & {owner_id}
    return chosen


def get_forecast(
    user: Any,
    *,
    start: date,
    months: int = 3,
    by_quarter: bool = False,
    owner_id: int | None = None,
    team_id: int | None = None,
    pipeline_id: int | None = None,
) -> list[ForecastRow]:
    """Return the forecast per month (or quarter) from `start`: weighted, commit, best case, won.

    Open deals count in the month of their expected close date, won deals in that of their
    close date; quotas of the reps (or of the team when one is chosen) are added up.
    """
    first = month_start(start)
    end = add_month(first, months)
    owners = _owner_ids_for(user, owner_id, team_id)
    deals = Deal.objects.filter(close_date__gte=first, close_date__lt=end)
    if owners is not None:
        deals = deals.filter(owner_id__in=owners)
    if pipeline_id:
        deals = deals.filter(pipeline_id=pipeline_id)
    # Grouped by day and stage, with no join and no per-row month function (SQLite runs that
    # in Python): a year is at most a few thousand groups, bucketed into months below.
    rows = (
        deals.exclude(status=Deal.Status.LOST)
        .values("close_date", "status", "stage_id")
        .annotate(
            n=Count("id"),
            total=Sum("amount"),
            plain=Sum("amount", filter=Q(probability__isnull=True)),
            overridden=Sum(F("amount") * F("probability"), filter=Q(probability__isnull=False)),
        )
        .order_by()
    )
    stages: dict[int, int] = {}
    categories: dict[int, str] = {}
    for stage_id, probability, forecast in Stage.objects.values_list(
        "id", "probability", "forecast_category"
    ):
        stages[stage_id], categories[stage_id] = probability, forecast
    periods: dict[str, ForecastRow] = {}

    def label(day: date) -> str:
        return quarter_of(day) if by_quarter else f"{day:%Y-%m}"

    month = first
    while month < end:
        periods.setdefault(label(month), ForecastRow(label(month)))
        month = add_month(month)
    for row in rows:
        target = periods[label(row["close_date"])]
        total = Decimal(row["total"] or ZERO)
        target.deals += row["n"]
        if row["status"] == Deal.Status.WON:
            target.won += total
            target.commit += total
            target.best_case += total
            continue
        target.pipeline += total
        plain = Decimal(row["plain"] or ZERO) * stages.get(row["stage_id"], 0) / 100
        target.weighted += plain + Decimal(row["overridden"] or ZERO) / 100
        category = categories.get(row["stage_id"])
        if category == Stage.Forecast.COMMIT:
            target.commit += total
            target.best_case += total
        elif category == Stage.Forecast.BEST_CASE:
            target.best_case += total
    quotas = Quota.objects.filter(month__gte=first, month__lt=end)
    if team_id:
        quotas = quotas.filter(team_id=team_id)
    else:
        quotas = quotas.filter(owner__isnull=False)
        if owners is not None:
            quotas = quotas.filter(owner_id__in=owners)
    for month_value, amount in quotas.values_list("month", "amount"):
        target = periods[label(month_value)]
        target.quota = (target.quota or ZERO) + amount
    for target in periods.values():
        target.weighted = target.weighted.quantize(Decimal("0.01"))
    return list(periods.values())


@dataclass
class AccuracyRow:
    month: str
    forecast: Decimal
    won: Decimal

    @property
    def accuracy(self) -> float | None:
        """Return 1 − |forecast − won| / won (1 is perfect), or None when nothing was won."""
        if not self.won:
            return None
        return 1 - abs(float(self.forecast - self.won)) / float(self.won)


def get_forecast_accuracy(
    user: Any, *, months: int = 6, today: date | None = None
) -> list[AccuracyRow]:
    """Compare each past month's first forecast snapshot (weighted) with what was later won."""
    today = today or timezone.localdate()
    end = month_start(today)
    first = add_month(end, -months)
    owners = get_visible_owner_ids(user)
    snapshots = ForecastSnapshot.objects.filter(month__gte=first, month__lt=end)
    if owners is not None:
        snapshots = snapshots.filter(owner_id__in=owners)
    else:
        snapshots = snapshots.filter(owner__isnull=False)
    earliest: dict[tuple[date, int | None], tuple[date, Decimal]] = {}
    for month, owner, taken, weighted in snapshots.values_list(
        "month", "owner_id", "taken_on", "weighted"
    ):
        key = (month, owner)
        if key not in earliest or taken < earliest[key][0]:
            earliest[key] = (taken, weighted)
    forecast: dict[date, Decimal] = defaultdict(lambda: ZERO)
    for (month, _owner), (_taken, weighted) in earliest.items():
        forecast[month] += weighted
    won = scope_deals(user).filter(
        status=Deal.Status.WON, close_date__gte=first, close_date__lt=end
    )
    won_by_month = {
        (m.date() if isinstance(m, datetime) else m): total or ZERO
        for m, total in won.annotate(m=TruncMonth("close_date"))
        .values_list("m")
        .annotate(t=Sum("amount"))
        .values_list("m", "t")
        .order_by()
    }
    rows = []
    month = first
    while month < end:
        if month in forecast:
            rows.append(
                AccuracyRow(f"{month:%Y-%m}", forecast[month], won_by_month.get(month, ZERO))
            )
        month = add_month(month)
    return rows


# --- funnel, velocity, win rates ---------------------------------------------------------


@dataclass
class FunnelStep:
    stage: Stage
    reached: int
    conversion: float | None  # share of the deals reaching this stage that reach the next
    avg_days: float | None  # average days a deal spent in this stage before leaving it


def get_funnel(user: Any, pipeline: Pipeline) -> list[FunnelStep]:
    """Return, per open stage in order, how many deals reached it and moved on, and how fast."""
    stages = [s for s in pipeline.stages.order_by("position", "id") if not s.is_lost]
    deals = scope_deals(user).filter(pipeline=pipeline)
    changes = DealStageChange.objects.filter(deal__in=deals.values("id"))
    reached_stage: dict[int, set[int]] = defaultdict(set)
    for deal_id, stage_id in changes.values_list("deal_id", "to_stage_id"):
        reached_stage[stage_id].add(deal_id)
    position = {s.pk: i for i, s in enumerate(stages)}
    # A deal that reached a later stage passed every earlier one (stages may be skipped).
    furthest: dict[int, int] = {}
    for stage_id, ids in reached_stage.items():
        if stage_id in position:
            for deal_id in ids:
                furthest[deal_id] = max(furthest.get(deal_id, -1), position[stage_id])
    counts = [sum(1 for p in furthest.values() if p >= i) for i in range(len(stages))]
    days = dict(
        changes.exclude(from_stage=F("to_stage"))
        .filter(days_in_previous__isnull=False)
        .values("from_stage_id")
        .annotate(d=Avg("days_in_previous"))
        .values_list("from_stage_id", "d")
        .order_by()
    )
    steps = []
    for i, stage in enumerate(stages):
        following = counts[i + 1] if i + 1 < len(stages) else None
        conversion = following / counts[i] if following is not None and counts[i] else None
        steps.append(FunnelStep(stage, counts[i], conversion, days.get(stage.pk)))
    return steps


@dataclass
class Velocity:
    open_deals: int
    average_won_amount: Decimal
    win_rate: float | None
    cycle_days: float | None

    @property
    def per_day(self) -> Decimal | None:
        """Return sales velocity: open deals × average won amount × win rate / cycle days."""
        if not self.win_rate or not self.cycle_days:
            return None
        value = self.open_deals * float(self.average_won_amount) * self.win_rate / self.cycle_days
        return Decimal(str(round(value, 2)))


def get_velocity(user: Any, pipeline: Pipeline | None = None) -> Velocity:
    """Return the figures of sales velocity over the user's deals."""
    deals = scope_deals(user)
    if pipeline is not None:
        deals = deals.filter(pipeline=pipeline)
    stats = deals.aggregate(
        open=Count("id", filter=Q(status=Deal.Status.OPEN)),
        won=Count("id", filter=Q(status=Deal.Status.WON)),
        lost=Count("id", filter=Q(status=Deal.Status.LOST)),
        won_amount=Avg("amount", filter=Q(status=Deal.Status.WON)),
    )
    closed = stats["won"] + stats["lost"]
    cycles = [
        (closed_at - created).total_seconds() / 86400
        for created, closed_at in deals.filter(status=Deal.Status.WON).values_list(
            "created_at", "closed_at"
        )[:20000]
        if closed_at is not None
    ]
    return Velocity(
        open_deals=stats["open"],
        average_won_amount=Decimal(stats["won_amount"] or 0).quantize(Decimal("0.01")),
        win_rate=stats["won"] / closed if closed else None,
        cycle_days=sum(cycles) / len(cycles) if cycles else None,
    )


@dataclass
class WinRate:
    key: str
    won: int
    lost: int

    @property
    def rate(self) -> float | None:
        """Return won / (won + lost)."""
        return self.won / (self.won + self.lost) if self.won + self.lost else None


def get_win_rates(user: Any, by: str) -> list[WinRate]:
    """Return the win rate of closed deals grouped by "source", "owner" or "product"."""
    deals = scope_deals(user).filter(status__in=[Deal.Status.WON, Deal.Status.LOST])
    if by == "product":
        rows = (
            DealProduct.objects.filter(deal__in=deals.values("id"))
            .values("product__name", "deal__status")
            .annotate(n=Count("deal_id", distinct=True))
            .values_list("product__name", "deal__status", "n")
            .order_by()
        )
    elif by in ("source", "owner"):
        column = "source" if by == "source" else "owner__username"
        rows = (
            deals.values(column, "status")
            .annotate(n=Count("id"))
            .values_list(column, "status", "n")
            .order_by()
        )
    else:
        raise ValueError(f"win rates by {by!r}: use source, owner or product")
    rates: dict[str, WinRate] = {}
    for key, status, n in rows:
        name = key or "—"
        rate = rates.setdefault(name, WinRate(name, 0, 0))
        if status == Deal.Status.WON:
            rate.won += n
        else:
            rate.lost += n
    return sorted(rates.values(), key=lambda r: (-(r.won + r.lost), r.key))


# --- the dashboard's panel -------------------------------------------------------------


@dataclass
class StageBar:
    label: str
    deals: int
    revenue: Decimal  # the open amount (named for the dashboard's bar template)
    weighted: Decimal
    pct: float = 0.0
    link: str = ""


@dataclass
class SalesPanel:
    month: ForecastRow
    quarter: ForecastRow
    won: int
    lost: int
    stages: list[StageBar]

    @property
    def win_rate(self) -> float | None:
        """Return won / closed over the panel's window, or None when nothing closed."""
        return self.won / (self.won + self.lost) if self.won + self.lost else None


WIN_RATE_DAYS = 365


def get_dashboard_panel(user: Any, *, today: date | None = None) -> SalesPanel:
    """Return the dashboard's sales figures in the user's scope.

    This month's and this quarter's forecast against quota, the win rate of the deals closed
    in the last year, and the open pipeline by stage.
    """
    today = today or timezone.localdate()
    quarter_start = date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
    months = get_forecast(user, start=quarter_start, months=3)
    month = next(r for r in months if r.period == f"{today:%Y-%m}")
    quarter = ForecastRow(quarter_of(today))
    for row in months:
        for name in ("pipeline", "weighted", "best_case", "commit", "won", "deals"):
            setattr(quarter, name, getattr(quarter, name) + getattr(row, name))
        if row.quota is not None:
            quarter.quota = (quarter.quota or ZERO) + row.quota
    since = timezone.now() - timedelta(days=WIN_RATE_DAYS)
    deals = scope_deals(user)
    closed = deals.filter(closed_at__gte=since).aggregate(
        won=Count("id", filter=Q(status=Deal.Status.WON)),
        lost=Count("id", filter=Q(status=Deal.Status.LOST)),
    )
    rows = (
        deals.filter(status=Deal.Status.OPEN, pipeline__is_active=True)
        .values("pipeline_id", "pipeline__name", "pipeline__position", "stage__position",
                "stage_id", "stage__name")
        .annotate(n=Count("id"), total=Sum("amount"), weighted=Sum(WEIGHTED))
        .order_by("pipeline__position", "pipeline_id", "stage__position", "stage_id")
    )  # fmt: skip
    pipelines = {row["pipeline_id"] for row in rows}
    bars = [
        StageBar(
            label=f"{row['stage__name']}"
            if len(pipelines) == 1
            else f"{row['pipeline__name']} · {row['stage__name']}",
            deals=row["n"],
            revenue=Decimal(row["total"] or ZERO).quantize(Decimal("0.01")),
            weighted=Decimal(row["weighted"] or ZERO).quantize(Decimal("0.01")),
            link=f"?pipeline={row['pipeline_id']}",
        )
        for row in rows
    ]
    top = max((b.revenue for b in bars), default=ZERO)
    for bar in bars:
        bar.pct = float(bar.revenue / top * 100) if top else 0.0
    return SalesPanel(month, quarter, closed["won"], closed["lost"], bars)


# --- tasks --------------------------------------------------------------------------------


def get_overdue_tasks(user: Any, now: datetime | None = None, limit: int = 20) -> QuerySet:
    """Return the user's own open tasks past their due time, oldest first."""
    now = now or timezone.now()
    if user is None or not getattr(user, "pk", None):
        return Task.objects.none()
    return (
        Task.objects.filter(owner_id=user.pk, done_at__isnull=True, due_at__lt=now)
        .select_related("account", "deal")
        .order_by("due_at", "id")[:limit]
    )


def get_due_reminders(user: Any, now: datetime | None = None, limit: int = 20) -> QuerySet:
    """Return the user's open tasks whose reminder time has come and that are not yet due."""
    now = now or timezone.now()
    if user is None or not getattr(user, "pk", None):
        return Task.objects.none()
    return (
        Task.objects.filter(
            owner_id=user.pk, done_at__isnull=True, remind_at__lte=now, due_at__gte=now
        )
        .select_related("account", "deal")
        .order_by("due_at", "id")[:limit]
    )
