"""The customer 360 page's value-scores panel: RFM, lifecycle, CLV, churn risk and why."""

from __future__ import annotations

from typing import Any

from django.utils.translation import get_language

from kequn.customers.models import Customer
from kequn.customers.profile import register_profile_panel
from kequn.scoring.models import CustomerScore, StageChange


def get_score_context(customer: Customer) -> dict[str, Any]:
    """Return the latest value scores, churn reasons in the user's language, stage history."""
    score = CustomerScore.objects.filter(customer=customer).first()
    reasons: list[str] = []
    if score and isinstance(score.churn_reasons, dict):
        language = "zh-hans" if get_language().lower().startswith("zh") else "en"
        found = score.churn_reasons.get(language) or []
        reasons = [found] if isinstance(found, str) else list(found)
    return {
        "score": score,
        # BG/NBD and Gamma-Gamma learn nothing about a customer from a single purchase: their
        # P(alive) is 1 and their expected order value the average of all customers, which
        # would contradict a churned stage and the one order shown beside them.
        "one_time_buyer": bool(score and (score.orders or 0) <= 1),
        "churn_risk_percent": score.churn_risk * 100
        if score and score.churn_risk is not None
        else None,
        "churn_reasons": [r for r in reasons if r],
        "stage_changes": list(
            StageChange.objects.filter(customer=customer).order_by("-changed_at", "-id")[:10]
        ),
    }


def register_profile_panels() -> None:
    """Add the value scores to the 360 page."""
    register_profile_panel(
        "scores",
        order=20,
        template="admin/customers/panels/scores.html",
        get_context=get_score_context,
    )
