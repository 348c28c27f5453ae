"""Personas find planted clusters (k by silhouette) and describe them in words."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kequn.security.actors import system_actor
from kequn.segments.personas import find_personas


def planted(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    groups = [
        # orders, spend, recency, age, city, category
        (20, 300, 5, 24, "上海", "Accessories"),
        (2, 9000, 200, 45, "北京", "Phones"),
        (6, 2000, 40, 35, "广州", "Tablets"),
    ]
    frames, truth = [], []
    for g, (orders, spend, recency, age, city, cat) in enumerate(groups):
        n = 300
        frames.append(
            pd.DataFrame(
                {
                    "orders": rng.poisson(orders, n) + 1,
                    "spend": rng.normal(spend, spend * 0.1, n).clip(1),
                    "recency_days": rng.normal(recency, recency * 0.1, n).clip(0),
                    "age": rng.normal(age, 2, n),
                    "city": city,
                    "top_category": cat,
                }
            )
        )
        truth += [g] * n
    features = pd.concat(frames, ignore_index=True)
    features["avg_order_value"] = features["spend"] / features["orders"]
    return features, np.array(truth)


def test_silhouette_finds_planted_clusters_and_describes_them():
    features, truth = planted()
    result = find_personas(features, k_range=range(2, 6), sample=600)
    assert result.k == 3
    assert result.silhouette > 0.5
    # Every planted group lands in one cluster (purity 1).
    for g in range(3):
        assert len(set(result.labels[truth == g])) == 1
    texts = {p.description_en for p in result.personas}
    young = next(t for t in texts if "Accessories" in t)
    assert young.startswith("young 上海 Accessories buyers")
    assert "high frequency" in young and "low spend" in young
    zh = next(p.description_zh for p in result.personas if "Accessories" in p.description_en)
    assert zh.startswith("上海年轻Accessories买家") and "购买频次高" in zh
    assert sum(p.size for p in result.personas) == len(features)


def test_personas_saved_as_segments(db):
    from kequn.commerce.models import Order
    from kequn.segments.personas_service import discover_personas
    from kequn.segments.services import save_persona_as_segment
    from tests.factories import make_customer, make_order

    for i in range(30):
        customer = make_customer(city="上海" if i % 2 else "北京")
        for _ in range(1 + (i % 2) * 5):
            make_order(customer, "100.00" if i % 2 else "5000.00", days_ago=3 + i)
    assert Order.objects.count() > 30
    personas = discover_personas(k=2, by=system_actor("test"))
    assert len(personas) == 2
    segment = save_persona_as_segment(personas[0], by=system_actor("test"))
    assert segment.kind == "static"
    assert segment.member_count == personas[0].size
    assert save_persona_as_segment(personas[0], by=system_actor("test")).pk == segment.pk
