"""Segment rules on loyalty fields (registered with segments) and the dashboard figures."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from kequn.loyalty import selectors, services
from kequn.loyalty.models import LedgerEntry
from kequn.segments.catalogue import describe_catalogue
from kequn.segments.services import count_rule
from tests.factories import make_customer, make_order
from tests.loyalty.conftest import BY


def rule(*conditions):
    return {"match": "all", "conditions": list(conditions)}


def test_rules_on_tier_balance_expiring_points_and_coupons(programme, tiers):
    rich, poor, outsider = make_customer("富"), make_customer("穷"), make_customer("外")
    for customer in (rich, poor):
        services.enroll_member(customer_id=customer.pk, by=BY)
    services.grant_points(customer_id=rich.pk, points=800, key="r", by=BY)
    soon = services.grant_points(customer_id=poor.pk, points=30, key="p", by=BY)
    LedgerEntry.objects.filter(pk=soon.pk).update(expires_at=timezone.now() + timedelta(days=3))
    coupon = services.issue_coupon(customer_id=rich.pk, key="c", by=BY, amount=10)
    services.use_coupon(code=coupon.code, order_ref="SO-1", by=BY)

    assert count_rule(rule({"field": "loyalty_member", "operator": "is", "value": True})) == 2
    assert count_rule(rule({"field": "loyalty_member", "operator": "is", "value": False})) >= 1
    assert count_rule(rule({"field": "loyalty_tier", "operator": "eq", "value": "normal"})) == 2
    assert count_rule(rule({"field": "loyalty_points", "operator": "gte", "value": 500})) == 1
    expiring = {"field": "loyalty_points_expiring", "operator": "gt", "value": 0, "days": 7}
    assert count_rule(rule(expiring)) == 1
    assert count_rule(rule({**expiring, "days": 1})) == 0
    used = {"field": "loyalty_coupons_used", "operator": "gte", "value": 1}
    assert count_rule(rule(used)) == 1 and count_rule(rule({**used, "days": 30})) == 1
    groups = {g["key"]: g for g in describe_catalogue()["groups"]}
    assert "loyalty_points" in [f["field"] for f in groups["loyalty"]["fields"]]
    del outsider


def test_dashboard_figures(programme, tiers):
    programme.pending_days = 0
    programme.save()
    member, other = make_customer("会员"), make_customer("非会员")
    services.enroll_member(customer_id=member.pk, by=BY)
    for _ in range(2):
        services.earn_for_orders([make_order(member, amount="500", days_ago=30).pk], BY)
    programme.auto_enroll = False
    programme.save()
    make_order(other, amount="100", days_ago=30)
    services.spend_points(customer_id=member.pk, points=250, key="s", by=BY)
    figures = selectors.compute_dashboard()
    assert figures["members"] == 1 and figures["points_outstanding"] == 750
    assert str(figures["points_liability"]) == "7.50"
    assert figures["redemption_rate"] == 0.25 and figures["breakage_rate"] == 0
    assert (figures["repeat_rate_members"], figures["repeat_rate_non_members"]) == (1.0, 0.0)
    assert figures["tier_mix"] == [{"tier": "silver", "name": "银卡", "members": 1}]  # spent 1000
