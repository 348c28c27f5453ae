"""Each dashboard number links to a customer list showing exactly the customers it counts."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from kequn.commerce.models import Order
from kequn.dashboard import services
from kequn.dashboard.queries import Filters, build_dashboard
from kequn.scoring.models import CustomerScore
from kequn.security.actors import system_actor
from kequn.segments import services as segment_services
from tests.dashboard.conftest import ZONE, order, person


@pytest.fixture
def cohorts(base):
    """Add customers whose first purchases sit on both sides of month ends, in local time.

    E: store 31 March 23:30, web 1 April 00:30, web 10 May (cohort March; web cohort April)
    F: web 1 April 00:10 (April)
    G: a cancelled web order in February, then web 1 March 00:00 (March, not February)
    """
    e = person("Erin", "Zhejiang", "Hangzhou", dt.datetime(2026, 1, 5, tzinfo=ZONE))
    f = person("Fang", "Zhejiang", "Ningbo", dt.datetime(2026, 1, 5, tzinfo=ZONE))
    g = person("Gao", "Jiangsu", "Suzhou", dt.datetime(2026, 1, 5, tzinfo=ZONE))
    order(e, base.store, "10.00", dt.datetime(2026, 3, 31, 23, 30, tzinfo=ZONE))
    order(e, base.web, "20.00", dt.datetime(2026, 4, 1, 0, 30, tzinfo=ZONE))
    order(e, base.web, "30.00", dt.datetime(2026, 5, 10, 12, 0, tzinfo=ZONE))
    order(f, base.web, "40.00", dt.datetime(2026, 4, 1, 0, 10, tzinfo=ZONE))
    order(g, base.web, "50.00", dt.datetime(2026, 2, 20, tzinfo=ZONE), status="cancelled")
    order(g, base.web, "60.00", dt.datetime(2026, 3, 1, 0, 0, tzinfo=ZONE))
    services.refresh_dashboard(by=system_actor("test"), now=base.now)
    return base


def expected_cohorts(channel_id: int | None) -> dict[str, dict[int, set[int]]]:
    """Work out each cohort from the orders themselves: month → offset → customer ids."""
    zone = timezone.get_default_timezone()
    months: dict[int, set[tuple[int, int]]] = defaultdict(set)
    purchases = Order.objects.filter(status__in=Order.PURCHASE_STATUSES, customer__isnull=False)
    if channel_id:
        purchases = purchases.filter(channel_id=channel_id)
    for customer_id, ordered_at in purchases.values_list("customer_id", "ordered_at"):
        local = ordered_at.astimezone(zone)
        months[customer_id].add((local.year, local.month))
    out: dict[str, dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))
    for customer_id, bought in months.items():
        first = min(bought)
        for year, month in bought:
            offset = (year - first[0]) * 12 + month - first[1]
            out[f"{first[0]}-{first[1]:02d}"][offset].add(customer_id)
    return out


def listed_ids(client: Client, link: str) -> set[int]:
    """Open a customer list link and return the ids of every row it lists (all pages)."""
    response = client.get(link)
    assert response.status_code == 200, link
    changelist = response.context["cl"]
    return set(changelist.queryset.values_list("pk", flat=True))


def test_time_zone_is_the_one_the_fixture_assumes():
    # The fixture's month ends are local wall-clock times of UTC+8.
    assert settings.TIME_ZONE == "Asia/Shanghai"


@pytest.mark.parametrize("channel", [None, "web", "store"])
def test_cohort_rows_and_cells_link_to_exactly_their_customers(cohorts, admin_client, channel):
    channel_obj = getattr(cohorts, channel) if channel else None
    expected = expected_cohorts(channel_obj.pk if channel_obj else None)
    data = build_dashboard(Filters(period=30, channel=channel_obj))
    rows = data["cohorts"]["rows"]
    assert {row["month"] for row in rows} == set(expected)
    for row in rows:
        assert row["link"], row
        query = parse_qs(urlsplit(row["link"]).query)
        assert query["first_purchase_month"] == [row["month"]]
        members = listed_ids(admin_client, row["link"])
        assert members == expected[row["month"]][0], (channel, row["month"])
        assert len(members) == row["size"]
        for cell in row["cells"]:
            if cell is None or not cell["customers"]:
                continue
            bought_again = listed_ids(admin_client, cell["link"])
            assert bought_again == expected[row["month"]][cell["offset"]]
            assert len(bought_again) == cell["customers"]


def test_month_boundaries_follow_local_time(cohorts, admin_client):
    url = "/admin/customers/customer/?first_purchase_month="
    names = {
        month: set(
            admin_client.get(url + month).context["cl"].queryset.values_list("name", flat=True)
        )
        for month in ("2026-02", "2026-03", "2026-04")
    }
    assert names["2026-02"] == set()  # G's February order was cancelled
    assert names["2026-03"] == {"Erin", "Gao", "Dong"}  # Dong: web, 7 March
    assert names["2026-04"] == {"Fang"}
    web = f"&purchase_channel={cohorts.web.pk}"
    april_web = admin_client.get(url + "2026-04" + web).context["cl"].queryset
    assert set(april_web.values_list("name", flat=True)) == {"Erin", "Fang"}


def test_a_month_that_cannot_be_read_says_so(cohorts, admin_client):
    admin_client.cookies["django_language"] = "en"
    response = admin_client.get(
        "/admin/customers/customer/?first_purchase_month=2026-13", follow=True
    )
    assert response.status_code == 200
    texts = [str(m) for m in response.context["messages"]]
    assert any("2026-13 is not a month: use YYYY-MM" in t for t in texts), texts


def test_stage_and_at_risk_links_list_exactly_those_customers(cohorts, admin_client):
    data = build_dashboard(Filters(period=30))
    for stage in data["stages"]:
        expected = set(
            CustomerScore.objects.filter(lifecycle_stage=stage["key"]).values_list(
                "customer_id", flat=True
            )
        )
        assert listed_ids(admin_client, stage["link"]) == expected
        assert len(expected) == stage["customers"]
    at_risk = next(k for k in data["kpis"] if k["key"] == "at_risk")
    assert listed_ids(admin_client, at_risk["link"]) == {cohorts.d.pk}
    assert at_risk["value"] == 1


def test_segment_bars_link_to_the_members(cohorts, admin_client):
    segment = segment_services.create_segment(
        "Zhejiang buyers",
        {
            "match": "all",
            "conditions": [{"field": "province", "operator": "eq", "value": "Zhejiang"}],
        },
        by=system_actor("test"),
    )
    segment_services.refresh_segment(segment, by=system_actor("test"))
    data = build_dashboard(Filters(period=30))
    bar = next(b for b in data["custom_segments"] if b["label"] == "Zhejiang buyers")
    assert parse_qs(urlsplit(bar["link"]).query) == {"segment": [str(segment.pk)]}
    members = listed_ids(admin_client, bar["link"])
    assert {c.name for c in type(cohorts.a).objects.filter(pk__in=members)} == {"Erin", "Fang"}
    assert len(members) == bar["customers"]


def test_dashboard_page_shows_the_cohort_links(cohorts, admin_client):
    html = admin_client.get("/admin/?period=30").content.decode()
    assert 'href="/admin/customers/customer/?first_purchase_month=2026-03"' in html
    again = "first_purchase_month=2026-03&amp;purchased_from=2026-04-01&amp;purchased_to=2026-04-30"
    assert f'href="/admin/customers/customer/?{again}"' in html
