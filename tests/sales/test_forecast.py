"""Forecast, accuracy, funnel, velocity and win rates, on deals counted by hand."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from kequn.sales import selectors, services
from kequn.sales.forecasting import take_forecast_snapshots
from kequn.sales.models import ForecastSnapshot, Quota
from tests.sales.helpers import SYSTEM, make_deal, make_pipeline, make_rep, stage

pytestmark = pytest.mark.django_db


@pytest.fixture
def book():
    rep = make_rep()
    pipeline = make_pipeline()
    deals = {
        "qualification": make_deal(rep, pipeline, "Qualification", "1000", close_in=1),
        "proposal": make_deal(rep, pipeline, "Proposal", "2000", close_in=1),
        "negotiation": make_deal(rep, pipeline, "Negotiation", "4000", close_in=1),
        "won": make_deal(rep, pipeline, "Negotiation", "8000", close_in=1),
        "lost": make_deal(rep, pipeline, "Proposal", "500", close_in=1),
    }
    services.move_deal(deals["won"], stage(pipeline, "Won"), by=SYSTEM)
    services.move_deal(deals["lost"], stage(pipeline, "Lost"), by=SYSTEM, lost_reason="price")
    return rep, pipeline, deals


def test_forecast_categories_and_quota(book):
    rep, _pipeline, deals = book
    month = selectors.month_start(deals["won"].close_date)
    Quota.objects.create(owner=rep, month=month, amount=Decimal(16000))
    rows = selectors.get_forecast(rep, start=month, months=1)
    assert len(rows) == 1
    row = rows[0]
    assert row.pipeline == Decimal(7000)  # open: 1000 + 2000 + 4000
    assert row.weighted == Decimal("4100.00")  # 100 + 1000 + 3000
    assert row.commit == Decimal(12000)  # won 8000 + commit 4000
    assert row.best_case == Decimal(14000)  # + best case 2000
    assert row.won == Decimal(8000)
    assert row.attainment == 0.5
    other = make_rep()
    assert selectors.get_forecast(other, start=month, months=1)[0].deals == 0


def test_quarter_labels():
    rep = make_rep()
    rows = selectors.get_forecast(
        rep,
        start=selectors.month_start(selectors.add_month(services.today(), 0)),
        months=6,
        by_quarter=True,
    )
    assert all("-Q" in r.period for r in rows) and 2 <= len(rows) <= 3


def test_funnel_and_win_rates(book):
    rep, pipeline, _deals = book
    funnel = {s.stage.name: s for s in selectors.get_funnel(rep, pipeline)}
    # A deal entered in a later stage passed the earlier ones; the lost one reached Proposal.
    assert funnel["Qualification"].reached == 5
    assert funnel["Proposal"].reached == 4
    assert funnel["Negotiation"].reached == 2
    assert funnel["Proposal"].conversion == 0.5
    assert funnel["Won"].reached == 1
    rates = {r.key: r for r in selectors.get_win_rates(rep, "owner")}
    assert rates[rep.username].won == 1 and rates[rep.username].lost == 1
    assert rates[rep.username].rate == 0.5
    velocity = selectors.get_velocity(rep, pipeline)
    assert velocity.open_deals == 3 and velocity.win_rate == 0.5


def test_accuracy_compares_first_snapshot_with_won(book):
    rep, _pipeline, deals = book
    month = selectors.month_start(deals["won"].close_date)
    take_forecast_snapshots(on=month)
    snap = ForecastSnapshot.objects.get(owner=rep, month=month)
    assert snap.weighted == Decimal("12100.00")  # open weighted 4100 + won 8000
    take_forecast_snapshots(on=month)  # idempotent per day
    assert ForecastSnapshot.objects.filter(owner=rep, month=month).count() == 1
    rows = selectors.get_forecast_accuracy(
        rep, today=selectors.add_month(month, 1) + timedelta(days=3)
    )
    assert [r.month for r in rows] == [f"{month:%Y-%m}"]
    assert rows[0].won == Decimal(8000)
    assert rows[0].accuracy == pytest.approx(1 - 4100 / 8000)
