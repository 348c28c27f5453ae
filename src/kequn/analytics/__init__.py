"""Customer analytics as pure functions over tables (no Django): RFM, lifecycle, CLV, churn, cohorts.

Runs on DuckDB in process by default; the aggregations are Ibis expressions that also run
on PostgreSQL and Spark. See ``kequn.analytics.cli`` for ``kequn analyze``.
"""

from .churn import evaluate_churn, explain_churn_risk, score_churn_risk, train_churn_model
from .clv import (
    bgnbd_expected_purchases,
    bgnbd_probability_alive,
    bgnbd_probability_no_purchase,
    compute_clv,
    fit_bgnbd,
    fit_gammagamma,
    fit_paretonbd,
    gammagamma_expected_spend,
    paretonbd_expected_purchases,
    paretonbd_probability_alive,
)
from .cohorts import compute_cohort_activity, compute_cohorts
from .engine import summarize_customers
from .errors import AnalyticsInputError, InsufficientDataError
from .io import check_not_future, normalize_transactions, read_transactions
from .lifecycle import LifecycleThresholds, assign_lifecycle_stages, diff_lifecycle_stages
from .rfm import DEFAULT_SEGMENT_RULES, score_rfm
from .scores import score_customers

__all__ = [
    "DEFAULT_SEGMENT_RULES",
    "AnalyticsInputError",
    "InsufficientDataError",
    "LifecycleThresholds",
    "assign_lifecycle_stages",
    "bgnbd_expected_purchases",
    "bgnbd_probability_alive",
    "bgnbd_probability_no_purchase",
    "check_not_future",
    "compute_clv",
    "compute_cohort_activity",
    "compute_cohorts",
    "diff_lifecycle_stages",
    "evaluate_churn",
    "explain_churn_risk",
    "fit_bgnbd",
    "fit_gammagamma",
    "fit_paretonbd",
    "gammagamma_expected_spend",
    "normalize_transactions",
    "paretonbd_expected_purchases",
    "paretonbd_probability_alive",
    "read_transactions",
    "score_churn_risk",
    "score_customers",
    "score_rfm",
    "summarize_customers",
    "train_churn_model",
]
