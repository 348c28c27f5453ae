"""A win-probability model trained on the business's closed deals, judged on held-out time.

Each closed deal is seen as it stood in its last open stage: the stage's default probability,
the deal's age and amount, the activities logged on it by then and the account's lifetime
value score. A logistic regression is trained on the earlier 70 % of closes (by close time)
and evaluated on the later 30 % against the baseline that uses the stage's probability alone
(log loss and AUC). The model is used only when it beats the baseline on both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Count, Q

from kequn.sales.models import Activity, Deal, DealStageChange, Stage, WinModel
from kequn.scoring.models import CustomerScore
from kequn.security.actors import Actor
from kequn.security.audit import services as audit

FEATURES = ("stage_probability", "age_days", "log_amount", "activities", "account_clv")
MIN_DEALS = 40


@dataclass
class Example:
    closed_at: datetime
    won: int
    features: list[float]


def load_examples() -> list[Example]:
    """Return every closed deal's features as of its last open stage, oldest close first."""
    stages = {s.pk: s for s in Stage.objects.all()}
    last_open: dict[int, tuple[int, datetime]] = {}
    for deal_id, to_stage, at in DealStageChange.objects.order_by("changed_at", "id").values_list(
        "deal_id", "to_stage_id", "changed_at"
    ):
        stage = stages.get(to_stage)
        if stage is not None and not stage.is_closed:
            last_open[deal_id] = (to_stage, at)
    deals = list(
        Deal.objects.filter(
            status__in=[Deal.Status.WON, Deal.Status.LOST], closed_at__isnull=False
        ).values_list("id", "status", "amount", "created_at", "closed_at", "account_id", "stage_id")
    )
    clv = dict(
        CustomerScore.objects.filter(customer_id__in={d[5] for d in deals}).values_list(
            "customer_id", "clv"
        )
    )
    counts = dict(
        Activity.objects.filter(deal_id__in=[d[0] for d in deals])
        .values("deal_id")
        .annotate(n=Count("id", filter=Q(occurred_at__isnull=False)))
        .values_list("deal_id", "n")
        .order_by()
    )
    examples = []
    for deal_id, status, amount, created, closed, account_id, stage_id in deals:
        stage_id, seen_at = last_open.get(deal_id, (stage_id, created))
        stage = stages[stage_id]
        probability = stage.probability if not stage.is_closed else 10
        features = [
            probability / 100,
            max((seen_at - created).total_seconds() / 86400, 0.0),
            math.log1p(float(amount or 0)),
            float(counts.get(deal_id, 0)),
            math.log1p(max(float(clv.get(account_id) or 0), 0.0)),
        ]
        examples.append(Example(closed or created, int(status == Deal.Status.WON), features))
    examples.sort(key=lambda e: e.closed_at)
    return examples


def evaluate(examples: list[Example], test_share: float = 0.3) -> tuple[dict[str, Any], Any]:
    """Train on the earlier closes, score the later ones; return metrics and the fitted model."""
    import numpy as np  # noqa: PLC0415 -- numeric stack only when training
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415
    from sklearn.metrics import log_loss, roc_auc_score  # noqa: PLC0415
    from sklearn.pipeline import make_pipeline  # noqa: PLC0415
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

    cut = int(len(examples) * (1 - test_share))
    train, test = examples[:cut], examples[cut:]
    x_train = np.array([e.features for e in train])
    y_train = np.array([e.won for e in train])
    x_test = np.array([e.features for e in test])
    y_test = np.array([e.won for e in test])
    if len(set(y_train)) < 2 or len(set(y_test)) < 2:
        raise ValueError("both won and lost deals are needed before and after the time split")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(x_train, y_train)
    predicted = np.clip(model.predict_proba(x_test)[:, 1], 1e-6, 1 - 1e-6)
    baseline = np.clip(x_test[:, 0], 0.01, 0.99)  # the stage's probability alone
    metrics = {
        "train_deals": len(train),
        "test_deals": len(test),
        "split_at": test[0].closed_at.isoformat(),
        "model": {
            "log_loss": float(log_loss(y_test, predicted, labels=[0, 1])),
            "auc": float(roc_auc_score(y_test, predicted)),
        },
        "baseline": {
            "log_loss": float(log_loss(y_test, baseline, labels=[0, 1])),
            "auc": float(roc_auc_score(y_test, baseline)),
        },
    }
    return metrics, model


def is_better(metrics: dict[str, Any]) -> bool:
    """Return whether the model beats the stage baseline on held-out log loss and AUC."""
    model, baseline = metrics["model"], metrics["baseline"]
    return model["log_loss"] < baseline["log_loss"] and model["auc"] >= baseline["auc"]


def train_win_model(*, by: Actor) -> WinModel:
    """Train, evaluate against the baseline, and store the model (used only if better)."""
    from django.core.exceptions import ValidationError  # noqa: PLC0415 -- the refusal

    examples = load_examples()
    if len(examples) < MIN_DEALS:
        raise ValidationError(
            f"only {len(examples)} closed deals: the win model needs at least {MIN_DEALS}"
        )
    try:
        metrics, model = evaluate(examples)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    # Refit on every deal for use; the metrics stay those of the held-out evaluation.
    import numpy as np  # noqa: PLC0415

    model.fit(np.array([e.features for e in examples]), np.array([e.won for e in examples]))
    scaler, regression = model.steps[0][1], model.steps[1][1]
    parameters = {
        "features": list(FEATURES),
        "mean": scaler.mean_.tolist(),
        "scale": scaler.scale_.tolist(),
        "coef": regression.coef_[0].tolist(),
        "intercept": float(regression.intercept_[0]),
    }
    used = is_better(metrics)
    with transaction.atomic():
        if used:
            WinModel.objects.filter(is_used=True).update(is_used=False)
        stored = WinModel.objects.create(parameters=parameters, metrics=metrics, is_used=used)
        audit.record_event(audit.CREATE, actor=by, target=stored, detail={"used": used})
    return stored


def predict(parameters: dict[str, Any], features: list[float]) -> float:
    """Return the win probability of one deal's features under stored parameters."""
    z = parameters["intercept"] + sum(
        c * (x - m) / (s or 1.0)
        for c, x, m, s in zip(
            parameters["coef"], features, parameters["mean"], parameters["scale"], strict=True
        )
    )
    return 1 / (1 + math.exp(-z))


def get_win_probability(deal: Deal) -> float:
    """Return the deal's win probability: the model's when one is in use, else the stage's."""
    model = WinModel.objects.filter(is_used=True).first()
    if model is None or deal.status != Deal.Status.OPEN:
        return deal.get_probability() / 100
    from django.utils import timezone  # noqa: PLC0415

    clv = (
        CustomerScore.objects.filter(customer_id=deal.account_id)
        .values_list("clv", flat=True)
        .first()
    )
    features = [
        deal.stage.probability / 100,
        max((timezone.now() - deal.created_at).total_seconds() / 86400, 0.0),
        math.log1p(float(deal.amount or 0)),
        float(deal.activities.count()),
        math.log1p(max(float(clv or 0), 0.0)),
    ]
    return predict(model.parameters, features)
