"""The win-probability model against the stage baseline on held-out time, and the demo slice."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import timezone

from kequn.demo.sales import create_b2b_slice
from kequn.sales import dealsets, services, winmodel
from kequn.sales.models import Deal, Pipeline, WinModel
from tests.sales.helpers import SYSTEM, make_deal, make_rep, stage

pytestmark = pytest.mark.django_db


@pytest.mark.slow  # a generated business of 400-600 deals: about 2 s
def test_model_replaces_the_baseline_where_follow_up_decides(capsys, make_api_client):
    made = dealsets.create_deal_set("dealers", deals=500, by=SYSTEM, seed=3)
    assert 0.15 < made["won"] / made["closed"] < 0.5
    call_command("sales", "train")
    model = WinModel.objects.get()
    metrics = model.metrics
    assert model.is_used
    assert metrics["model"]["auc"] > metrics["baseline"]["auc"] + 0.05
    assert metrics["log_loss_gain"] > 2 * metrics["log_loss_gain_se"] > 0
    table = capsys.readouterr().out
    assert "stage baseline" in table and "model used" in table
    # An open deal with no follow-up is forecast below one that was followed up closely.
    deals = Deal.objects.filter(status=Deal.Status.OPEN).select_related("stage")
    chances = {d.pk: winmodel.get_win_probability(d) for d in deals}
    quiet = [p for pk, p in chances.items() if not Deal.objects.get(pk=pk).activities.exists()]
    busy = [p for pk, p in chances.items() if Deal.objects.get(pk=pk).activities.count() >= 5]
    assert quiet and busy and max(quiet) < sum(busy) / len(busy)
    deal_id = next(iter(chances))
    answer = make_api_client(superuser=True).get(f"/api/v1/deals/{deal_id}/win-probability")
    assert answer.status_code == 200
    assert answer.json()["source"] == "model"
    assert answer.json()["probability"] == round(chances[deal_id], 4)


@pytest.mark.slow  # a generated business of 400-600 deals: about 2 s
def test_model_beats_the_baseline_on_size_value_and_stalls():
    dealsets.create_deal_set("enterprise", deals=600, by=SYSTEM, seed=5)
    model = winmodel.train_win_model(by=SYSTEM)
    assert model.is_used, model.metrics
    assert model.metrics["model"]["log_loss"] < model.metrics["baseline"]["log_loss"]


@pytest.mark.slow  # a generated business of 400-600 deals: about 2 s
def test_baseline_is_kept_when_only_the_stage_matters(capsys, make_api_client):
    dealsets.create_deal_set("stage-only", deals=600, by=SYSTEM, seed=7)
    call_command("sales", "train")
    model = WinModel.objects.get()
    assert not model.is_used
    assert "baseline kept" in capsys.readouterr().out
    open_deal = Deal.objects.filter(status=Deal.Status.OPEN).select_related("stage").first()
    # Without a model in use the forecast is the stage's default.
    assert winmodel.get_win_probability(open_deal) == open_deal.stage.probability / 100
    answer = make_api_client(superuser=True).get(f"/api/v1/deals/{open_deal.pk}/win-probability")
    assert answer.json() == {
        "deal_id": open_deal.pk,
        "probability": open_deal.stage.probability / 100,
        "source": "stage",
        "model_trained_at": None,
    }


@pytest.mark.slow  # a generated business of 400-600 deals: about 2 s
def test_a_worse_model_does_not_replace_the_one_in_use():
    dealsets.create_deal_set("dealers", deals=400, by=SYSTEM, seed=11)
    better = winmodel.train_win_model(by=SYSTEM)
    assert better.is_used
    Deal.objects.all().delete()
    dealsets.create_deal_set("stage-only", deals=500, by=SYSTEM, seed=13)
    worse = winmodel.train_win_model(by=SYSTEM)
    assert not worse.is_used
    assert WinModel.objects.get(is_used=True) == better


def test_snapshots_see_only_what_was_known_at_the_time():
    rep = make_rep()
    deal = make_deal(rep, stage_name="Qualification")
    start = timezone.now() - timedelta(days=30)
    Deal.objects.filter(pk=deal.pk).update(created_at=start, stage_entered_at=start)
    deal.stage_changes.update(changed_at=start)
    deal.refresh_from_db()
    day = lambda n: start + timedelta(days=n)  # noqa: E731
    services.move_deal(deal, stage(deal.pipeline, "Proposal"), by=SYSTEM, at=day(10))
    services.move_deal(deal, stage(deal.pipeline, "Lost"), by=SYSTEM, lost_reason="x", at=day(20))
    for n in (5, 25):  # one call while open, one after the deal was lost
        services.log_activity(
            services.ActivityInput(kind="call", subject="call", occurred_at=day(n),
                                   account_id=deal.account_id, deal_id=deal.pk),
            by=SYSTEM, owner=rep,
        )  # fmt: skip
    examples = winmodel.load_examples()
    # Weekly snapshots on days 0, 7 and 14: the stage then, and the calls logged by then.
    assert [e.stage_probability for e in examples] == [0.1, 0.1, 0.5]
    assert [round(math.expm1(e.numeric[4])) for e in examples] == [0, 1, 1]
    assert [round(math.expm1(e.numeric[2])) for e in examples] == [0, 7, 4]
    assert all(e.won == 0 for e in examples)


def test_too_few_closed_deals_is_a_clear_refusal():
    with pytest.raises(ValidationError, match="needs at least 40"):
        winmodel.train_win_model(by=SYSTEM)
    assert not WinModel.objects.exists()


def test_demo_slice_is_created_once():
    message = create_b2b_slice(by=SYSTEM, accounts=6)
    assert message.startswith("Sales: 6 company accounts, 3 pipelines")
    assert Pipeline.objects.count() == 3 and Deal.objects.exists()
    assert "already loaded" in create_b2b_slice(by=SYSTEM, accounts=6)
