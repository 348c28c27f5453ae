"""The customer list filters the dashboard links to: purchases by channel and date, RFM digits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from kequn.commerce.models import Channel
from kequn.dashboard.queries import customers_url
from kequn.scoring.models import CustomerScore
from tests.factories import make_customer, make_order

LIST = "/admin/customers/customer/"


def shown(admin_client, query: str) -> set[int]:
    response = admin_client.get(f"{LIST}?{query}")
    assert response.status_code == 200, response.content[:300]
    return {c.pk for c in response.context["cl"].result_list}


@pytest.mark.django_db
def test_purchase_channel_and_dates_combine_on_the_same_orders(admin_client):
    store = Channel.objects.create(code="sh-store", name="上海门店", kind="store")
    online_recent, store_old, store_recent, refunded = (make_customer() for _ in range(4))
    make_order(online_recent, days_ago=3)
    old = make_order(store_old, days_ago=200)
    recent = make_order(store_recent, days_ago=3)
    make_order(store_recent, days_ago=300)
    gone = make_order(refunded, days_ago=3, status="refunded")
    for order in (old, recent, gone):
        order.channel = store
        order.save()
    since = (timezone.localdate() - timedelta(days=30)).isoformat()
    assert shown(admin_client, f"purchase_channel={store.pk}") == {store_old.pk, store_recent.pk}
    assert shown(admin_client, f"purchase_channel={store.pk}&purchased_from={since}") == {
        store_recent.pk
    }
    assert shown(admin_client, f"purchased_from={since}") == {online_recent.pk, store_recent.pk}
    # store_recent first bought 300 days ago, so it is no new customer of the last 30 days.
    assert shown(admin_client, f"first_purchase_from={since}") == {online_recent.pk}
    assert shown(admin_client, "purchased_from=not-a-date") >= {online_recent.pk}


@pytest.mark.django_db
def test_rfm_digit_filters_and_dashboard_links(admin_client):
    a, b = make_customer(), make_customer()
    now = timezone.now()
    CustomerScore.objects.create(customer=a, computed_at=now, r_score=5, f_score=4)
    CustomerScore.objects.create(customer=b, computed_at=now, r_score=1, f_score=4)
    assert shown(admin_client, "score__r_score__exact=5&score__f_score__exact=4") == {a.pk}
    link = customers_url(score__r_score__exact=5, score__f_score__exact=4, purchase_channel="1")
    assert link.startswith(LIST) and "purchase_channel=1" in link
