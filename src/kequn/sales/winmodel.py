"""A win-probability model trained on the business's closed deals, judged on held-out time.

A closed deal is looked at as it stood once a week of its open life (stage, age, days in the
stage, amount, activities logged by then and how long since the last, the account's lifetime
value): these are the situations an open deal on the board is in, each labelled with how the
deal ended. A logistic regression is trained on the deals closed first (70 %) and scored on
the deals closed later (the validation slice) against the baseline that gives every snapshot
its stage's default probability. The model is used only when it beats the baseline there:
a lower log loss by more than two standard errors (taken over deals, since one deal's weeks
move together) and an AUC at least as high.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from kequn.sales.models import Activity, Deal, DealStageChange, Stage, WinModel
from kequn.scoring.models import CustomerScore
from kequn.security.actors import Actor
from kequn.security.audit import services as audit

NUMERIC_FEATURES = (
    "stage_logit",
    "log_age_days",
    "log_days_in_stage",
    "log_amount",
    "log_activities",
    "log_days_since_activity",
    "log_account_clv",
)
MIN_DEALS = 40
SNAPSHOT_DAYS = 7
MAX_SNAPSHOTS = 52  # a deal open for years counts as one year of weeks
TEST_SHARE = 0.3
STANDARD_ERRORS = 2.0


@dataclass
class Example:
    deal_id: int
    closed_at: datetime
    won: int
    stage_id: int
    stage_probability: float  # the stage's default, 0..1: the baseline's prediction
    numeric: list[float]


def _logit(probability: float) -> float:
    p = min(max(probability, 0.01), 0.99)
    return math.log(p / (1 - p))


def describe_situation(
    *,
    stage_probability: float,
    age_days: float,
    days_in_stage: float,
    amount: float,
    activities: int,
    days_since_activity: float | None,
    clv: float,
) -> list[float]:
    """Return the numeric features of a deal's situation (same order as NUMERIC_FEATURES)."""
    since = age_days if days_since_activity is None else days_since_activity
    return [
        _logit(stage_probability),
        math.log1p(max(age_days, 0.0)),
        math.log1p(max(days_in_stage, 0.0)),
        math.log1p(max(amount, 0.0)),
        math.log1p(activities),
        math.log1p(max(since, 0.0)),
        math.log1p(max(clv, 0.0)),
    ]


def _snapshot_times(created: datetime, closed: datetime) -> list[datetime]:
    span = max((closed - created).total_seconds() / 86400, 0.0)
    weeks = int(span // SNAPSHOT_DAYS) + 1
    step = SNAPSHOT_DAYS if weeks <= MAX_SNAPSHOTS else span / MAX_SNAPSHOTS
    count = min(weeks, MAX_SNAPSHOTS)
    return [created + timedelta(days=k * step) for k in range(count)]


def load_examples() -> list[Example]:
    """Return weekly snapshots of every closed deal's open life, earliest-closed deal first."""
    stages = {s.pk: s for s in Stage.objects.all()}
    deals = list(
        Deal.objects.filter(
            status__in=[Deal.Status.WON, Deal.Status.LOST], closed_at__isnull=False
        ).values_list("id", "status", "amount", "created_at", "closed_at", "account_id")
    )
    ids = [d[0] for d in deals]
    history: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for deal_id, to_stage, at in (
        DealStageChange.objects.filter(deal_id__in=ids)
        .order_by("deal_id", "changed_at", "id")
        .values_list("deal_id", "to_stage_id", "changed_at")
    ):
        history[deal_id].append((at, to_stage))
    activity_times: dict[int, list[datetime]] = defaultdict(list)
    for deal_id, at in (
        Activity.objects.filter(deal_id__in=ids)
        .order_by("deal_id", "occurred_at")
        .values_list("deal_id", "occurred_at")
    ):
        activity_times[deal_id].append(at)
    clv = dict(
        CustomerScore.objects.filter(customer_id__in={d[5] for d in deals}).values_list(
            "customer_id", "clv"
        )
    )
    examples: list[Example] = []
    for deal_id, status, amount, created, closed_at, account_id in deals:
        closed: datetime = closed_at or created  # never None: the query asks for a close time
        # Only the open part of the history: the move into the won or lost stage ends it.
        moves = [(at, s) for at, s in history.get(deal_id, []) if not stages[s].is_closed]
        if not moves:
            continue  # created already closed (an import): it was never an open deal
        times = [at for at, _stage in moves]
        done = activity_times.get(deal_id, [])
        won = int(status == Deal.Status.WON)
        for moment in _snapshot_times(created, closed):
            index = max(bisect.bisect_right(times, moment) - 1, 0)
            entered, stage_id = moves[index]
            stage = stages[stage_id]
            logged = bisect.bisect_right(done, moment)
            numeric = describe_situation(
                stage_probability=stage.probability / 100,
                age_days=(moment - created).total_seconds() / 86400,
                days_in_stage=(moment - max(entered, created)).total_seconds() / 86400,
                amount=float(amount or 0),
                activities=logged,
                days_since_activity=(moment - done[logged - 1]).total_seconds() / 86400
                if logged
                else None,
                clv=float(clv.get(account_id) or 0),
            )
            examples.append(
                Example(deal_id, closed, won, stage_id, stage.probability / 100, numeric)
            )
    examples.sort(key=lambda e: (e.closed_at, e.deal_id))
    return examples


def _design(examples: list[Example], stage_ids: list[int]) -> Any:
    import numpy as np  # noqa: PLC0415 -- numeric stack only when training

    column = {s: i for i, s in enumerate(stage_ids)}
    matrix = np.zeros((len(examples), len(NUMERIC_FEATURES) + len(stage_ids)))
    for row, example in enumerate(examples):
        matrix[row, : len(NUMERIC_FEATURES)] = example.numeric
        if example.stage_id in column:
            matrix[row, len(NUMERIC_FEATURES) + column[example.stage_id]] = 1.0
    return matrix


def split_by_close(examples: list[Example], test_share: float = TEST_SHARE) -> tuple[list, list]:
    """Split into the deals closed first and those closed later (no deal on both sides)."""
    order: list[int] = []
    for example in examples:
        if not order or order[-1] != example.deal_id:
            order.append(example.deal_id)
    later = set(order[int(len(order) * (1 - test_share)) :])
    return (
        [e for e in examples if e.deal_id not in later],
        [e for e in examples if e.deal_id in later],
    )


def _fit(examples: list[Example]) -> dict[str, Any]:
    import numpy as np  # noqa: PLC0415
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415

    stage_ids = sorted({e.stage_id for e in examples})
    matrix = _design(examples, stage_ids)
    mean = matrix.mean(axis=0)
    scale = matrix.std(axis=0)
    scale[scale == 0] = 1.0
    regression = LogisticRegression(C=1.0, max_iter=2000)
    regression.fit((matrix - mean) / scale, np.array([e.won for e in examples]))
    return {
        "features": [*NUMERIC_FEATURES, *(f"stage_{s}" for s in stage_ids)],
        "stage_ids": stage_ids,
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "coef": regression.coef_[0].tolist(),
        "intercept": float(regression.intercept_[0]),
    }


def _predict_many(parameters: dict[str, Any], examples: list[Example]) -> Any:
    import numpy as np  # noqa: PLC0415

    matrix = _design(examples, parameters["stage_ids"])
    z = ((matrix - np.array(parameters["mean"])) / np.array(parameters["scale"])) @ np.array(
        parameters["coef"]
    ) + parameters["intercept"]
    return 1 / (1 + np.exp(-z))


def evaluate(examples: list[Example], test_share: float = TEST_SHARE) -> dict[str, Any]:
    """Train on the deals closed first, score the later ones; return both sides' metrics."""
    import numpy as np  # noqa: PLC0415
    from sklearn.metrics import roc_auc_score  # noqa: PLC0415

    train, test = split_by_close(examples, test_share)
    y_train = {e.won for e in train}
    y_test = {e.won for e in test}
    if len(y_train) < 2 or len(y_test) < 2:
        raise ValueError(
            "both won and lost deals are needed among the earlier and the later closes"
        )
    parameters = _fit(train)
    y = np.array([e.won for e in test])
    predicted = np.clip(_predict_many(parameters, test), 1e-6, 1 - 1e-6)
    baseline = np.clip(np.array([e.stage_probability for e in test]), 0.01, 0.99)

    def losses(p: Any) -> Any:
        return -(y * np.log(p) + (1 - y) * np.log(1 - p))

    difference = losses(predicted) - losses(baseline)
    per_deal: dict[int, float] = defaultdict(float)
    for example, value in zip(test, difference, strict=True):
        per_deal[example.deal_id] += float(value)
    sums = np.array(list(per_deal.values()))
    # The standard error of the mean difference, with each deal's weeks as one draw.
    error = float(np.sqrt(len(sums)) * sums.std(ddof=1) / len(test)) if len(sums) > 1 else 0.0
    return {
        "train_deals": len({e.deal_id for e in train}),
        "test_deals": len(per_deal),
        "train_snapshots": len(train),
        "test_snapshots": len(test),
        "split_at": test[0].closed_at.isoformat(),
        "test_win_rate": float(np.mean([e.won for e in {x.deal_id: x for x in test}.values()])),
        "model": {
            "log_loss": float(losses(predicted).mean()),
            "auc": float(roc_auc_score(y, predicted)),
        },
        "baseline": {
            "log_loss": float(losses(baseline).mean()),
            "auc": float(roc_auc_score(y, baseline)),
        },
        "log_loss_gain": float(-difference.mean()),
        "log_loss_gain_se": error,
    }


def is_better(metrics: dict[str, Any]) -> bool:
    """Return whether the model beats the stage baseline on the validation slice."""
    gain, error = metrics["log_loss_gain"], metrics["log_loss_gain_se"]
    return gain > STANDARD_ERRORS * error and metrics["model"]["auc"] >= metrics["baseline"]["auc"]


def train_win_model(*, by: Actor) -> WinModel:
    """Train, evaluate against the baseline, and store the model (used only if better)."""
    examples = load_examples()
    closed = len({e.deal_id for e in examples})
    if closed < MIN_DEALS:
        raise ValidationError(
            f"only {closed} closed deals with an open history: the win model needs at least "
            f"{MIN_DEALS}; close more deals or import their stage history, then train again"
        )
    try:
        metrics = evaluate(examples)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    used = is_better(metrics)
    # Refit on every deal for use; the stored metrics stay those of the held-out evaluation.
    parameters = _fit(examples)
    with transaction.atomic():
        if used:
            WinModel.objects.filter(is_used=True).update(is_used=False)
        stored = WinModel.objects.create(parameters=parameters, metrics=metrics, is_used=used)
        audit.record_event(audit.CREATE, actor=by, target=stored, detail={"used": used})
    return stored


def format_comparison(metrics: dict[str, Any], used: bool) -> list[str]:
    """Return the held-out comparison as table lines for the console."""
    model, baseline = metrics["model"], metrics["baseline"]
    return [
        f"trained on {metrics['train_deals']} deals ({metrics['train_snapshots']} weekly "
        f"snapshots) closed before {metrics['split_at'][:10]}; validated on the "
        f"{metrics['test_deals']} closed after ({metrics['test_snapshots']} snapshots, "
        f"{metrics['test_win_rate']:.0%} won)",
        f"{'':<16}{'log loss':>10}{'AUC':>8}",
        f"{'model':<16}{model['log_loss']:>10.4f}{model['auc']:>8.4f}",
        f"{'stage baseline':<16}{baseline['log_loss']:>10.4f}{baseline['auc']:>8.4f}",
        f"log loss gain {metrics['log_loss_gain']:+.4f} (standard error "
        f"{metrics['log_loss_gain_se']:.4f}): "
        + ("model used" if used else "baseline kept (the model does not beat it)"),
    ]


def predict(parameters: dict[str, Any], stage_id: int, numeric: list[float]) -> float:
    """Return the win probability of one situation under stored parameters."""
    stage_ids = parameters["stage_ids"]
    row = [*numeric, *(1.0 if s == stage_id else 0.0 for s in stage_ids)]
    z = parameters["intercept"] + sum(
        c * (x - m) / (s or 1.0)
        for c, x, m, s in zip(
            parameters["coef"], row, parameters["mean"], parameters["scale"], strict=True
        )
    )
    return 1 / (1 + math.exp(-z))


def get_win_probability(deal: Deal, now: datetime | None = None) -> float:
    """Return the deal's win probability: the model's when one is in use, else the stage's."""
    model = WinModel.objects.filter(is_used=True).first()
    if model is None or deal.status != Deal.Status.OPEN:
        return deal.get_probability() / 100
    now = now or timezone.now()
    clv = (
        CustomerScore.objects.filter(customer_id=deal.account_id)
        .values_list("clv", flat=True)
        .first()
    )
    logged = deal.activities.filter(occurred_at__lte=now)
    last = logged.order_by("-occurred_at").values_list("occurred_at", flat=True).first()
    numeric = describe_situation(
        stage_probability=deal.stage.probability / 100,
        age_days=(now - deal.created_at).total_seconds() / 86400,
        days_in_stage=(now - deal.stage_entered_at).total_seconds() / 86400,
        amount=float(deal.amount or 0),
        activities=logged.count(),
        days_since_activity=(now - last).total_seconds() / 86400 if last else None,
        clv=float(clv or 0),
    )
    return predict(model.parameters, deal.stage_id, numeric)
