"""Generated deal histories of differently shaped businesses, to judge the win model.

Each shape is a pipeline whose open stages a deal passes in order: in each it waits (an
exponential time around the stage's mean) and then moves on with the stage's chance, else it
is lost; after the last open stage it is won. What else decides the outcome differs by shape
(follow-up effort, deal size, stalling, the account's value) and so do the stage count, win
rate, amount distribution and activity pattern. The "stage only" shape has nothing but the
stage, with each stage's default set to its true chance of winning: there the stage
baseline is the best possible forecast and the model must not replace it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from kequn.customers.models import Customer
from kequn.sales import services
from kequn.sales.models import Activity, Deal, DealStageChange, Stage
from kequn.scoring.models import CustomerScore
from kequn.security.actors import Actor


@dataclass(frozen=True)
class StagePlan:
    name: str
    probability: int  # the default the business set (the baseline's forecast)
    advance: float  # the true chance of moving on, before the shape's effects
    mean_days: float


@dataclass(frozen=True)
class Shape:
    name: str
    stages: tuple[StagePlan, ...]
    amount: str  # "lognormal", "pareto" or "uniform"
    activities: str  # "steady" (a rate per day) or "bursts" (meetings before each move)
    activity_rate: float
    effort_effect: float = 0.0  # logit shift per sd of follow-up effort (seen in activities)
    size_effect: float = 0.0  # logit shift per sd of log amount
    value_effect: float = 0.0  # logit shift per sd of the account's lifetime value
    stall: float = 0.0  # doomed deals wait this much longer in each stage (1 = twice as long)


SHAPES = {
    "dealers": Shape(
        "dealers",
        (
            StagePlan("Qualified", 10, 0.75, 8),
            StagePlan("Demo", 30, 0.7, 10),
            StagePlan("Proposal", 60, 0.75, 12),
            StagePlan("Negotiation", 80, 0.85, 6),
        ),
        amount="lognormal",
        activities="steady",
        activity_rate=0.25,
        effort_effect=1.3,
    ),
    "enterprise": Shape(
        "enterprise",
        (
            StagePlan("Lead", 5, 0.7, 15),
            StagePlan("Discovery", 10, 0.75, 20),
            StagePlan("Solution", 20, 0.7, 25),
            StagePlan("Pilot", 35, 0.8, 30),
            StagePlan("Proposal", 50, 0.75, 15),
            StagePlan("Procurement", 70, 0.85, 20),
            StagePlan("Contract", 85, 0.9, 10),
        ),
        amount="pareto",
        activities="bursts",
        activity_rate=3,
        size_effect=-0.7,
        value_effect=0.8,
        stall=1.5,
    ),
    "stage-only": Shape(
        "stage-only",
        (
            StagePlan("Contacted", 36, 0.8, 7),
            StagePlan("Quoted", 45, 0.75, 7),
            StagePlan("Ordering", 60, 0.6, 5),
        ),
        amount="uniform",
        activities="steady",
        activity_rate=0.2,
    ),
}


def _amount(shape: Shape, rng: random.Random) -> float:
    if shape.amount == "lognormal":
        return rng.lognormvariate(math.log(80_000), 0.7)
    if shape.amount == "pareto":
        return 100_000 * rng.paretovariate(1.3)
    return rng.uniform(5_000, 50_000)


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def create_deal_set(
    shape_name: str, *, deals: int, by: Actor, seed: int = 1, now: datetime | None = None
) -> dict[str, int]:
    """Write a generated business of the shape (pipeline, accounts, deals, history, activities)."""
    shape = SHAPES[shape_name]
    rng = random.Random(seed)  # noqa: S311 -- generated data, not secrets
    now = now or timezone.now()
    pipeline = services.create_pipeline(
        name=f"generated {shape.name} {seed}",
        stages=[
            *(services.StageSpec(s.name, s.probability) for s in shape.stages),
            services.StageSpec("Won", 100, Stage.Forecast.CLOSED, is_won=True),
            services.StageSpec("Lost", 0, Stage.Forecast.OMITTED, is_lost=True),
        ],
        by=by,
    )
    stages = list(pipeline.stages.order_by("position"))
    won_stage = next(s for s in stages if s.is_won)
    lost_stage = next(s for s in stages if s.is_lost)
    owner = get_user_model().objects.get_or_create(
        username=f"generated-{shape.name}", defaults={"is_staff": True}
    )[0]
    n_accounts = max(deals // 3, 1)
    with transaction.atomic():
        accounts = Customer.objects.bulk_create(
            Customer(
                kind=Customer.Kind.COMPANY,
                name=f"{shape.name} account {seed}-{i}",
                external_ref=f"gen-{shape.name}-{seed}-{i}",
                owner=owner,
            )
            for i in range(n_accounts)
        )
        value = {a.pk: rng.gauss(0, 1) for a in accounts}
        CustomerScore.objects.bulk_create(
            CustomerScore(customer=a, computed_at=now, clv=math.exp(10 + value[a.pk]))
            for a in accounts
        )
        rows: list[tuple[Deal, list[tuple[datetime, Stage]], list[datetime]]] = []
        sizes = [_amount(shape, rng) for _ in range(deals)]
        logs = [math.log(a) for a in sizes]
        mean_log = sum(logs) / len(logs)
        sd_log = (sum((x - mean_log) ** 2 for x in logs) / len(logs)) ** 0.5 or 1.0
        for i in range(deals):
            account = accounts[i % n_accounts]
            effort = rng.gauss(0, 1)
            shift = (
                shape.effort_effect * effort
                + shape.size_effect * (logs[i] - mean_log) / sd_log
                + shape.value_effect * value[account.pk]
            )
            created = now - timedelta(days=rng.uniform(0, 540))
            moment = created
            path: list[tuple[datetime, Stage]] = [(created, stages[0])]
            outcome: Stage | None = None
            for index, plan in enumerate(shape.stages):
                moves_on = rng.random() < _sigmoid(_logit(plan.advance) + shift)
                wait = rng.expovariate(1 / plan.mean_days) * (1 if moves_on else 1 + shape.stall)
                moment += timedelta(days=wait)
                if moment > now:
                    break
                if not moves_on:
                    outcome = lost_stage
                    path.append((moment, lost_stage))
                    break
                following = stages[index + 1]
                path.append((moment, following))
                if following.is_won:
                    outcome = won_stage
                    break
            end = moment if outcome is not None else now
            times: list[datetime] = []
            if shape.activities == "steady":
                rate = shape.activity_rate * math.exp(0.8 * effort if shape.effort_effect else 0)
                t = created + timedelta(days=rng.expovariate(rate))
                while t < end:
                    times.append(t)
                    t += timedelta(days=rng.expovariate(rate))
            else:  # a few meetings in the days before each move, whatever the deal's fate
                for at, _stage in path[1:]:
                    for _ in range(rng.randint(0, int(shape.activity_rate))):
                        times.append(at - timedelta(days=rng.uniform(0, 5)))
                times = sorted(t for t in times if created <= t <= end)
            current = path[-1][1]
            deal = Deal(
                name=f"{shape.name} deal {i}",
                account=account,
                pipeline=pipeline,
                stage=current,
                status=Deal.Status.WON
                if current.is_won
                else Deal.Status.LOST
                if current.is_lost
                else Deal.Status.OPEN,
                amount=Decimal(f"{sizes[i]:.2f}"),
                close_date=(end + timedelta(days=30)).date() if outcome is None else end.date(),
                owner=owner,
                lost_reason="generated" if current.is_lost else "",
                created_at=created,
                stage_entered_at=path[-1][0],
                closed_at=end if outcome is not None else None,
            )
            rows.append((deal, path, times))
        Deal.objects.bulk_create([r[0] for r in rows], batch_size=2000)
        changes = []
        activities = []
        for deal, path, times in rows:
            previous: tuple[datetime, Stage] | None = None
            for at, stage in path:
                changes.append(
                    DealStageChange(
                        deal=deal,
                        from_stage=previous[1] if previous else None,
                        to_stage=stage,
                        changed_at=at,
                        days_in_previous=(at - previous[0]).total_seconds() / 86400
                        if previous
                        else None,
                        amount=deal.amount,
                        close_date=deal.close_date,
                    )
                )
                previous = (at, stage)
            activities += [
                Activity(
                    kind=Activity.Kind.CALL,
                    subject="follow-up",
                    occurred_at=t,
                    account=deal.account,
                    deal=deal,
                    owner=owner,
                )
                for t in times
            ]
        DealStageChange.objects.bulk_create(changes, batch_size=5000)
        Activity.objects.bulk_create(activities, batch_size=5000)
    closed = [d for d, _p, _t in rows if d.status != Deal.Status.OPEN]
    return {
        "deals": deals,
        "closed": len(closed),
        "won": sum(1 for d in closed if d.status == Deal.Status.WON),
        "stages": len(shape.stages),
        "activities": len(activities),
    }
