"""Customer analytics as pure functions over tables (no Django): RFM, lifecycle, CLV, churn, cohorts.

Runs on DuckDB in process by default; the aggregations are Ibis expressions that also run
on PostgreSQL and Spark. See ``kequn.analytics.cli`` for ``kequn analyze``.
"""

from importlib import import_module
from typing import Any

# Where each public name lives. Loaded on first use (PEP 562): importing one light module
# such as ``kequn.analytics.uplift`` must not pull in scikit-learn, SciPy and Ibis, which
# would add seconds to the start of every command and web worker.
_HOMES = {
    "evaluate_churn": "churn",
    "explain_churn_risk": "churn",
    "score_churn_risk": "churn",
    "train_churn_model": "churn",
    "bgnbd_expected_purchases": "clv",
    "bgnbd_probability_alive": "clv",
    "bgnbd_probability_no_purchase": "clv",
    "compute_clv": "clv",
    "fit_bgnbd": "clv",
    "fit_gammagamma": "clv",
    "fit_paretonbd": "clv",
    "gammagamma_expected_spend": "clv",
    "paretonbd_expected_purchases": "clv",
    "paretonbd_probability_alive": "clv",
    "compute_cohort_activity": "cohorts",
    "compute_cohorts": "cohorts",
    "summarize_customers": "engine",
    "AnalyticsInputError": "errors",
    "InsufficientDataError": "errors",
    "check_not_future": "io",
    "normalize_transactions": "io",
    "read_transactions": "io",
    "LifecycleThresholds": "lifecycle",
    "assign_lifecycle_stages": "lifecycle",
    "diff_lifecycle_stages": "lifecycle",
    "DEFAULT_SEGMENT_RULES": "rfm",
    "score_rfm": "rfm",
    "score_customers": "scores",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{home}", __name__), name)


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
