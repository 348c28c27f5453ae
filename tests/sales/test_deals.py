"""Deals: stage rules with one-line refusals, weighted amounts, stage history and slips."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from kequn.sales import services
from kequn.sales.models import Deal, DealStageChange
from kequn.security.audit.models import AuditEntry
from tests.sales.helpers import SYSTEM, in_days, make_account, make_deal, make_pipeline, stage

pytestmark = pytest.mark.django_db


def test_won_without_amount_is_refused_and_nothing_changes():
    pipeline = make_pipeline()
    deal = make_deal(pipeline=pipeline, amount=None)
    with pytest.raises(ValidationError, match="needs its amount"):
        services.move_deal(deal, stage(pipeline, "Won"), by=SYSTEM)
    deal.refresh_from_db()
    assert deal.stage.name == "Qualification" and deal.status == Deal.Status.OPEN
    assert deal.stage_changes.count() == 1  # only the creation


def test_lost_needs_a_reason():
    pipeline = make_pipeline()
    deal = make_deal(pipeline=pipeline)
    with pytest.raises(ValidationError, match="lost_reason"):
        services.move_deal(deal, stage(pipeline, "Lost"), by=SYSTEM)
    services.move_deal(deal, stage(pipeline, "Lost"), by=SYSTEM, lost_reason="price")
    deal.refresh_from_db()
    assert deal.status == Deal.Status.LOST and deal.lost_reason == "price"
    assert deal.get_probability() == 0


def test_past_close_date_for_open_deal_is_refused():
    pipeline = make_pipeline()
    account = make_account()
    data = services.DealInput(
        name="x",
        account_id=account.pk,
        stage_id=stage(pipeline, "Proposal").pk,
        close_date=in_days(-1),
    )
    with pytest.raises(ValidationError, match=r"close_date: .* in the past"):
        services.create_deal(data, by=SYSTEM)
    assert not Deal.objects.exists()
    deal = make_deal(pipeline=pipeline)
    with pytest.raises(ValidationError, match="in the past"):
        services.update_deal(deal, {"close_date": in_days(-3)}, by=SYSTEM)


def test_stage_history_records_days_in_stage_and_slips():
    pipeline = make_pipeline()
    deal = make_deal(pipeline=pipeline, close_in=10)
    services.move_deal(deal, stage(pipeline, "Proposal"), by=SYSTEM)
    services.update_deal(deal, {"close_date": in_days(40)}, by=SYSTEM)
    services.move_deal(deal, stage(pipeline, "Won"), by=SYSTEM)
    changes = list(DealStageChange.objects.filter(deal=deal))
    assert [c.to_stage.name for c in changes] == ["Qualification", "Proposal", "Proposal", "Won"]
    assert changes[1].from_stage.name == "Qualification"
    assert changes[1].days_in_previous is not None and changes[1].days_in_previous >= 0
    slip = changes[2]
    assert slip.previous_close_date == in_days(10) and slip.close_date == in_days(40)
    deal.refresh_from_db()
    assert deal.status == Deal.Status.WON and deal.closed_at is not None
    assert AuditEntry.objects.filter(target_type="sales.deal", target_id=str(deal.pk)).count() >= 4


def test_probability_override_and_weighted_amount():
    pipeline = make_pipeline()
    deal = make_deal(pipeline=pipeline, stage_name="Proposal", amount="2000")
    assert deal.get_probability() == 50
    assert deal.weighted_amount == Decimal(1000)
    services.update_deal(deal, {"probability": 80}, by=SYSTEM)
    assert deal.weighted_amount == Decimal(1600)
    with pytest.raises(ValidationError, match="probability"):
        services.update_deal(deal, {"probability": 101}, by=SYSTEM)


def test_move_to_another_pipelines_stage_is_refused():
    first, second = make_pipeline(), make_pipeline()
    deal = make_deal(pipeline=first)
    with pytest.raises(ValidationError, match="another pipeline"):
        services.move_deal(deal, stage(second, "Proposal"), by=SYSTEM)


def test_pipeline_needs_won_and_lost_stages():
    with pytest.raises(ValidationError, match="won stage and a lost stage"):
        services.create_pipeline(name="broken", stages=[services.StageSpec("Only", 10)], by=SYSTEM)
