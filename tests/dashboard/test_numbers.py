"""One number format on the page, in Excel and in the PDF; definitions; revenue over time."""

from __future__ import annotations

import datetime as dt
import json
import re
from html import unescape

import pytest
from django.test import Client
from django.utils import translation

from kequn.commerce.models import Channel
from kequn.dashboard import exports, numbers, services
from kequn.dashboard.queries import Filters, build_dashboard
from kequn.security.actors import system_actor
from tests.dashboard.conftest import NOW, days_ago, order, person
from tests.dashboard.test_pages import pdf_text


@pytest.fixture
def refreshed(base):
    services.refresh_dashboard(by=system_actor("test"), now=base.now)
    return base


def client_for(user, language: str) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    client.cookies["django_language"] = language
    return client


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("zh-hans", ("28,986", "16,556,413.00", "1,655.6万", "97.3%", "+12.5%", "99,999.00")),
        ("en", ("28,986", "16,556,413.00", "16.6M", "97.3%", "+12.5%", "99,999.00")),
    ],
)
def test_one_format_per_language(language, expected):
    with translation.override(language):
        got = (
            numbers.format_number(28986.0),
            numbers.format_number(16556413, numbers.MONEY),
            numbers.format_compact(16556413, numbers.MONEY),
            numbers.format_number(97.25, numbers.PERCENT),
            numbers.format_change(12.45),
            numbers.format_compact(99999, numbers.MONEY),
        )
    assert got == expected


def test_halves_round_up_on_the_page_and_in_the_pdf():
    # 97.25 is exactly representable: Python's "%.1f" gave 97.2, the page's floatformat 97.3.
    assert f"{97.25:.1f}" == "97.2"
    assert exports._num(97.25, "percent") == numbers.format_number(97.25, "percent") == "97.3%"
    assert exports._num(28986.0) == "28,986"


def test_pdf_prints_counts_money_and_percentages_like_the_page(refreshed, admin_user):
    content = client_for(admin_user, "en").get("/admin/dashboard/export.pdf?period=7").content
    text = pdf_text(content)
    assert "(250.00)" in text and "(+150.0%)" in text
    # Counts are whole numbers: "2", never "2.0" (the PDF printed 28986.0).
    assert not re.search(r"\(\d[\d,]*\.0\)", text)
    assert "(100.0%)" in text or "(50.0%)" in text  # the repeat-purchase rate has its % sign


def test_kpi_cards_are_compact_with_the_exact_value_and_a_definition(refreshed, admin_user):
    Channel.objects.filter(pk=refreshed.web.pk).update(name="Web shop")
    from kequn.dashboard.models import KpiWindow

    KpiWindow.objects.filter(is_current=True, channel__isnull=True, period_days=7).update(
        revenue=16556413.0
    )
    html = client_for(admin_user, "zh-hans").get("/admin/?period=7").content.decode()
    card = re.search(r'data-kpi="revenue">(.*?)<div class="kq-kpi-change', html, re.S)
    assert card is not None, html[html.index('data-kpi="revenue"') :][:600]
    value = re.search(r'class="kq-kpi-value"[^>]*title="([^"]+)">([^<]+)<', card.group(1))
    assert value.groups() == ("16,556,413.00", "1,655.6万")
    definitions = re.findall(r'class="kq-kpi-label" title="([^"]*)"', html)
    assert len(definitions) == 10 and all(definitions)
    # The KPI counting sign-ups is not called like the lifecycle stage "新客户".
    labels = re.findall(r'class="kq-kpi-label"[^>]*>([^<]+)<', html)
    assert "新增客户 " in labels and "新客户 " not in labels
    # Every chart heading says what it counts.
    assert len(re.findall(r'<h2 id="kq-[a-z]+-title" title="[^"]+"', html)) >= 10


def test_revenue_and_orders_over_time_with_the_previous_period(refreshed):
    trend = build_dashboard(Filters(period=7))["trend"]
    assert trend["labels"] == ["06-08", "06-09", "06-10", "06-11", "06-12", "06-13", "06-14"]
    # B bought 50 three days ago (point 4), A 200 two days ago (point 5).
    assert trend["revenue"] == [0, 0, 0, 0, 50.0, 200.0, 0]
    assert trend["orders"] == [0, 0, 0, 0, 1, 1, 0]
    # The week before: A's 100, ten days ago, at the same point of its week.
    assert trend["previous_revenue"] == [0, 0, 0, 0, 100.0, 0, 0]
    assert trend["previous_orders"] == [0, 0, 0, 0, 1, 0, 0]
    assert trend["enough"]


def test_the_page_draws_the_trend_with_the_shipped_chart_library(refreshed, admin_user):
    html = client_for(admin_user, "en").get("/admin/?period=7").content.decode()
    assert '<canvas id="kq-trend-chart"' in html
    data = json.loads(
        unescape(
            re.search(
                r'id="kq-trend-data" type="application/json">(.*?)</script>', html, re.S
            ).group(1)
        )
    )
    assert data["previous_revenue"] == [0, 0, 0, 0, 100.0, 0, 0]
    assert "/static/unfold/js/chart/chart.js" in html and "/static/dashboard/trend.js" in html
    assert "cdn" not in html.lower()


def test_a_trend_with_one_point_asks_for_more_history(refreshed, admin_user):
    newcomer = Channel.objects.create(code="app", name="App", kind="online")
    order(person("Eve", "Guangdong", "Shenzhen", days_ago(1)), newcomer, "88.00", days_ago(0.1))
    services.refresh_dashboard(by=system_actor("test"), now=NOW)
    trend = build_dashboard(Filters(period=7, channel=newcomer))["trend"]
    assert trend["points"] == 1 and not trend["enough"]
    html = client_for(admin_user, "en").get(f"/admin/?period=7&channel={newcomer.pk}").content
    html = html.decode()
    assert 'data-testid="trend-needs-history"' in html and "needs more history" in html
    assert "kq-trend-chart" not in html


def test_segment_sizes_with_one_refresh_list_sizes_instead_of_lone_dots(refreshed, admin_user):
    html = client_for(admin_user, "en").get("/admin/?period=7").content.decode()
    section = html[html.index('data-chart="segments"') :]
    section = section[: section.index("</section>")]
    assert 'data-testid="segments-needs-history"' in section
    assert "<circle" not in section and "<polyline" not in section
    # The RFM segment named like a lifecycle stage is told apart.
    assert "(RFM)" in section


def test_a_store_with_no_history_before_the_period_has_no_comparison_line(db):
    shop = Channel.objects.create(code="new", name="New shop", kind="online")
    buyer = person("Fay", "Guangdong", "Shenzhen", days_ago(3))
    for days in (3, 2, 1):
        order(buyer, shop, "10.00", days_ago(days))
    services.refresh_dashboard(by=system_actor("test"), now=NOW)
    trend = build_dashboard(Filters(period=7))["trend"]
    # From the first purchase's point on: no week of zeros before the shop opened.
    assert trend["points"] == 3 and trend["enough"]
    assert trend["revenue"] == [10.0, 10.0, 10.0] and trend["labels"][0] == "06-12"
    assert trend["previous_revenue"] == []
    assert NOW - dt.timedelta(days=7) < days_ago(3)


def test_counts_have_thousands_separators_in_chinese_everywhere():
    from django.contrib.humanize.templatetags.humanize import intcomma

    # Django's zh_Hans formats have no separator: lists printed 28986 beside 16,556,413.00.
    with translation.override("zh-hans"):
        assert intcomma(28986) == "28,986"
    with translation.override("en"):
        assert intcomma(28986) == "28,986"
