"""The win-probability model against the stage baseline on held-out time, and the demo slice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from kequn.demo.sales import create_b2b_slice
from kequn.sales import services, winmodel
from kequn.sales.models import Activity, Deal, Pipeline, WinModel
from tests.sales.helpers import SYSTEM, make_account, make_deal, make_pipeline, make_rep, stage

pytestmark = pytest.mark.django_db


def test_model_used_only_when_it_beats_the_stage_baseline():
    rep = make_rep()
    pipeline = make_pipeline()
    account = make_account(rep)
    start = timezone.now() - timedelta(days=200)
    activities = []
    for i in range(60):
        deal = make_deal(rep, pipeline, "Proposal", "1000", account=account)
        busy = i % 3 != 0  # deals followed up closely are won; the stage says 50 % for all
        activities += [
            Activity(kind="call", subject="x", account=account, deal=deal, owner=rep)
            for _ in range(4 if busy else 0)
        ]
        target = stage(pipeline, "Won" if busy else "Lost")
        services.move_deal(deal, target, by=SYSTEM, lost_reason="price")
        Deal.objects.filter(pk=deal.pk).update(closed_at=start + timedelta(days=i))
    Activity.objects.bulk_create(activities)
    model = winmodel.train_win_model(by=SYSTEM)
    metrics = model.metrics
    assert metrics["test_deals"] == 18 and metrics["baseline"]["auc"] == 0.5
    assert metrics["model"]["auc"] > 0.9
    assert metrics["model"]["log_loss"] < metrics["baseline"]["log_loss"]
    assert model.is_used
    open_deal = make_deal(rep, pipeline, "Proposal", "1000", account=account)
    assert winmodel.get_win_probability(open_deal) < 0.5  # no follow-up yet


def test_too_few_closed_deals_is_a_clear_refusal():
    with pytest.raises(ValidationError, match="needs at least 40"):
        winmodel.train_win_model(by=SYSTEM)
    assert not WinModel.objects.exists()


def test_demo_slice_is_created_once():
    message = create_b2b_slice(by=SYSTEM, accounts=6)
    assert message.startswith("Sales: 6 company accounts, 3 pipelines")
    assert Pipeline.objects.count() == 3 and Deal.objects.exists()
    assert "already loaded" in create_b2b_slice(by=SYSTEM, accounts=6)
