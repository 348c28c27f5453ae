"""The dashboard's loyalty panel, read through the dashboard page itself."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from kequn.dashboard.services import refresh_dashboard
from kequn.loyalty import services
from kequn.loyalty.models import LedgerEntry
from tests.conftest import kpi, role_client
from tests.factories import make_customer, make_order
from tests.loyalty.conftest import BY


@pytest.fixture
def programme_with_flows(programme, tiers):
    """A member with two orders (1,000 points), 250 spent, 100 expired; a one-order non-member."""
    programme.pending_days = 0
    programme.save()
    member, other = make_customer("会员"), make_customer("非会员")
    services.enroll_member(customer_id=member.pk, by=BY)
    for _ in range(2):
        services.earn_for_orders([make_order(member, amount="500", days_ago=30).pk], BY)
    old = services.grant_points(customer_id=member.pk, points=100, key="old", by=BY)
    LedgerEntry.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(days=1))
    services.expire_points(by=BY)
    programme.auto_enroll = False
    programme.save()
    make_order(other, amount="100", days_ago=30)
    services.spend_points(customer_id=member.pk, points=250, key="s", by=BY)
    refresh_dashboard(by=BY)


def test_the_panel_shows_the_programme_figures(programme_with_flows):
    html = role_client("analyst").get("/admin/").content.decode()
    assert 'data-chart="loyalty"' in html
    assert kpi(html, "loyalty-members") == "1"
    # 1,100 points given, 250 spent, 100 expired: 750 outstanding at 0.01 each.
    assert kpi(html, "loyalty-outstanding") == "750"
    assert kpi(html, "loyalty-liability") == "7.50"
    assert kpi(html, "loyalty-pending") == "0"
    assert kpi(html, "loyalty-redemption-rate") == "22.7 %"  # 250 / 1,100
    assert kpi(html, "loyalty-breakage-rate") == "9.1 %"  # 100 / 1,100
    assert kpi(html, "loyalty-repeat-members") == "100.0 %"
    assert kpi(html, "loyalty-repeat-others") == "0.0 %"
    tiers = re.search(r'id="kq-loyalty-tiers">(.*?)</table>', html, re.S).group(1)
    assert re.search(r"银卡</th><td[^>]*>1</td><td>100.0 %</td>", tiers)  # spent 1,000


def test_the_panel_is_hidden_from_who_may_not_read_members(programme_with_flows):
    response = role_client("auditor").get("/admin/")
    assert response.status_code == 200
    assert 'data-chart="loyalty"' not in response.content.decode()


def test_the_panel_without_members(db):
    make_customer("赵敏")  # the dashboard shows its panels once there are customers
    refresh_dashboard(by=BY)
    html = role_client("marketing").get("/admin/").content.decode()
    assert kpi(html, "loyalty-members") == "0"
    assert kpi(html, "loyalty-redemption-rate") == "—"
    assert "No members yet." in html
