"""Lifecycle stage per customer, judged against each customer's own purchase rhythm."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

STAGES = ("prospect", "new", "active", "loyal", "at_risk", "churned", "reactivated")
STAGE_LABELS: dict[str, tuple[str, str]] = {
    "prospect": ("Prospect", "潜在客户"),
    "new": ("New", "新客户"),
    "active": ("Active", "活跃客户"),
    "loyal": ("Loyal", "忠诚客户"),
    "at_risk": ("At risk", "有流失风险"),
    "churned": ("Churned", "已流失"),
    "reactivated": ("Reactivated", "回流客户"),
}


@dataclass(frozen=True)
class LifecycleThresholds:
    """Thresholds for lifecycle stages; gaps are multiples of the customer's usual gap.

    The usual gap is the customer's median inter-purchase gap in days; customers with
    fewer than ``min_gaps_for_own_rhythm`` gaps use the population median gap instead
    (or ``default_gap_days`` when nobody has bought twice).
    """

    at_risk_gap_multiple: float = 3.0
    churned_gap_multiple: float = 4.0
    at_risk_p_alive: float = 0.4
    churned_p_alive: float = 0.15
    reactivated_gap_multiple: float = 3.0
    new_days: float | None = None  # None: one population usual gap (at least 30 days)
    new_max_purchases: int = 2
    loyal_min_purchases: int = 4
    loyal_max_gap_multiple: float = 1.5
    min_gaps_for_own_rhythm: int = 2
    default_gap_days: float = 30.0


def assign_lifecycle_stages(
    summary: pd.DataFrame,
    *,
    p_alive: np.ndarray | None = None,
    customers: Any = None,
    thresholds: LifecycleThresholds | None = None,
    population_gap_days: float | None = None,
) -> pd.DataFrame:
    """Return customer_id, lifecycle_stage and its labels; rules are checked in this order.

    1. prospect — listed in ``customers`` but no purchase yet;
    2. churned — silent for ``churned_gap_multiple`` usual gaps, or P(alive) < ``churned_p_alive``;
    3. at_risk — silent for ``at_risk_gap_multiple`` usual gaps, or P(alive) < ``at_risk_p_alive``;
    4. reactivated — the latest purchase came after a gap of ``reactivated_gap_multiple`` usual gaps;
    5. new — first purchase within ``new_days`` and at most ``new_max_purchases`` purchases;
    6. loyal — at least ``loyal_min_purchases`` purchases and buying on rhythm;
    7. active — everyone else who has bought.

    ``summary`` needs customer_id, frequency, recency_days, T_days and, for rhythm,
    median_gap_days and last_gap_days (from ``summarize_customers``).
    ``population_gap_days`` is the whole base's median gap when ``summary`` is a batch of it.
    """
    th = thresholds or LifecycleThresholds()
    n = len(summary)
    freq = summary["frequency"].to_numpy(float)
    recency = summary["recency_days"].to_numpy(float)
    tenure = summary["T_days"].to_numpy(float)
    median_gap = _column(summary, "median_gap_days", n)
    last_gap = _column(summary, "last_gap_days", n)
    gaps = np.maximum(freq - 1, 0)
    finite = np.isfinite(median_gap) & (median_gap > 0)
    population_gap = float(np.median(median_gap[finite])) if finite.any() else th.default_gap_days
    if population_gap_days is not None:
        population_gap = population_gap_days
    own = finite & (gaps >= th.min_gaps_for_own_rhythm)
    usual = np.where(own, median_gap, population_gap)
    ratio = recency / np.maximum(usual, 1.0)
    alive = np.ones(n) if p_alive is None else np.nan_to_num(np.asarray(p_alive, float), nan=1.0)
    new_days = th.new_days if th.new_days is not None else max(30.0, population_gap)

    stage = np.full(n, "active", dtype=object)
    # Assign in reverse priority so that higher-priority rules overwrite lower ones.
    loyal = (freq >= th.loyal_min_purchases) & (ratio <= th.loyal_max_gap_multiple)
    stage[loyal] = "loyal"
    stage[(tenure <= new_days) & (freq <= th.new_max_purchases)] = "new"
    # Judge the comeback gap against the rhythm *before* it (population gap when too few gaps).
    prior = np.where(gaps - 1 >= th.min_gaps_for_own_rhythm, median_gap, population_gap)
    comeback = (
        (freq >= 2) & np.isfinite(last_gap) & (last_gap >= th.reactivated_gap_multiple * prior)
    )
    stage[comeback] = "reactivated"
    stage[(ratio >= th.at_risk_gap_multiple) | (alive < th.at_risk_p_alive)] = "at_risk"
    stage[(ratio >= th.churned_gap_multiple) | (alive < th.churned_p_alive)] = "churned"
    out = pd.DataFrame(
        {
            "customer_id": summary["customer_id"].to_numpy(),
            "lifecycle_stage": stage,
            "usual_gap_days": usual,
            "gap_ratio": ratio,
        }
    )
    if customers is not None:
        ids = _customer_ids(customers, like=out["customer_id"])
        missing = pd.Index(ids).difference(pd.Index(out["customer_id"]))
        if len(missing):
            extra = pd.DataFrame(
                {
                    "customer_id": missing.to_numpy(),
                    "lifecycle_stage": "prospect",
                    "usual_gap_days": np.nan,
                    "gap_ratio": np.nan,
                }
            )
            out = pd.concat([out, extra], ignore_index=True)
    out["lifecycle_stage_en"] = out["lifecycle_stage"].map(
        {k: v[0] for k, v in STAGE_LABELS.items()}
    )
    out["lifecycle_stage_zh"] = out["lifecycle_stage"].map(
        {k: v[1] for k, v in STAGE_LABELS.items()}
    )
    return out.sort_values("customer_id", kind="stable").reset_index(drop=True)


def _column(df: pd.DataFrame, name: str, n: int) -> np.ndarray:
    return np.asarray(df[name].to_numpy(float)) if name in df else np.full(n, np.nan)


def _customer_ids(customers: Any, like: Any = None) -> np.ndarray:
    """Return the ids of ``customers`` as text, or as int64 when they and ``like`` are integers.

    Integer ids (the store's primary keys) are kept as integers only when the scored ids
    are integers too, so both sides of the prospect comparison always have one type.
    """
    if isinstance(customers, pd.DataFrame):
        values = customers["customer_id"].to_numpy()
    elif hasattr(customers, "column_names"):  # pyarrow Table
        values = np.asarray(customers["customer_id"].to_pylist(), dtype=object)
    else:
        values = np.asarray(customers if hasattr(customers, "dtype") else list(customers))
    integers = values.dtype.kind in "iu" or (values.dtype == object and len(values) == 0)
    if like is not None and np.asarray(like).dtype.kind in "iu" and integers:
        return np.asarray(values.astype(np.int64))
    return np.asarray(values.astype(object).astype(str))


def diff_lifecycle_stages(
    previous: pd.DataFrame | None, current: pd.DataFrame, at: datetime
) -> pd.DataFrame:
    """Return stage changes (customer_id, from_stage, to_stage, at); new customers have from_stage None."""
    cur = current[["customer_id", "lifecycle_stage"]].rename(
        columns={"lifecycle_stage": "to_stage"}
    )
    if previous is None or len(previous) == 0:
        merged = cur.assign(from_stage=None)
    else:
        prev = previous[["customer_id", "lifecycle_stage"]].rename(
            columns={"lifecycle_stage": "from_stage"}
        )
        merged = cur.merge(prev, on="customer_id", how="left")
        merged["from_stage"] = (
            merged["from_stage"].astype(object).where(merged["from_stage"].notna(), None)
        )
    changed = merged[merged["from_stage"].ne(merged["to_stage"]) | merged["from_stage"].isna()]
    out = changed[["customer_id", "from_stage", "to_stage"]].copy()
    out["at"] = at
    return out.sort_values("customer_id", kind="stable").reset_index(drop=True)
