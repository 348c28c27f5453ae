"""Dashboard aggregates against numbers worked out by hand from the base in conftest.py."""

from __future__ import annotations

import pytest

from kequn.dashboard import services
from kequn.dashboard.models import ChartCell, DashboardRefresh, KpiWindow
from kequn.dashboard.queries import Filters, build_dashboard, parse_filters
from kequn.security.actors import system_actor


@pytest.fixture
def refreshed(base):
    services.refresh_dashboard(by=system_actor("test"), now=base.now)
    return base


def kpis(filters: Filters) -> dict[str, dict]:
    return {k["key"]: k for k in build_dashboard(filters)["kpis"]}


def test_last_7_days_all_channels(refreshed):
    k = kpis(Filters(period=7))
    # Current window: A (200, 2 days ago) and B (50, 3 days ago); the cancelled 999 is not a purchase.
    assert k["customers"]["value"] == 4 and k["customers"]["previous"] == 3
    assert k["new_customers"]["value"] == 1 and k["new_customers"]["previous"] == 0
    assert k["active_customers"]["value"] == 2 and k["active_customers"]["previous"] == 1
    assert k["revenue"]["value"] == pytest.approx(250) and k["revenue"][
        "previous"
    ] == pytest.approx(100)
    assert k["revenue"]["change"] == pytest.approx(150)
    # A has 3 purchases so far (a repeat buyer), B one: 1 of 2 buyers; before, A had 2 of 2.
    assert k["repeat_rate"]["value"] == pytest.approx(50)
    assert k["repeat_rate"]["previous"] == pytest.approx(100)
    assert k["average_order_value"]["value"] == pytest.approx(125)
    assert k["clv_total"]["value"] == pytest.approx(1230)
    assert k["clv_average"]["value"] == pytest.approx(410)
    assert k["clv_total"]["previous"] is None  # no history one period back yet


def test_stage_counts_come_from_scores_and_history(refreshed):
    k = kpis(Filters(period=7))
    assert k["at_risk"]["value"] == 1  # D, since 3 days ago
    assert k["at_risk"]["previous"] == 0  # D was active 7 days ago
    assert k["at_risk"]["good"] is None  # 0 -> 1 has no percentage
    k90 = kpis(Filters(period=90))
    assert k90["at_risk"]["previous"] is None  # the history starts 60 days ago


def test_period_change_30_and_365_days(refreshed):
    k = kpis(Filters(period=30))
    assert k["revenue"]["value"] == pytest.approx(350)  # 200 + 100 + 50
    assert k["revenue"]["previous"] == pytest.approx(300)  # A in store, 40 days ago
    assert k["revenue"]["change"] == pytest.approx(50 / 3)
    assert k["new_customers"]["value"] == 2  # B and C
    k365 = kpis(Filters(period=365))
    assert k365["revenue"]["value"] == pytest.approx(1050)
    assert k365["active_customers"]["value"] == 3


def test_channel_filter(refreshed):
    k = kpis(Filters(period=7, channel=refreshed.web))
    assert k["revenue"]["value"] == pytest.approx(200)
    assert k["active_customers"]["value"] == 1
    assert k["customers"]["value"] == 2  # A and D bought on the web
    assert k["at_risk"]["value"] == 1  # D is a web customer
    store = kpis(Filters(period=30, channel=refreshed.store))
    assert store["revenue"]["value"] == pytest.approx(50)
    assert store["revenue"]["previous"] == pytest.approx(300)
    assert store["new_customers"]["value"] == 1  # B's first store purchase; A's was 40 days ago


def test_charts(refreshed):
    d = build_dashboard(Filters(period=7))
    cells = {(c["r"], c["f"]): c for row in d["rfm"]["rows"] for c in row["cells"]}
    assert cells[5, 3]["customers"] == 1 and cells[5, 3]["revenue"] == pytest.approx(600)
    assert cells[1, 1]["customers"] == 1 and cells[2, 2]["customers"] == 0
    assert {s["key"]: s["customers"] for s in d["stages"]} == {
        "prospect": 1,
        "new": 1,
        "active": 1,
        "at_risk": 1,
    }
    assert [(f["from_key"], f["to_key"], f["customers"]) for f in d["flows"]] == [
        ("active", "at_risk", 1)
    ]
    flows_30 = build_dashboard(Filters(period=30))["flows"]
    assert {(f["from_key"], f["to_key"]) for f in flows_30} == {
        ("active", "at_risk"),
        ("new", "active"),
    }
    cohorts = {row["month"]: row for row in d["cohorts"]["rows"]}
    assert set(cohorts) == {"2026-03", "2026-05", "2026-06"}
    assert cohorts["2026-05"]["size"] == 1 and cohorts["2026-05"]["cells"][1]["pct"] == 100
    assert [(b["label"], b["customers"]) for b in d["clv"]] == [
        ("0 – 100", 1),
        ("100 – 200", 1),
        ("1,000 – 2,000", 1),
    ]
    assert [b["label"] for b in d["churn"]] == ["10–20%", "40–50%", "90–100%"]
    assert [(p["label"], p["revenue"]) for p in d["provinces"]] == [
        # Places are stored in their canonical short Chinese form (Guangdong -> 广东).
        ("广东", 200),
        ("北京", 50),
    ]
    assert {c["label"]: c["revenue"] for c in d["channel_breakdown"]} == {
        "Web shop": 200,
        "Shenzhen store": 50,
    }
    assert [s["key"] for s in d["segments_over_time"]["series"]] == [
        "champions",
        "hibernating",
        "new_customers",
    ]


def test_links_use_only_filters_the_customer_list_has(refreshed):
    d = build_dashboard(Filters(period=7))
    at_risk = next(k for k in d["kpis"] if k["key"] == "at_risk")
    assert at_risk["link"] == "/admin/customers/customer/?score__lifecycle_stage__exact=at_risk"
    assert d["provinces"][0]["link"] == "/admin/customers/customer/?province=%E5%B9%BF%E4%B8%9C"
    churn_top = d["churn"][-1]["link"]
    assert "score__churn_percentile_from=" in churn_top


def test_refresh_replaces_rows_and_logs_a_run(refreshed):
    first = KpiWindow.objects.count(), ChartCell.objects.count()
    services.refresh_dashboard(by=system_actor("test"), now=refreshed.now)
    assert (KpiWindow.objects.count(), ChartCell.objects.count()) == first
    runs = DashboardRefresh.objects.filter(status="done")
    assert runs.count() == 2 and runs.first().customers == 4 and runs.first().purchases == 5


def test_impossible_filters_are_explained(db):
    filters = parse_filters({"period": "1000", "channel": "999"})
    assert filters.period == 30 and filters.channel is None
    assert len(filters.errors) == 2
    assert "1000" in filters.errors[0] and "999" in filters.errors[1]
    assert parse_filters({"period": "-7"}).errors
    assert parse_filters({"period": "abc"}).errors
    assert not parse_filters({"period": "90"}).errors


def test_empty_store_refreshes_to_zeroes(db):
    run = services.refresh_dashboard(by=system_actor("test"))
    assert run.status == "done" and run.customers == 0
    assert build_dashboard(Filters())["state"] == "no_customers"


def test_task_runs_the_refresh(base):
    from kequn.dashboard.tasks import refresh_dashboard_task

    assert refresh_dashboard_task.call() == 4
