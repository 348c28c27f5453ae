"""The customer 360 page shows the whole customer with correct totals in bounded queries."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from kequn.events.models import Event
from tests.backoffice.conftest import add_order

pytestmark = pytest.mark.django_db


def get_360(client, customer) -> str:
    """Fetch a customer's 360 page and return its HTML."""
    response = client.get(reverse("admin:customers_customer_360", args=[customer.pk]))
    assert response.status_code == 200
    return response.content.decode()


def get_metric(html: str, name: str) -> str:
    """Return the text of one totals card."""
    match = re.search(rf'data-metric="{name}">([^<]*)<', html)
    assert match, name
    return match.group(1).strip()


def test_360_shows_every_section(admin_client, data):
    html = get_360(admin_client, data.alice)
    # Profile, identities (normalised), consents in force and their history.
    assert "Alice Wang" in html and "Shenzhen" in html and "25-34" in html
    assert "+8613800138000" in html and "alice@example.com" in html
    assert "unsubscribe link" in html and "signup" in html
    # Tags with who added them; address; the company the person works for.
    assert "Value: VIP" in html and "admin" in html
    assert "1 Keyuan Road" in html
    assert "Acme Trading" in html and "Buyer" in html
    # Orders with lines, and events, most recent first.
    assert html.index("SO-1003") < html.index("SO-1002") < html.index("SO-1001")
    assert "CASE-001" in html and "PHONE-X" in html
    # A known event name and channel are shown by their labels, not as sent.
    assert "<span>浏览商品</span>" in html and "Product Viewed" not in html
    assert "WEB-2001" not in html
    assert f"?customer={data.alice.pk}" in html
    assert 'id="kequn-value-scores"' in html


def test_360_totals_count_purchases_only(admin_client, data):
    html = get_360(admin_client, data.alice)
    # SO-1003 is cancelled: two purchases, 3999 + 2 × 49.
    assert get_metric(html, "orders") == "2"
    assert get_metric(html, "revenue") == "4,097.00"
    assert get_metric(html, "first-purchase") == "2024-01-05"
    assert get_metric(html, "last-purchase") == "2024-03-09"


def test_360_of_company_lists_contacts(admin_client, data):
    html = get_360(admin_client, data.acme)
    assert "Alice Wang" in html
    assert reverse("admin:customers_customer_360", args=[data.alice.pk]) in html


def test_360_is_linked_from_list_and_change_page(admin_client, data):
    url = reverse("admin:customers_customer_360", args=[data.alice.pk])
    listing = admin_client.get(reverse("admin:customers_customer_changelist")).content.decode()
    assert url in listing
    change = admin_client.get(reverse("admin:customers_customer_change", args=[data.alice.pk]))
    button = reverse("admin:customers_customer_open_360", args=[data.alice.pk])
    assert button in change.content.decode()
    response = admin_client.get(button)
    assert response.status_code == 302 and response["Location"] == url


def test_360_missing_customer_is_404(admin_client, db):
    response = admin_client.get(reverse("admin:customers_customer_360", args=[999999]))
    assert response.status_code == 404


def count_queries(client, url: str) -> int:
    """Return how many queries one page load runs."""
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_query_counts_are_bounded_and_flat(admin_client, data, django_assert_max_num_queries):
    page_360 = reverse("admin:customers_customer_360", args=[data.alice.pk])
    listing = reverse("admin:customers_customer_changelist")
    orders = reverse("admin:commerce_order_changelist")
    # 25 for the page, about 2 for each panel of the second half's apps (journeys, tickets,
    # loyalty, survey answers) and up to 7 for its audit entry (an administrator sees
    # personal data unmasked; PostgreSQL adds the chain's advisory lock). Flat in the data:
    # checked below.
    with django_assert_max_num_queries(42):
        admin_client.get(page_360)
    with django_assert_max_num_queries(20):
        admin_client.get(listing)
    before = [count_queries(admin_client, u) for u in (page_360, listing, orders)]

    zone = timezone.get_current_timezone()
    for i in range(30):
        when = dt.datetime(2024, 5, 1, tzinfo=zone) + dt.timedelta(days=i)
        add_order(data.alice, f"SO-9{i:03d}", data.web, data.phone_case, 1, "completed", when)
        Event.objects.create(name="Product Added", customer=data.alice, occurred_at=when)
    after = [count_queries(admin_client, u) for u in (page_360, listing, orders)]
    assert after == before


def test_360_header_names_the_customer(admin_client, data):
    html = get_360(admin_client, data.alice)
    header = re.search(r'<header[^>]*id="kequn-360-header">(.*?)</header>', html, re.S).group(1)
    assert '<h1 class="text-2xl' in header and "Alice Wang" in header
    assert f"{data.alice.pk}" in header


def test_360_recommendations_give_a_translated_reason_and_spaced_price(admin_client, data):
    from kequn.recommend.models import Recommendation

    Recommendation.objects.create(
        customer=data.bob, product=data.phone, rank=1, score=0.9, source="hybrid_1_0_1"
    )
    html = get_360(admin_client, data.bob)
    section = html[html.index('id="kequn-recommendations"') :]
    section = section[: section.index("</section>")]
    assert "hybrid" not in section
    assert "常与其已购商品一起购买，且为热门商品" in section
    price = re.search(
        r'<td class="text-right[^"]*" style="padding-left: 1rem" data-price>', section
    )
    reason = re.search(r'<td class="pl-6[^"]*" style="padding-left: 1.5rem" data-reason>', section)
    assert price and reason  # the two columns no longer touch
    assert "3,999.00" in section


def test_360_figures_of_a_one_time_buyer_agree(admin_client, data):
    from kequn.scoring.models import CustomerScore

    CustomerScore.objects.create(
        customer=data.bob,
        computed_at=timezone.now(),
        orders=1,
        revenue=147,
        r_score=1,
        f_score=1,
        m_score=1,
        lifecycle_stage="churned",
        p_alive=1.0,
        expected_purchases=0.05,
        expected_spend=4416.4,
        clv=961.9,
        churn_risk=0.991,
        churn_percentile=96.25,
    )
    html = get_360(admin_client, data.bob)
    assert get_metric(html, "orders") == "1"
    # P(alive) = 1 beside "churned" and a 99% churn risk would contradict them: not shown.
    p_alive = re.search(r'data-metric="p-alive">([^<]*)<', html).group(1)
    assert "1.00" not in p_alive and "100" not in p_alive and "一次购买" in p_alive
    expected = re.search(r'data-metric="expected">([^<]*)<', html).group(1)
    assert "全体客户平均值" in expected and "4,416.40" in expected
    assert "99.1%" in html and "96.3%" in html  # churn risk and percentile, rounded half up


def test_360_says_when_the_scores_counted_other_purchases(admin_client, data):
    from kequn.scoring.models import CustomerScore

    CustomerScore.objects.create(
        customer=data.alice, computed_at=timezone.now(), orders=1, lifecycle_stage="new"
    )
    html = get_360(admin_client, data.alice)
    assert get_metric(html, "orders") == "2"
    assert re.search(r'data-metric="orders-at-refresh">[^<]*1[^<]*<', html)
