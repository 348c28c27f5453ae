"""The sales report page and its Excel and PDF files: forecast, accuracy, funnel, win rates."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from kequn.sales import selectors
from kequn.sales.models import Pipeline


def _month(value: str | None) -> date:
    try:
        year, month = (value or "").split("-")[:2]
        return date(int(year), int(month), 1)
    except ValueError:
        return selectors.month_start(timezone.localdate())


def build_report(user: Any, params: Any) -> dict[str, Any]:
    """Return the report's tables for the user's scope (params: start, months, quarter, pipeline)."""
    start = _month(params.get("start"))
    try:
        months = min(max(int(params.get("months", 6)), 1), 24)
    except ValueError:
        months = 6
    by_quarter = params.get("quarter") == "1"
    pipelines = list(Pipeline.objects.filter(is_active=True))
    chosen = next((p for p in pipelines if str(p.pk) == params.get("pipeline")), None)
    chosen = chosen or (pipelines[0] if pipelines else None)
    forecast = selectors.get_forecast(user, start=start, months=months, by_quarter=by_quarter)
    tables: list[tuple[str, list[str], list[list[Any]]]] = [
        (
            _("Forecast"),
            [
                _("Period"),
                _("Pipeline"),
                _("Weighted"),
                _("Best case"),
                _("Commit"),
                _("Won"),
                _("Quota"),
                _("Attainment"),
            ],
            [
                [
                    r.period,
                    r.pipeline,
                    r.weighted,
                    r.best_case,
                    r.commit,
                    r.won,
                    r.quota,
                    None if r.attainment is None else round(r.attainment, 3),
                ]
                for r in forecast
            ],
        ),
        (
            _("Forecast accuracy"),
            [_("Month"), _("Forecast at the start of the month"), _("Won"), _("Accuracy")],
            [
                [r.month, r.forecast, r.won, None if r.accuracy is None else round(r.accuracy, 3)]
                for r in selectors.get_forecast_accuracy(user)
            ],
        ),
    ]
    if chosen is not None:
        tables.append(
            (
                _("Funnel"),
                [_("Stage"), _("Deals reaching it"), _("Moving on"), _("Average days in stage")],
                [
                    [
                        s.stage.name,
                        s.reached,
                        None if s.conversion is None else round(s.conversion, 3),
                        None if s.avg_days is None else round(s.avg_days, 1),
                    ]
                    for s in selectors.get_funnel(user, chosen)
                ],
            )
        )
    velocity = selectors.get_velocity(user, chosen)
    tables.append(
        (
            _("Velocity"),
            [
                _("Open deals"),
                _("Average won amount"),
                _("Win rate"),
                _("Cycle (days)"),
                _("Velocity per day"),
            ],
            [
                [
                    velocity.open_deals,
                    velocity.average_won_amount,
                    None if velocity.win_rate is None else round(velocity.win_rate, 3),
                    None if velocity.cycle_days is None else round(velocity.cycle_days, 1),
                    velocity.per_day,
                ]
            ],
        )
    )
    for key, title in (
        ("source", _("Win rate by source")),
        ("owner", _("Win rate by rep")),
        ("product", _("Win rate by product")),
    ):
        tables.append(
            (
                title,
                [_("Group"), _("Won"), _("Lost"), _("Win rate")],
                [
                    [r.key, r.won, r.lost, None if r.rate is None else round(r.rate, 3)]
                    for r in selectors.get_win_rates(user, key)[:50]
                ],
            )
        )
    return {
        "tables": tables,
        "start": f"{start:%Y-%m}",
        "months": months,
        "quarter": by_quarter,
        "pipelines": pipelines,
        "pipeline": chosen,
    }
