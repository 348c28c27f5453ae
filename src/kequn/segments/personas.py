"""Personas: cluster customers on standardised behaviour features and describe them (no Django).

Input is a table with one row per customer: numeric behaviour columns (orders, spend,
avg_order_value, recency_days, age) and optional categorical columns (city, top_category).
KMeans runs on log-scaled, standardised numeric columns; k is chosen by the silhouette
score on a sample. Each cluster is described in English and Chinese from its centre.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

NUMERIC = ["orders", "spend", "avg_order_value", "recency_days", "age"]
LOG_SCALED = {"orders", "spend", "avg_order_value", "recency_days"}
HIGH, LOW = 0.5, -0.5  # centre z-scores beyond these are called high / low
DOMINANT_SHARE = 0.4  # a city or category names a persona if this share of it has it


@dataclass
class PersonaDescription:
    label: int
    size: int
    description_en: str
    description_zh: str
    centre: dict
    member_rows: list[int] = field(repr=False)


@dataclass
class PersonaResult:
    k: int
    silhouette: float
    silhouettes: dict[int, float]
    labels: np.ndarray
    personas: list[PersonaDescription]


def standardise(features: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Return log-scaled (for skewed columns), z-scored numeric features; missing → mean."""
    out = []
    for col in columns:
        values = features[col].astype(float)
        if col in LOG_SCALED:
            values = np.log1p(values.clip(lower=0))
        values = values.fillna(values.mean() if values.notna().any() else 0.0)
        std = values.std(ddof=0)
        out.append(((values - values.mean()) / (std if std > 0 else 1.0)).to_numpy())
    return np.column_stack(out)


def choose_k(
    matrix: np.ndarray, k_range: range, sample: int, seed: int
) -> tuple[int, dict[int, float]]:
    """Return the k with the best silhouette on a sample, and every k's score."""
    from sklearn.cluster import KMeans  # noqa: PLC0415 -- scikit-learn is heavy, loaded on use
    from sklearn.metrics import silhouette_score  # noqa: PLC0415 -- as above

    rng = np.random.default_rng(seed)
    rows = rng.choice(len(matrix), min(sample, len(matrix)), replace=False)
    part = matrix[rows]
    scores: dict[int, float] = {}
    for k in k_range:
        if k >= len(part):
            break
        labels = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(part)
        if len(set(labels)) < 2:
            continue
        scores[k] = float(silhouette_score(part, labels))
    if not scores:
        return 1, {}
    return max(scores, key=lambda k: scores[k]), scores


def _level(z: float) -> str:
    return "high" if z >= HIGH else "low" if z <= LOW else "mid"


def describe(
    centre_z: dict[str, float], raw: dict[str, float], city: str | None, category: str | None
) -> tuple[str, str]:
    """Return English and Chinese descriptions of a cluster centre."""
    words_en, words_zh = [], []
    age_level = _level(centre_z.get("age", 0.0)) if "age" in centre_z else "mid"
    if age_level != "mid" and not np.isnan(raw.get("age", np.nan)):
        words_en.append("young" if age_level == "low" else "older")
    if city:
        words_en.append(city)
    words_en.append(f"{category} buyers" if category else "buyers")
    head_zh = (city or "") + (
        {"low": "年轻", "high": "年长"}.get(age_level, "")
        if words_en[0] in ("young", "older")
        else ""
    )
    head_zh += f"{category}买家" if category else "买家"
    words_zh.append(head_zh)
    traits = [
        ("orders", "frequency", "购买频次"),
        ("spend", "spend", "消费"),
        ("recency_days", "recency", "最近购买"),
    ]
    tails_en, tails_zh = [], []
    for col, en, zh in traits:
        if col not in centre_z:
            continue
        level = _level(centre_z[col])
        if level == "mid":
            continue
        if col == "recency_days":
            tails_en.append("bought recently" if level == "low" else "lapsed")
            tails_zh.append("近期活跃" if level == "low" else "久未购买")
        else:
            tails_en.append(f"{level} {en}")
            tails_zh.append(f"{zh}{'高' if level == 'high' else '低'}")
    en = " ".join(words_en)
    zh = words_zh[0]
    if tails_en:
        en += ", " + ", ".join(tails_en)
        zh += "，" + "，".join(tails_zh)
    return en, zh


def find_personas(
    features: pd.DataFrame,
    k: int | None = None,
    k_range: range = range(2, 9),
    sample: int = 5000,
    seed: int = 42,
) -> PersonaResult:
    """Cluster rows of `features` and describe each cluster in words."""
    from sklearn.cluster import KMeans  # noqa: PLC0415 -- scikit-learn is heavy, loaded on use
    from sklearn.metrics import silhouette_score  # noqa: PLC0415 -- as above

    numeric = [c for c in NUMERIC if c in features.columns and features[c].notna().any()]
    if len(features) < 3 or not numeric:
        raise ValueError("need at least 3 customers and one behaviour column")
    matrix = standardise(features, numeric)
    silhouettes: dict[int, float] = {}
    if k is None:
        k, silhouettes = choose_k(matrix, k_range, sample, seed)
    k = max(1, min(k, len(features) - 1))
    model = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(matrix)
    labels = model.labels_
    if k in silhouettes:
        silhouette = silhouettes[k]
    elif k > 1:
        rows = np.random.default_rng(seed).choice(len(matrix), min(sample, len(matrix)), False)
        silhouette = float(silhouette_score(matrix[rows], labels[rows]))
    else:
        silhouette = 0.0
    personas = []
    for label in range(k):
        rows = np.flatnonzero(labels == label)
        members = features.iloc[rows]
        centre_z = dict(zip(numeric, model.cluster_centers_[label], strict=True))
        raw = {c: float(members[c].astype(float).mean()) for c in numeric}
        city = _dominant(members, "city")
        category = _dominant(members, "top_category")
        en, zh = describe(centre_z, raw, city, category)
        centre: dict[str, float | str] = {c: round(v, 2) for c, v in raw.items() if not np.isnan(v)}
        centre.update({"city": city or "", "top_category": category or ""})
        personas.append(PersonaDescription(label, len(rows), en, zh, centre, rows.tolist()))
    personas.sort(key=lambda p: -p.size)
    return PersonaResult(k, silhouette, silhouettes, labels, personas)


def _dominant(members: pd.DataFrame, column: str) -> str | None:
    if column not in members.columns:
        return None
    counts = members[column].replace("", np.nan).dropna().value_counts(normalize=True)
    if counts.empty or counts.iloc[0] < DOMINANT_SHARE:
        return None
    return str(counts.index[0])
