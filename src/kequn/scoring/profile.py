"""The customer 360 page's value-scores panel: RFM, lifecycle, CLV, churn risk and why."""

from __future__ import annotations

from typing import Any

from django.utils.translation import get_language

from kequn.customers.models import Customer
from kequn.customers.profile import register_profile_panel
from kequn.scoring.models import CustomerScore, ScoreRun, StageChange


def get_score_context(customer: Customer) -> dict[str, Any]:
    """Return the latest value scores, churn reasons in the user's language, stage history."""
    score = CustomerScore.objects.filter(customer=customer).first()
    reasons: list[str] = []
    if score and isinstance(score.churn_reasons, dict):
        language = "zh-hans" if get_language().lower().startswith("zh") else "en"
        found = score.churn_reasons.get(language) or []
        reasons = [found] if isinstance(found, str) else list(found)
    one_time_buyer = bool(score and (score.orders or 0) <= 1)
    # Only a one-time buyer's figures depend on the models: no query for everyone else.
    used = get_value_models() if one_time_buyer else {}
    return {
        "score": score,
        "one_time_buyer": one_time_buyer,
        # BG/NBD learns nothing about survival from a single purchase (its P(alive) is 1) and
        # the paper's Gamma-Gamma gives one-time buyers the average of all customers; the
        # page says so rather than show a figure that contradicts the churn risk beside it.
        # MBG/NBD and the first-order value do estimate them (kequn.analytics.valuemodels).
        "p_alive_estimated": not one_time_buyer
        or (score is not None and score.p_alive is not None and score.p_alive < 1),
        "order_value_basis": (
            "population"
            if one_time_buyer and used.get("spend_model", "repeat") == "repeat"
            else "first_order"
            if one_time_buyer
            else "own"
        ),
        "churn_risk_percent": score.churn_risk * 100
        if score and score.churn_risk is not None
        else None,
        "churn_reasons": [r for r in reasons if r],
        "stage_changes": list(
            StageChange.objects.filter(customer=customer).order_by("-changed_at", "-id")[:10]
        ),
    }


def get_value_models() -> dict[str, str]:
    """Return the purchase and order-value models of the latest finished refresh ({} if none)."""
    run = (
        ScoreRun.objects.filter(status=ScoreRun.Status.DONE)
        .order_by("-finished_at", "-id")
        .only("details")
        .first()
    )
    details = run.details if run and isinstance(run.details, dict) else {}
    used = (details.get("value_models") or {}).get("used") or {}
    return {k: str(v) for k, v in used.items() if isinstance(v, str)}


def register_profile_panels() -> None:
    """Add the value scores to the 360 page."""
    register_profile_panel(
        "scores",
        order=20,
        template="scoring/_customer_scores.html",
        get_context=get_score_context,
    )
