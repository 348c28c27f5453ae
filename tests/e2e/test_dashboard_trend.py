"""The revenue-over-time chart draws in a real browser with the Chart.js unfold ships."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from kequn.dashboard import services
from kequn.security.actors import system_actor
from tests.dashboard.conftest import build_base
from tests.e2e.conftest import add_authenticator, log_in, shoot

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "e2e-Pass-word-42"


@pytest.mark.slow
def test_trend_chart_draws_this_and_the_previous_period(page, transactional_db):
    data = build_base()
    services.refresh_dashboard(now=data.now, by=system_actor("tests"))
    boss = User.objects.create_superuser("boss", password=PASSWORD)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    log_in(page, "boss", PASSWORD, add_authenticator(boss))
    page.goto("/admin/?period=7")
    page.wait_for_function(
        "window.Chart && Chart.getChart(document.getElementById('kq-trend-chart'))"
    )
    chart = page.evaluate(
        """() => {
            const c = Chart.getChart(document.getElementById('kq-trend-chart'));
            return {labels: c.data.labels, sets: c.data.datasets.map(d => [d.label, d.data])};
        }"""
    )
    assert chart["labels"] == ["06-08", "06-09", "06-10", "06-11", "06-12", "06-13", "06-14"]
    by_label = dict(chart["sets"])
    assert by_label["Revenue"] == [0, 0, 0, 0, 50, 200, 0]
    assert by_label["Revenue, previous period"] == [0, 0, 0, 0, 100, 0, 0]
    # The KPI card is short and its exact value and definition are one hover away.
    card = page.locator('[data-kpi="revenue"]')
    assert card.locator(".kq-kpi-value").get_attribute("title") == "250.00"
    assert "paid" in card.locator(".kq-kpi-label").get_attribute("title")
    shoot(page, "dashboard-trend")
    assert not errors, errors
