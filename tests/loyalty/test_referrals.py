"""Referrals: both sides earn on the first qualifying purchase; fraud and caps refused."""

from __future__ import annotations

import pytest

from kequn.customers.services import IdentityInput, create_customer
from kequn.loyalty import services
from kequn.loyalty.models import LedgerEntry, Member, Referral
from kequn.loyalty.services import LoyaltyError
from tests.factories import make_customer, make_order
from tests.loyalty.conftest import BY


def test_both_earn_on_the_first_qualifying_purchase(programme):
    referrer = services.enroll_member(customer_id=make_customer("老客").pk, by=BY)
    friend = make_customer("新客")
    referral = services.register_referral(
        referral_code=referrer.referral_code.lower(), referee_id=friend.pk, by=BY
    )
    assert referral.status == "pending"
    services.earn_for_orders([make_order(friend, amount="50", days_ago=30).pk], BY)
    referral.refresh_from_db()
    assert referral.status == "refused" and "below the minimum" in referral.reason


def test_a_qualifying_purchase_rewards_both_once(programme):
    referrer = services.enroll_member(customer_id=make_customer("老客").pk, by=BY)
    friend = make_customer("新客")
    services.register_referral(referral_code=referrer.referral_code, referee_id=friend.pk, by=BY)
    order = make_order(friend, amount="300", days_ago=30)
    services.earn_for_orders([order.pk], BY)
    services.qualify_referrals([friend.pk], by=BY)
    assert Referral.objects.get().status == "rewarded"
    assert LedgerEntry.objects.filter(source="referral").count() == 2
    assert Member.objects.get(pk=referrer.pk).balance == programme.referrer_points
    assert Member.objects.get(pk=friend.pk).balance == 300 + programme.referee_points


def test_self_referrals_existing_customers_and_shared_addresses_are_refused(programme):
    referrer_customer = create_customer(
        {"name": "甲"}, [IdentityInput("phone", "13800139001")], by=BY
    )
    referrer = services.enroll_member(customer_id=referrer_customer.pk, by=BY)
    assert (
        "themselves"
        in services.register_referral(
            referral_code=referrer.referral_code, referee_id=referrer.pk, by=BY
        ).reason
    )
    buyer = make_customer("老买家")
    make_order(buyer)
    assert (
        services.register_referral(
            referral_code=referrer.referral_code, referee_id=buyer.pk, by=BY
        ).status
        == "refused"
    )
    from kequn.customers.models import Address

    twin = make_customer("同址")
    Address.objects.create(customer=referrer_customer, line="南山区 科技园 1号")
    Address.objects.create(customer=twin, line="南山区科技园1号")
    refused = services.register_referral(
        referral_code=referrer.referral_code, referee_id=twin.pk, by=BY
    )
    assert refused.status == "refused" and "address" in refused.reason
    with pytest.raises(LoyaltyError, match="no member has the referral code"):
        services.register_referral(referral_code="NOPE", referee_id=twin.pk, by=BY)


def test_the_monthly_cap_stops_further_rewards(programme):
    programme.referral_monthly_cap = 1
    programme.save()
    referrer = services.enroll_member(customer_id=make_customer("老客").pk, by=BY)
    friends = [make_customer(f"朋友{n}") for n in range(2)]
    for friend in friends:
        services.register_referral(
            referral_code=referrer.referral_code, referee_id=friend.pk, by=BY
        )
        services.earn_for_orders([make_order(friend, amount="300", days_ago=30).pk], BY)
    statuses = sorted(Referral.objects.values_list("status", flat=True))
    assert statuses == ["refused", "rewarded"]
    assert "monthly cap" in Referral.objects.get(status="refused").reason
