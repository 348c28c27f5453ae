"""The refresh chain: scores first, then what is built on them (segments, dashboard)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from kequn.dashboard.services import refresh_dashboard
from kequn.recommend.services import train_recommendations
from kequn.scoring.services import RefreshResult, refresh_scores
from kequn.scoring.spark_refresh import refresh_scores_on_spark
from kequn.security.actors import Actor
from kequn.segments.services import refresh_all

T = TypeVar("T")


@dataclass
class PipelineResult:
    customers: int = 0
    steps: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def refresh_analytics(
    *,
    by: Actor,
    progress: bool = False,
    recommendations: bool = False,
    engine: str = "duckdb",
    spark_master: str | None = None,
    orders_parquet: str | None = None,
    full: bool = False,
) -> PipelineResult:
    """Refresh scores, then segments and tag rules, then the dashboard (and recommendations).

    ``engine`` "spark" scores on Spark (kequn.scoring.spark_refresh) at ``spark_master``.
    ``full`` recomputes every customer's purchase summary from all orders (see refresh_scores).
    """
    result = PipelineResult()
    say: Callable[[str], None] = (
        (lambda msg: print(msg, file=sys.stderr)) if progress else (lambda msg: None)
    )

    def step(name: str, run: Callable[[], T]) -> T:
        started = time.perf_counter()
        say(f"{name}…")
        value = run()
        result.steps[name] = round(time.perf_counter() - started, 2)
        return value

    def score() -> RefreshResult:
        if engine == "spark":
            return refresh_scores_on_spark(
                master=spark_master, orders_parquet=orders_parquet, progress=progress, by=by
            )
        return refresh_scores(progress=progress, full=full, by=by)

    scores = step("scores", score)
    result.customers = scores.customers
    if scores.message:
        result.notes.append(scores.message)
    segments = step("segments", lambda: refresh_all(by=by))
    # A broken segment rule disables that segment only; the chain goes on and says so.
    result.notes.extend(f"disabled {line}" for line in segments["disabled"])
    step("dashboard", lambda: refresh_dashboard(by=by))
    if recommendations:
        step("recommendations", lambda: train_recommendations(progress=progress, by=by))
    return result
