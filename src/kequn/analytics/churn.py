# ruff: noqa: N806 - T (papers) and X (scikit-learn) are the conventional names
"""Churn risk: a gradient-boosting model on RFM, rhythm and behaviour features.

"Churned" at a cut-off means *no purchase day in the horizon after the cut-off*. The
model is trained on an earlier cut-off whose label window ends no later than the
evaluation cut-off (so no information from the evaluation window leaks into training),
then scored at the later cut-off and compared on that held-out time with two baselines:
recency alone, and the BG/NBD expected number of purchases in the horizon.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from . import clv
from .engine import days_per_unit, prepare_daily, summarize_customers, to_date
from .errors import InsufficientDataError

# Training stacks this many snapshots, a month apart (see build_training_set).
TRAINING_SNAPSHOTS = 3
SNAPSHOT_SPACING_DAYS = 30
# Training draws at most this many customers (the same ones at every snapshot). On a
# million customers the model is no better for seeing all of them, and summarising them
# at three dates cost most of a refresh; CDNOW (23,570) is far below the cap.
TRAINING_CUSTOMERS = 50_000

# Fixed, modest capacity (see train_churn_model), chosen on CDNOW's validation period
# (tests/analytics/test_churn_validation.py): 7 leaves of at least 200 customers scored
# AUC 0.7459 there against 0.7441 for 15 leaves of 100; 75 rounds at rate 0.1 score 0.7466
# against 0.7459 for 150 at 0.05, and fit in 0.6x the time (2.9 s against 4.6 s at 150,000 rows).
MODEL_PARAMS = {
    "max_iter": 75,
    "learning_rate": 0.1,
    "max_leaf_nodes": 7,
    "min_samples_leaf": 200,
    "l2_regularization": 1.0,
}

FEATURES = [
    "recency_days",
    "frequency",
    "tenure_days",
    "t_x_days",
    "monetary_avg",
    "monetary_net",
    "usual_gap_days",
    "gap_ratio",
    "last_gap_ratio",
    "spend_trend",
    "quantity_per_purchase",
    "purchase_rate",
    "p_alive",
    "expected_purchases",
    "p_no_purchase",
]

# The plain comparison model (evaluate_churn(plain_model=True)): scikit-learn's defaults on
# recency, frequency, monetary value, age and the BG/NBD outputs, as a notebook would start.
PLAIN_FEATURES = [
    "recency_days",
    "frequency",
    "monetary_avg",
    "tenure_days",
    "p_alive",
    "expected_purchases",
]


def build_churn_features(
    summary: pd.DataFrame,
    bgnbd_params: dict[str, float] | None,
    horizon_units: float,
    *,
    population_gap_days: float | None = None,
) -> pd.DataFrame:
    """Return the model features per customer from a summary (and BG/NBD params if fitted).

    ``population_gap_days`` is the whole base's median gap when ``summary`` is a batch of it.
    """
    s = summary
    f = pd.DataFrame({"customer_id": s["customer_id"].to_numpy()})
    f["recency_days"] = s["recency_days"].to_numpy(float)
    f["frequency"] = s["frequency"].to_numpy(float)
    f["tenure_days"] = s["T_days"].to_numpy(float)
    f["t_x_days"] = s["t_x_days"].to_numpy(float)
    f["monetary_avg"] = s["monetary_avg"].to_numpy(float)
    f["monetary_net"] = s["monetary_net"].to_numpy(float)
    median_gap = (
        s["median_gap_days"].to_numpy(float) if "median_gap_days" in s else np.full(len(s), np.nan)
    )
    # One-time buyers have no rhythm of their own; judge them by the population's typical gap.
    population_gap = float(np.nanmedian(median_gap)) if np.isfinite(median_gap).any() else np.nan
    if population_gap_days is not None:
        population_gap = population_gap_days
    usual = np.where(np.isfinite(median_gap) & (median_gap > 0), median_gap, population_gap)
    f["usual_gap_days"] = usual
    f["gap_ratio"] = f["recency_days"] / np.maximum(usual, 1.0)
    last_gap = (
        s["last_gap_days"].to_numpy(float) if "last_gap_days" in s else np.full(len(s), np.nan)
    )
    f["last_gap_ratio"] = last_gap / np.maximum(usual, 1.0)
    if "late_mean" in s:
        early = s["early_mean"].to_numpy(float)
        f["spend_trend"] = np.where(
            early > 0, s["late_mean"].to_numpy(float) / np.where(early > 0, early, 1), np.nan
        )
    else:
        f["spend_trend"] = np.nan
    f["quantity_per_purchase"] = s["quantity"].to_numpy(float) / f["frequency"]
    f["purchase_rate"] = f["frequency"] / np.maximum(f["tenure_days"], 1.0)
    if bgnbd_params is not None:
        x, t_x, T = s["x"].to_numpy(float), s["t_x"].to_numpy(float), s["T"].to_numpy(float)
        f["p_alive"] = clv.bgnbd_probability_alive(bgnbd_params, x, t_x, T)
        f["expected_purchases"] = clv.bgnbd_expected_purchases(
            bgnbd_params, horizon_units, x, t_x, T
        )
        f["p_no_purchase"] = clv.bgnbd_probability_no_purchase(
            bgnbd_params, horizon_units, x, t_x, T
        )
    else:
        f["p_alive"] = np.nan
        f["expected_purchases"] = np.nan
        f["p_no_purchase"] = np.nan
    return f


def build_feature_matrix(features: pd.DataFrame) -> np.ndarray:
    """Return the model's input matrix; a feature the data lacks entirely becomes constant 0.

    Missing values are fine for the model, but a column with no value at all (e.g. quantity
    when the source has none) breaks histogram binning, in training and prediction alike.
    """
    X = features[FEATURES].to_numpy(float)
    empty = np.isnan(X).all(axis=0)
    X[:, empty] = 0.0
    return np.asarray(X)


def train_churn_model(
    features: pd.DataFrame, churned: np.ndarray, *, seed: int = 0, max_rows: int = 300_000
) -> Any:
    """Fit a HistGradientBoostingClassifier predicting churn; subsample huge bases for speed."""
    y = np.asarray(churned, dtype=int)
    if len(np.unique(y)) < 2:
        raise InsufficientDataError(
            "churn: every training customer has the same outcome; cannot learn churn"
        )
    if len(y) < 100:
        raise InsufficientDataError(f"churn: {len(y)} training customers is too few (need 100)")
    X = build_feature_matrix(features)
    if len(y) > max_rows:
        idx = np.random.default_rng(seed).choice(len(y), max_rows, replace=False)
        X, y = X[idx], y[idx]
    # Fixed, modest capacity instead of early stopping: the result must not depend on a
    # random validation split, and churn signals here are smooth and low-dimensional.
    model = HistGradientBoostingClassifier(**MODEL_PARAMS, early_stopping=False, random_state=seed)
    # OpenMP threads cost more than they save on small bases (and spin badly on busy hosts).
    with threadpool_limits(limits=1 if len(y) < 100_000 else None, user_api="openmp"):
        model.fit(X, y)
    return model


def predict_churn(model: Any, features: pd.DataFrame) -> np.ndarray:
    """Return each customer's churn probability."""
    return np.asarray(model.predict_proba(build_feature_matrix(features))[:, 1])


def explain_churn_risk(features: pd.DataFrame, *, limit: int = 3) -> tuple[list[str], list[str]]:
    """Return readable reasons (English, Chinese) per customer, strongest first, joined by '; '."""
    n = len(features)
    gap, freq, trend, p, recency = (
        features[c].to_numpy(float)
        for c in ("gap_ratio", "frequency", "spend_trend", "p_alive", "recency_days")
    )
    # Up to four candidate reasons per customer, as columns: strength, English, Chinese.
    strength = np.full((n, 4), -np.inf)
    en = np.full((n, 4), "", dtype=object)
    zh = np.full((n, 4), "", dtype=object)

    def put(col: int, hit: np.ndarray, power: Any, text_en: Any, text_zh: Any) -> None:
        strength[hit, col] = power
        en[hit, col] = text_en
        zh[hit, col] = text_zh

    with np.errstate(invalid="ignore"):
        hit = np.isfinite(gap) & (gap >= 1.5)
        times = _format("%.1f", gap[hit])
        put(
            0,
            hit,
            gap[hit],
            "no purchase for " + times + "× the usual gap",
            "已 " + times + " 倍于平常间隔未购买",
        )
        hit = freq <= 1
        put(1, hit, 1.4, "only one purchase", "仅购买过一次")
        hit = np.isfinite(trend) & (trend < 0.8)
        pct = _format("%d", np.round((1 - trend[hit]) * 100))
        put(
            2,
            hit,
            1.2 + (1 - trend[hit]),
            "spend falling (" + pct + "% below earlier purchases)",
            "消费金额下降（比早期低 " + pct + "%）",
        )
        hit = np.isfinite(p) & (p < 0.5)
        share = _format("%.0f%%", p[hit] * 100)
        put(
            3,
            hit,
            2 - p[hit],
            "low chance still active (" + share + ")",
            "仍活跃的概率低（" + share + "）",
        )
        # Nothing stands out: say how long it has been, but only once the customer is past
        # their usual gap; "no purchase for 6 days" is no reason to worry about anyone.
        hit = ~np.isfinite(strength).any(axis=1) & (recency > 0) & np.isfinite(gap) & (gap >= 1)
        days = _format("%d", np.trunc(recency[hit]))
        put(0, hit, 0.0, "no purchase for " + days + " days", "已 " + days + " 天未购买")
    # Strongest first; equal strengths keep the order above (a stable sort, as before).
    order = np.argsort(-strength, axis=1, kind="stable")[:, :limit]
    rows = np.arange(n)[:, None]
    top_present = np.isfinite(np.take_along_axis(strength, order, axis=1))
    top_en, top_zh = en[rows, order], zh[rows, order]
    out_en, out_zh = top_en[:, 0].copy(), top_zh[:, 0].copy()
    for k in range(1, order.shape[1]):
        more = top_present[:, k]
        out_en[more] = out_en[more] + "; " + top_en[more, k]
        out_zh[more] = out_zh[more] + "；" + top_zh[more, k]
    return out_en.tolist(), out_zh.tolist()


def _format(pattern: str, values: np.ndarray) -> np.ndarray:
    """Return ``pattern % value`` for each value, as Python strings."""
    if pattern == "%d":
        values = values.astype(np.int64)
    # A comprehension over Python numbers formats ~3x faster than np.char.mod.
    return np.array([pattern % v for v in values.tolist()] or [], dtype=object)


def compute_lift(y: np.ndarray, score: np.ndarray, fraction: float = 0.1) -> float:
    """Return churn rate in the top ``fraction`` by score divided by the overall churn rate."""
    y = np.asarray(y, float)
    n = max(1, round(len(y) * fraction))
    # Stable sort on -score keeps equal scores in input order, so the top decile is deterministic.
    top = np.argsort(-np.asarray(score, float), kind="stable")[:n]
    base = y.mean()
    return float(y[top].mean() / base) if base > 0 else float("nan")


def build_reliability_table(y: np.ndarray, prob: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Return mean predicted vs observed churn per predicted-probability decile."""
    df = pd.DataFrame({"y": np.asarray(y, float), "p": np.asarray(prob, float)})
    df["bin"] = np.minimum((df["p"] * bins).astype(int), bins - 1)
    g = (
        df.groupby("bin")
        .agg(customers=("y", "size"), predicted=("p", "mean"), observed=("y", "mean"))
        .reset_index()
    )
    g["range"] = [f"{b / bins:.1f}-{(b + 1) / bins:.1f}" for b in g["bin"]]
    return g[["range", "customers", "predicted", "observed"]]


@dataclass
class ChurnEvaluation:
    """Held-out-time evaluation of the churn model against baselines."""

    train_cutoff: date
    train_label_end: date
    test_cutoff: date
    test_label_end: date
    n_train: int
    n_test: int
    churn_rate_test: float
    auc: dict[str, float]
    brier: dict[str, float]
    lift_top_decile: dict[str, float]
    reliability: pd.DataFrame = field(repr=False)
    bgnbd_test: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "train_cutoff": self.train_cutoff.isoformat(),
            "train_label_end": self.train_label_end.isoformat(),
            "test_cutoff": self.test_cutoff.isoformat(),
            "test_label_end": self.test_label_end.isoformat(),
            "n_train": self.n_train,
            "n_test": self.n_test,
            "churn_rate_test": self.churn_rate_test,
            "auc": self.auc,
            "brier": self.brier,
            "lift_top_decile": self.lift_top_decile,
            "reliability": self.reliability.to_dict(orient="records"),
        }


def _features_at(
    transactions: Any,
    cutoff: date,
    label_end: date,
    feature_horizon_days: int,
    time_unit: str,
    backend: Any,
) -> tuple[pd.DataFrame, np.ndarray, dict[str, float] | None, pd.DataFrame]:
    summary = summarize_customers(
        transactions, cutoff, label_end, time_unit=time_unit, backend=backend
    )
    horizon = feature_horizon_days / days_per_unit(time_unit)
    try:
        params = clv.fit_bgnbd(summary["x"], summary["t_x"], summary["T"]).params
    except InsufficientDataError:
        params = None
    feats = build_churn_features(summary, params, horizon)
    churned = (summary["holdout_days"].to_numpy() == 0).astype(int)
    return feats, churned, params, summary


def list_training_cutoffs(latest: date, snapshots: int = TRAINING_SNAPSHOTS) -> list[date]:
    """Return the training cut-offs: the latest one and earlier ones a month apart."""
    return [latest - timedelta(days=SNAPSHOT_SPACING_DAYS * i) for i in range(snapshots)]


def build_training_set(
    transactions: Any,
    latest_cutoff: date,
    horizon_days: int,
    time_unit: str,
    backend: Any,
    *,
    snapshots: int = TRAINING_SNAPSHOTS,
    max_customers: int | None = TRAINING_CUSTOMERS,
    seed: int = 0,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Return churn features and labels stacked over monthly snapshots ending at ``latest_cutoff``.

    Earlier snapshots show the model customers at other ages, so it generalises to the
    later scoring date instead of memorising one moment; each label window ends no later
    than ``latest_cutoff + horizon_days``. Snapshots with fewer than 100 customers are left out.
    Above ``max_customers`` a random sample of customers is used (DuckDB only).
    """
    transactions = prepare_daily(transactions, backend)
    if max_customers is not None:
        transactions = transactions.sample_customers(max_customers, seed)
    feats: list[pd.DataFrame] = []
    labels: list[np.ndarray] = []
    for cutoff in list_training_cutoffs(latest_cutoff, snapshots):
        label_end = cutoff + timedelta(days=horizon_days)
        try:
            x, y, _, _ = _features_at(
                transactions, cutoff, label_end, horizon_days, time_unit, backend
            )
        except InsufficientDataError:
            if not feats:
                raise
            break  # history too short for an earlier snapshot
        if feats and len(y) < 100:
            break
        feats.append(x)
        labels.append(y)
    return pd.concat(feats, ignore_index=True), np.concatenate(labels)


def evaluate_churn(
    transactions: Any,
    test_cutoff: date | str,
    horizon_days: int,
    *,
    train_cutoff: date | str | None = None,
    train_horizon_days: int | None = None,
    time_unit: str = "week",
    seed: int = 0,
    backend: Any = None,
    snapshots: int = TRAINING_SNAPSHOTS,
    plain_model: bool = False,
    ceiling: bool = False,
) -> tuple[ChurnEvaluation, Any]:
    """Train at an earlier cut-off, evaluate at ``test_cutoff`` against recency and BG/NBD baselines.

    Default design: the training label window ends exactly at ``test_cutoff`` (no leak),
    so training never sees a day after the evaluation cut-off;
    i.e. ``train_cutoff = test_cutoff - train_horizon_days`` with ``train_horizon_days``
    defaulting to ``horizon_days``. When the history is too short for that, pass an
    explicit earlier ``train_cutoff`` and a shorter ``train_horizon_days``. Training stacks
    ``snapshots`` monthly cut-offs ending at ``train_cutoff`` (see build_training_set).
    With ``plain_model`` a default gradient-boosting model on PLAIN_FEATURES, trained on the
    same rows, is scored too ("plain_gbm"), the bar the shipped features must clear. With
    ``ceiling`` the same features and settings are fitted on the test period's own labels,
    5-fold cross-validated ("ceiling"): not a model anyone could ship (it sees the future),
    but how much these features can tell at all, so a missed target reads as a limit of
    the data or of the training design. Returns the evaluation and the trained model.
    """
    test_cut = to_date(test_cutoff)
    train_h = int(train_horizon_days or horizon_days)
    train_cut = (
        to_date(train_cutoff) if train_cutoff is not None else test_cut - timedelta(days=train_h)
    )
    train_end = train_cut + timedelta(days=train_h)
    test_end = test_cut + timedelta(days=int(horizon_days))
    transactions = prepare_daily(transactions, backend)
    x_train, y_train = build_training_set(
        transactions, train_cut, train_h, time_unit, backend, snapshots=snapshots, seed=seed
    )
    model = train_churn_model(x_train, y_train, seed=seed)
    x_test, y_test, params, summary_test = _features_at(
        # The model learned "no purchase within train_h days", so its BG/NBD inputs keep that
        # horizon at test time; the longer test label only changes what is being ranked.
        transactions,
        test_cut,
        test_end,
        train_h,
        time_unit,
        backend,
    )
    prob = predict_churn(model, x_test)
    plain = _fit_plain_model(x_train, y_train, x_test, seed) if plain_model else None
    # Baselines use their own best form: BG/NBD over the true test horizon.
    base = build_churn_features(summary_test, params, int(horizon_days) / days_per_unit(time_unit))
    if params is not None and train_h != int(horizon_days):
        # The model predicts "no purchase within train_h days"; BG/NBD's ratio of no-purchase
        # probabilities carries that to the test horizon (AUC barely moves, calibration does).
        ratio = base["p_no_purchase"].to_numpy(float) / np.maximum(
            x_test["p_no_purchase"].to_numpy(float), 1e-12
        )
        prob = np.clip(prob * ratio, 0.0, 1.0)
        if plain is not None:
            plain = np.clip(plain * ratio, 0.0, 1.0)
    if len(np.unique(y_test)) < 2:
        raise InsufficientDataError(
            "churn: every test customer has the same outcome; AUC is undefined"
        )
    scores = {
        "model": prob,
        "recency": x_test["recency_days"].to_numpy(float),
        "bgnbd_expected_purchases": -base["expected_purchases"].to_numpy(float),
        "bgnbd_p_no_purchase": base["p_no_purchase"].to_numpy(float),
    }
    if plain is not None:
        scores["plain_gbm"] = plain
    if ceiling:
        scores["ceiling"] = _cross_validate_on_test(base, y_test, seed)
    auc = {k: float(roc_auc_score(y_test, v)) for k, v in scores.items() if np.isfinite(v).all()}
    lift = {k: compute_lift(y_test, v) for k, v in scores.items() if np.isfinite(v).all()}
    brier = {"model": float(brier_score_loss(y_test, prob))}
    if plain is not None:
        brier["plain_gbm"] = float(brier_score_loss(y_test, plain))
    if ceiling:
        brier["ceiling"] = float(brier_score_loss(y_test, scores["ceiling"]))
    if params is not None:
        # BG/NBD's own churn probability: P(no purchase in the horizon).
        brier["bgnbd_p_no_purchase"] = float(
            brier_score_loss(y_test, scores["bgnbd_p_no_purchase"])
        )
    brier["base_rate"] = float(brier_score_loss(y_test, np.full(len(y_test), y_train.mean())))
    evaluation = ChurnEvaluation(
        train_cutoff=train_cut,
        train_label_end=train_end,
        test_cutoff=test_cut,
        test_label_end=test_end,
        n_train=len(y_train),
        n_test=len(y_test),
        churn_rate_test=float(y_test.mean()),
        auc=auc,
        brier=brier,
        lift_top_decile=lift,
        reliability=build_reliability_table(y_test, prob),
        bgnbd_test=params or {},
    )
    return evaluation, model


def _fit_plain_model(
    x_train: pd.DataFrame, y_train: np.ndarray, x_test: pd.DataFrame, seed: int
) -> np.ndarray:
    """Return the plain comparison model's churn probabilities for the test customers."""
    X_train = x_train[PLAIN_FEATURES].to_numpy(float)
    X_test = x_test[PLAIN_FEATURES].to_numpy(float)
    empty = np.isnan(X_train).all(axis=0)  # no BG/NBD fit: constant columns, as in training
    X_train[:, empty] = 0.0
    X_test[:, empty] = 0.0
    model = HistGradientBoostingClassifier(random_state=seed)
    with threadpool_limits(limits=1, user_api="openmp"):
        model.fit(X_train, y_train)
    return np.asarray(model.predict_proba(X_test)[:, 1])


def _cross_validate_on_test(features: pd.DataFrame, y: np.ndarray, seed: int) -> np.ndarray:
    """Return out-of-fold churn probabilities of the shipped model fitted on the test labels."""
    X = build_feature_matrix(features)
    prob = np.empty(len(y))
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    with threadpool_limits(limits=1, user_api="openmp"):
        for fit_rows, held_rows in folds.split(X, y):
            model = HistGradientBoostingClassifier(
                **MODEL_PARAMS, early_stopping=False, random_state=seed
            )
            model.fit(X[fit_rows], y[fit_rows])
            prob[held_rows] = model.predict_proba(X[held_rows])[:, 1]
    return prob


def score_churn_risk(model: Any, features: pd.DataFrame) -> pd.DataFrame:
    """Return churn probability and bilingual reasons per customer."""
    prob = predict_churn(model, features)
    en, zh = explain_churn_risk(features)
    return pd.DataFrame(
        {
            "customer_id": features["customer_id"].to_numpy(),
            "churn_risk": prob,
            "churn_reasons_en": en,
            "churn_reasons_zh": zh,
        }
    )
