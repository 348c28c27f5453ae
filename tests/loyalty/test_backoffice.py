"""The loyalty pages of the back office and the 360 panel."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from kequn.loyalty import services
from kequn.loyalty.models import Reward
from tests.factories import make_customer
from tests.loyalty.conftest import BY


@pytest.fixture
def admin_client(client, programme):
    client.force_login(User.objects.create_superuser("boss", password="x"))
    return client


def test_every_loyalty_list_opens_and_the_ledger_is_read_only(admin_client, tiers):
    customer = make_customer("会员")
    services.enroll_member(customer_id=customer.pk, by=BY)
    services.grant_points(customer_id=customer.pk, points=300, key="k", by=BY)
    Reward.objects.create(code="mug", name="Mug", kind="gift", points_cost=100)
    redemption = services.redeem_reward(customer_id=customer.pk, reward="mug", key="r", by=BY)
    for model in (
        "programme",
        "tier",
        "member",
        "ledgerentry",
        "tierchange",
        "reward",
        "redemption",
        "coupon",
        "referral",
    ):
        response = admin_client.get(f"/admin/loyalty/{model}/")
        assert response.status_code == 200, model
    assert admin_client.get("/admin/loyalty/ledgerentry/add/").status_code == 403
    done = admin_client.post(
        "/admin/loyalty/redemption/",
        {"action": "cancel_redemptions", "_selected_action": [redemption.pk]},
    )
    assert done.status_code == 302
    redemption.refresh_from_db()
    assert redemption.status == "cancelled"


def test_the_360_page_shows_membership_balance_and_coupons(admin_client, tiers):
    customer = make_customer("三六零")
    services.enroll_member(customer_id=customer.pk, by=BY)
    services.grant_points(customer_id=customer.pk, points=321, key="k", by=BY)
    coupon = services.issue_coupon(customer_id=customer.pk, key="c", by=BY, amount=10)
    page = admin_client.get(f"/admin/customers/customer/{customer.pk}/360/")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'id="kequn-loyalty-balance">321<' in text and coupon.code in text and "普通" in text
