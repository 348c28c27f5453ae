"""RFM scoring, tie-breaking and segments; lifecycle stages on hand-made tables."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest

from kequn.analytics.engine import summarize_customers
from kequn.analytics.lifecycle import (
    LifecycleThresholds,
    assign_lifecycle_stages,
    diff_lifecycle_stages,
)
from kequn.analytics.rfm import DEFAULT_SEGMENT_RULES, score_quintiles, score_rfm


def test_quintiles_break_ties_by_customer_id():
    values = pd.Series([1, 1, 1, 1, 1, 2, 2, 3, 4, 5])
    ids = pd.Series(["j", "i", "h", "g", "f", "e", "d", "c", "b", "a"])
    scores = score_quintiles(values, ids)
    # Five tied 1s ordered by id: f, g, h, i, j -> ranks 0..4 -> scores 1,1,2,2,3.
    by_id = dict(zip(ids, scores, strict=True))
    assert [by_id[c] for c in "fghij"] == [1, 1, 2, 2, 3]
    assert by_id["a"] == 5
    assert sorted(np.bincount(scores)[1:]) == [2, 2, 2, 2, 2]
    # Input order does not matter.
    perm = np.random.default_rng(1).permutation(10)
    again = score_quintiles(values.iloc[perm], ids.iloc[perm])
    assert dict(zip(ids.iloc[perm], again, strict=True)) == by_id


def test_shared_ties_never_split():
    values = pd.Series([1, 1, 1, 1, 1, 2, 2, 3, 4, 5])
    ids = pd.Series(list("abcdefghij"))
    scores = score_quintiles(values, ids, tie_break="shared")
    assert set(scores[:5]) == {1}
    assert scores[5] == scores[6]


def test_recency_scores_fewer_days_higher():
    summary = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(10)],
            "recency_days": np.arange(10) * 10,
            "frequency": np.arange(10) + 1,
            "monetary_net": np.arange(10) * 5.0,
        }
    )
    out = score_rfm(summary)
    assert out.loc[0, "r_score"] == 5 and out.loc[9, "r_score"] == 1
    assert out.loc[9, "f_score"] == 5 and out.loc[0, "m_score"] == 1
    assert out.loc[0, "rfm_score"] == "511"


def test_segment_grid_covers_every_cell_with_chinese_names():
    cells = [(r, f) for r in range(1, 6) for f in range(1, 6)]
    summary = pd.DataFrame(
        {
            "customer_id": [f"c{i:02d}" for i in range(25)],
            "recency_days": 0,
            "frequency": 1,
            "monetary_net": 1.0,
        }
    )
    from kequn.analytics.rfm import SEGMENT_LABELS, assign_segments

    names = assign_segments(np.array([c[0] for c in cells]), np.array([c[1] for c in cells]))
    assert "other" not in set(names)
    assert set(names) == set(DEFAULT_SEGMENT_RULES)
    assert dict(zip(cells, names, strict=True))[(5, 5)] == "champions"
    assert dict(zip(cells, names, strict=True))[(1, 5)] == "cant_lose_them"
    assert dict(zip(cells, names, strict=True))[(1, 1)] == "hibernating"
    zh = {SEGMENT_LABELS[n][1] for n in DEFAULT_SEGMENT_RULES}
    assert zh == {
        "冠军客户", "忠诚客户", "潜在忠诚客户", "新客户", "有潜力客户",
        "需要关注", "即将沉睡", "有流失风险", "不能失去", "冬眠客户",
    }  # fmt: skip
    assert len(score_rfm(summary)) == 25


def test_custom_segment_rules():
    summary = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "recency_days": [1, 100],
            "frequency": [5, 1],
            "monetary_net": [9.0, 1.0],
        }
    )
    rules = {"vip": {"r": (3, 5), "f": (3, 5)}, "rest": {}}  # 2 customers: scores 1 and 3
    out = score_rfm(summary, rules=rules, labels={"vip": ("VIP", "贵宾"), "rest": ("Rest", "其他")})
    assert list(out["segment"]) == ["vip", "rest"]
    assert out.loc[0, "segment_zh"] == "贵宾"


def _tx(rows):
    return pd.DataFrame(rows, columns=["customer_id", "ts", "amount"]).assign(
        ts=lambda d: pd.to_datetime(d["ts"])
    )


def _monthly(cust, start, n, amount=20.0):
    return [
        (cust, (pd.Timestamp(start) + pd.DateOffset(days=30 * i)).date(), amount) for i in range(n)
    ]


def test_lifecycle_stages_on_hand_made_table():
    now = date(2024, 12, 31)
    rows = (
        _monthly("loyal", "2024-01-05", 12)  # buys every 30 days, last 2024-12-05
        + _monthly("at_risk", "2024-01-01", 6)  # every 30 days, silent since 2024-05-30 (~7 gaps)
        + [("churned", "2023-01-01", 10.0), ("churned", "2023-02-01", 10.0)]
        + [("new", "2024-12-20", 15.0)]
        + _monthly("react", "2024-01-01", 4)  # 4 monthly buys, then a long gap, back in December
        + [("react", "2024-12-28", 30.0)]
        + _monthly("active", "2024-10-15", 2)  # two buys, 30 days apart, not yet loyal
    )
    rows += [
        ("slow", "2024-01-01", 50.0),
        ("slow", "2024-05-01", 50.0),
        ("slow", "2024-09-01", 50.0),
    ]
    rows += [("slow", "2024-12-15", 50.0)]
    summary = summarize_customers(_tx(rows), now)
    th = LifecycleThresholds(new_days=30, churned_gap_multiple=4, at_risk_gap_multiple=2)
    stages = assign_lifecycle_stages(summary, customers=["loyal", "prospect", "new"], thresholds=th)
    got = dict(zip(stages["customer_id"], stages["lifecycle_stage"], strict=True))
    assert got["prospect"] == "prospect"
    assert got["new"] == "new"
    assert got["loyal"] == "loyal"
    assert got["at_risk"] == "churned"  # 215 days silent vs a 30-day rhythm: 7x
    assert got["react"] == "reactivated"
    assert got["active"] == "active"
    # A slow buyer (every ~120 days) is judged by their own rhythm: 16 days silent is fine.
    assert got["slow"] == "loyal"
    assert got["churned"] == "churned"
    assert set(stages["lifecycle_stage_zh"]) >= {
        "潜在客户",
        "新客户",
        "忠诚客户",
        "已流失",
        "回流客户",
    }


def test_rhythm_decides_at_risk_and_p_alive_overrides():
    now = date(2024, 12, 31)
    rows = _monthly("late", "2024-01-01", 10) + _monthly("fine", "2024-02-10", 11)
    summary = summarize_customers(_tx(rows), now)
    stages = assign_lifecycle_stages(summary)
    got = dict(zip(stages["customer_id"], stages["lifecycle_stage"], strict=True))
    assert got["late"] == "at_risk"  # last buy 2024-09-27: ~95 days = 3.2 usual gaps
    assert got["fine"] == "loyal"
    low_alive = assign_lifecycle_stages(summary, p_alive=np.array([0.05, 0.9]))  # fine, late
    assert low_alive.set_index("customer_id").loc["late", "lifecycle_stage"] == "at_risk"
    assert low_alive.set_index("customer_id").loc["fine", "lifecycle_stage"] == "churned"


def test_stage_changes_for_history():
    at = datetime(2025, 1, 1)  # noqa: DTZ001 -- analytics takes naive times
    prev = pd.DataFrame(
        {"customer_id": ["a", "b", "c"], "lifecycle_stage": ["new", "active", "loyal"]}
    )
    cur = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "lifecycle_stage": ["active", "active", "at_risk", "new"],
        }
    )
    changes = diff_lifecycle_stages(prev, cur, at)
    assert changes.to_dict(orient="records") == [
        {"customer_id": "a", "from_stage": "new", "to_stage": "active", "at": at},
        {"customer_id": "c", "from_stage": "loyal", "to_stage": "at_risk", "at": at},
        {"customer_id": "d", "from_stage": None, "to_stage": "new", "at": at},
    ]
    assert len(diff_lifecycle_stages(None, cur, at)) == 4
    with pytest.raises(KeyError):
        diff_lifecycle_stages(prev, cur.drop(columns="lifecycle_stage"), at)


def test_integer_ids_break_ties_as_text_and_stay_integers():
    # 10 < 9 as text: the store's integer keys tie-break exactly like their text form.
    values = pd.Series([1.0] * 5)
    ints = pd.Series([9, 10, 100, 2, 11])
    assert (score_quintiles(values, ints) == score_quintiles(values, ints.astype(str))).all()
    summary = pd.DataFrame(
        {"customer_id": ints, "recency_days": 1, "frequency": 1, "monetary_net": 1.0}
    )
    out = score_rfm(summary)
    assert out["customer_id"].dtype.kind == "i"
    assert out.set_index("customer_id")["r_score"].to_dict() == {9: 5, 10: 1, 100: 2, 2: 4, 11: 3}
