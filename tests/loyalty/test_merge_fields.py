"""Loyalty's merge fields for campaigns: tier, points, points expiring and the newest coupon."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from kequn.engage.content import build_merge_contexts
from kequn.loyalty import services
from kequn.loyalty.integrations import get_merge_values
from kequn.loyalty.models import Coupon, Member
from tests.factories import make_customer
from tests.loyalty.conftest import BY, give


def test_a_batch_gets_each_customers_fields_in_a_few_queries(
    member, tiers, django_assert_max_num_queries
):
    Member.objects.filter(pk=member.pk).update(tier=tiers[2])  # 金卡
    give(member, 300, "soon", expires_in_days=10)
    give(member, 200, "later", expires_in_days=200)
    services.issue_coupon(customer_id=member.pk, key="old", by=BY, amount=Decimal(5))
    newest = services.issue_coupon(customer_id=member.pk, key="new", by=BY, amount=Decimal(9))
    Coupon.objects.filter(pk=newest.pk).update(issued_at=timezone.now() + timedelta(seconds=1))
    others = [
        services.enroll_member(customer_id=make_customer(f"会员{i}").pk, by=BY) for i in range(20)
    ]
    stranger = make_customer("路人")
    ids = [member.pk, stranger.pk, *(m.pk for m in others)]
    with django_assert_max_num_queries(3):
        values = get_merge_values(ids)
    assert values[member.pk] == {
        "tier": "金卡",
        "points": 500,
        "points_expiring": 300,
        "coupon_code": newest.code,
    }
    assert values[stranger.pk] == {"tier": "", "points": 0, "points_expiring": 0, "coupon_code": ""}
    assert all(values[m.pk]["points"] == 0 for m in others)


def test_engage_fills_the_fields_into_a_campaigns_contexts(member, tiers):
    Member.objects.filter(pk=member.pk).update(tier=tiers[1])
    give(member, 120, "some")
    contexts = build_merge_contexts([member.pk], fields=["tier", "points"])
    assert contexts[member.pk]["tier"] == "银卡" and contexts[member.pk]["points"] == 120
