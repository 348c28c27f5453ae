"""Builders for sales tests: reps in the sales role, accounts, a pipeline, deals."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth.models import Group, User
from django.utils import timezone

from kequn.sales import services
from kequn.sales.models import Deal, Pipeline, Stage
from kequn.security.actors import system_actor
from kequn.security.roles import SALES

SYSTEM = system_actor("tests")
_seq = itertools.count(1)


def make_rep(name: str = "", role: str = SALES) -> User:
    """Return a staff user holding the sales role."""
    user = User.objects.create_user(
        name or f"rep{next(_seq)}", password="x", is_staff=True, email="rep@example.com"
    )
    user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)


def make_pipeline(name: str = "") -> Pipeline:
    return services.create_pipeline(name=name or f"New business {next(_seq)}", by=SYSTEM)


def stage(pipeline: Pipeline, name: str) -> Stage:
    return pipeline.stages.get(name=name)


def make_account(owner: User | None = None, name: str = "", **fields) -> object:
    n = next(_seq)
    return services.create_account(
        services.AccountInput(name=name or f"测试科技{n}号有限公司", **fields),
        by=SYSTEM,
        owner=owner,
        confirm=True,
    )


def in_days(days: int) -> date:
    return timezone.localdate() + timedelta(days=days)


def make_deal(
    owner: User | None = None,
    pipeline: Pipeline | None = None,
    stage_name: str = "Qualification",
    amount: str | None = "10000",
    close_in: int = 20,
    account=None,
) -> Deal:
    pipeline = pipeline or make_pipeline()
    account = account or make_account(owner)
    return services.create_deal(
        services.DealInput(
            name=f"Deal {next(_seq)}",
            account_id=account.pk,
            stage_id=stage(pipeline, stage_name).pk,
            close_date=in_days(close_in),
            amount=Decimal(amount) if amount is not None else None,
            owner_id=owner.pk if owner else None,
        ),
        by=SYSTEM,
    )
