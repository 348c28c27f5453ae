"""RFM: recency, frequency and monetary values, 1–5 quintile scores and named segments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

# Recency–frequency grid (the widely used 10-segment map). Each rule gives inclusive
# score ranges; the first rule that matches wins, so order matters for custom maps.
DEFAULT_SEGMENT_RULES: dict[str, dict[str, tuple[int, int]]] = {
    "champions": {"r": (5, 5), "f": (4, 5)},
    "loyal_customers": {"r": (3, 4), "f": (4, 5)},
    "potential_loyalists": {"r": (4, 5), "f": (2, 3)},
    "new_customers": {"r": (5, 5), "f": (1, 1)},
    "promising": {"r": (4, 4), "f": (1, 1)},
    "need_attention": {"r": (3, 3), "f": (3, 3)},
    "about_to_sleep": {"r": (3, 3), "f": (1, 2)},
    "cant_lose_them": {"r": (1, 2), "f": (5, 5)},
    "at_risk": {"r": (1, 2), "f": (3, 4)},
    "hibernating": {"r": (1, 2), "f": (1, 2)},
}

# Decimals of spend compared when ranking it (money has cents; sums carry float noise).
MONETARY_DECIMALS = 6

SEGMENT_LABELS: dict[str, tuple[str, str]] = {
    "champions": ("Champions", "冠军客户"),
    "loyal_customers": ("Loyal customers", "忠诚客户"),
    "potential_loyalists": ("Potential loyalists", "潜在忠诚客户"),
    "new_customers": ("New customers", "新客户"),
    "promising": ("Promising", "有潜力客户"),
    "need_attention": ("Need attention", "需要关注"),
    "about_to_sleep": ("About to sleep", "即将沉睡"),
    "at_risk": ("At risk", "有流失风险"),
    "cant_lose_them": ("Can't lose them", "不能失去"),
    "hibernating": ("Hibernating", "冬眠客户"),
    "other": ("Other", "其他"),
}


def score_quintiles(
    values: pd.Series,
    customer_ids: pd.Series,
    *,
    higher_is_better: bool = True,
    tie_break: Literal["customer_id", "shared"] = "customer_id",
    bins: int = 5,
    id_order: np.ndarray | None = None,
) -> np.ndarray:
    """Return 1..bins scores by rank, best values scoring ``bins``.

    Customers are ordered from worst to best value; with ``tie_break="customer_id"``
    equal values are ordered by customer id (ascending ids rank lower), so every
    customer has a distinct rank and the quintiles hold equal counts (±1). With
    ``tie_break="shared"`` equal values share the score of their first position, so
    ties never split across scores (quintiles may then be unequal). Score =
    floor(rank * bins / n) + 1 with rank 0-based. ``id_order`` (from rank_ids_as_text)
    saves ranking the ids again when several scores share them.
    """
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.int8)
    v = np.asarray(values, dtype=float)
    key = v if higher_is_better else -v
    ids = rank_ids_as_text(customer_ids) if id_order is None else id_order
    order = np.lexsort((ids, key))  # last key is primary: value, then id
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    if tie_break == "shared":
        sorted_key = key[order]
        first_pos = np.searchsorted(sorted_key, sorted_key, side="left")
        rank[order] = first_pos
    return (rank * bins // n + 1).astype(np.int8)


def rank_ids_as_text(customer_ids: Any) -> np.ndarray:
    """Return each customer id's position when the ids are sorted as text (ties by position)."""
    ids = np.asarray(customer_ids)
    rank = np.empty(len(ids), dtype=np.int64)
    if ids.dtype.kind in "iu" and len(ids) and ids.min() >= 0 and ids.max() < 10**17:
        # Text order of non-negative integers without making strings: compare the digits
        # left-aligned to a common width, then the shorter (a prefix) first.
        powers = 10 ** np.arange(1, 18, dtype=np.int64)
        digits = np.searchsorted(powers, ids, side="right") + 1
        width = int(digits.max())
        aligned = ids.astype(np.int64) * 10 ** (width - digits)
        rank[np.lexsort((np.arange(len(ids)), digits, aligned))] = np.arange(len(ids))
        return rank
    text = ids.astype(str)
    rank[np.argsort(text, kind="stable")] = np.arange(len(text))
    return rank


def assign_segments(
    r_score: np.ndarray,
    f_score: np.ndarray,
    rules: Mapping[str, Mapping[str, tuple[int, int]]] | None = None,
) -> np.ndarray:
    """Return the first matching segment name of the recency–frequency grid ("other" if none)."""
    rules = DEFAULT_SEGMENT_RULES if rules is None else rules
    r = np.asarray(r_score)
    f = np.asarray(f_score)
    out = np.full(len(r), "other", dtype=object)
    unset = np.ones(len(r), dtype=bool)
    for name, rule in rules.items():
        r_lo, r_hi = rule.get("r", (1, 5))
        f_lo, f_hi = rule.get("f", (1, 5))
        hit = unset & (r >= r_lo) & (r <= r_hi) & (f >= f_lo) & (f <= f_hi)
        out[hit] = name
        unset &= ~hit
    return out


def score_rfm(
    summary: pd.DataFrame,
    *,
    rules: Mapping[str, Mapping[str, tuple[int, int]]] | None = None,
    labels: Mapping[str, tuple[str, str]] | None = None,
    tie_break: Literal["customer_id", "shared"] = "customer_id",
    monetary: str = "monetary_net",
) -> pd.DataFrame:
    """Score RFM 1–5 per customer and name the recency–frequency segment.

    Inputs (from :func:`kequn.analytics.engine.summarize_customers`): ``recency_days``
    (fewer is better), ``frequency`` (purchase days) and the ``monetary`` column (total
    spend net of refunds by default). Scores are quintiles of the rank; ties are broken
    by customer id ascending (see :func:`score_quintiles`), so results never depend on
    input order. ``rules`` maps segment name to inclusive ``{"r": (lo, hi), "f": (lo, hi)}``
    ranges, checked in order; ``labels`` maps names to (English, Chinese).
    """
    labels = {**SEGMENT_LABELS, **(labels or {})}
    ids = summary["customer_id"]
    out = pd.DataFrame({"customer_id": ids.to_numpy()})
    out["recency_days"] = summary["recency_days"].to_numpy()
    out["frequency"] = summary["frequency"].to_numpy()
    out["monetary"] = summary[monetary].to_numpy()
    order = rank_ids_as_text(ids)
    out["r_score"] = score_quintiles(
        out["recency_days"], ids, higher_is_better=False, tie_break=tie_break, id_order=order
    )
    out["f_score"] = score_quintiles(out["frequency"], ids, tie_break=tie_break, id_order=order)
    # Spend ranked to the millionth: the same amounts summed in another order (another
    # engine, another partitioning) differ in the last bits, and equal spend is a tie.
    spend = np.round(out["monetary"].to_numpy(float), MONETARY_DECIMALS)
    out["m_score"] = score_quintiles(spend, ids, tie_break=tie_break, id_order=order)
    # "543" for R5 F4 M3: looked up from the 125 codes instead of joining 3M strings.
    codes = np.array([f"{n // 25 + 1}{n // 5 % 5 + 1}{n % 5 + 1}" for n in range(125)], object)
    out["rfm_score"] = codes[
        (out["r_score"].to_numpy(np.int64) - 1) * 25
        + (out["f_score"].to_numpy(np.int64) - 1) * 5
        + out["m_score"].to_numpy(np.int64)
        - 1
    ]
    seg = assign_segments(out["r_score"].to_numpy(), out["f_score"].to_numpy(), rules)
    out["segment"] = seg
    names = pd.Series(seg)
    found = {s: labels.get(s, (s, s)) for s in names.unique()}
    out["segment_en"] = names.map({s: en for s, (en, _) in found.items()}).to_numpy()
    out["segment_zh"] = names.map({s: zh for s, (_, zh) in found.items()}).to_numpy()
    return out
