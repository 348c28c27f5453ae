"""The loyalty API: members, ledger, redemptions and coupons, with the generic role tests."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from kequn.loyalty import services
from kequn.loyalty.models import Coupon, LedgerEntry, Member, Redemption, Reward
from kequn.security.roles import ADMINISTRATOR, ANALYST, AUDITOR, MARKETING, SALES, SERVICE
from tests.api.base import ALL, NONE, OWN, APIResourceTests
from tests.factories import make_customer
from tests.loyalty.conftest import BY

ROLE_ACCESS = {
    ADMINISTRATOR: ALL,
    MARKETING: ALL,
    SALES: OWN,
    SERVICE: ALL,
    ANALYST: ALL,
    AUDITOR: NONE,
}


def member_of(customer) -> Member:
    member = services.enroll_member(customer_id=customer.pk, by=BY)
    services.grant_points(customer_id=customer.pk, points=500, key=f"seed-{customer.pk}", by=BY)
    return member


def reward(code: str = "coupon-20", **values) -> Reward:
    defaults = {
        "name": "¥20 off",
        "kind": "amount",
        "points_cost": 200,
        "amount": 20,
        "min_spend": 100,
    }
    return Reward.objects.get_or_create(code=code, defaults={**defaults, **values})[0]


class TestMembersAPI(APIResourceTests):
    url = "/api/v1/loyalty/members"
    app_label = "loyalty"
    model_name = "member"
    role_access = ROLE_ACCESS

    def make_object_for(self, customer):
        return member_of(customer)

    def extra_paths(self, obj):
        return [f"{self.url}/{obj.pk}/ledger"]


class TestRedemptionsAPI(APIResourceTests):
    url = "/api/v1/loyalty/redemptions"
    app_label = "loyalty"
    model_name = "redemption"
    role_access = ROLE_ACCESS

    def make_object_for(self, customer):
        member_of(customer)
        return services.redeem_reward(
            customer_id=customer.pk, reward=reward().code, key=f"r-{customer.pk}", by=BY
        )


@pytest.fixture
def till(make_api_client):
    return make_api_client(
        "loyalty.view_member",
        "loyalty.add_redemption",
        "loyalty.view_coupon",
        "loyalty.change_coupon",
        "loyalty.view_ledgerentry",
        "customers.view_all_customers",
    )


def test_member_shows_balance_tier_pending_and_expiring_points(till, programme, tiers):
    customer = make_customer("甲")
    services.enroll_member(customer_id=customer.pk, by=BY)
    now = timezone.now()
    soon = services.grant_points(customer_id=customer.pk, points=40, key="soon", by=BY)
    LedgerEntry.objects.filter(pk=soon.pk).update(expires_at=now + timedelta(days=5))
    services.grant_points(customer_id=customer.pk, points=60, key="later", by=BY)
    services.grant_points(
        customer_id=customer.pk,
        points=25,
        key="pending",
        by=BY,
        available_at=now + timedelta(days=7),
    )
    body = till.get(f"/api/v1/loyalty/members/{customer.pk}").json()
    assert (body["balance"], body["pending"], body["tier"]) == (100, 25, "normal")
    assert body["expiring_points"] == 40 and body["expiring"][0]["points"] == 40
    ledger = till.get(f"/api/v1/loyalty/members/{customer.pk}/ledger?limit=2").json()
    assert [e["points"] for e in ledger["items"]] == [0, 60] and ledger["next_cursor"]
    assert till.get("/api/v1/loyalty/members/987654").status_code == 404
    # After the nightly expiry the expired grant reads as spent out, though its row is as it was.
    services.expire_points(by=BY, now=now + timedelta(days=6))
    body = till.get(f"/api/v1/loyalty/members/{customer.pk}").json()
    assert (body["balance"], body["expiring_points"]) == (60, 0)
    ledger = till.get(f"/api/v1/loyalty/members/{customer.pk}/ledger").json()["items"]
    assert {e["id"]: e["remaining"] for e in ledger}[soon.pk] == 0
    assert LedgerEntry.objects.get(pk=soon.pk).remaining == 40


def test_redeem_once_per_key_then_use_the_coupon_at_the_till(till, programme):
    customer = make_customer("乙")
    member_of(customer)
    reward("coupon-20")
    url = "/api/v1/loyalty/rewards/coupon-20/redeem"
    first = till.send_json("post", url, {"customer_id": customer.pk, "idempotency_key": "k1"})
    assert first.status_code == 201, first.content
    again = till.send_json("post", url, {"customer_id": customer.pk, "idempotency_key": "k1"})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert Member.objects.get(pk=customer.pk).balance == 300
    code = first.json()["coupon"]["code"]
    assert len(code) == 16

    check = till.get(f"/api/v1/loyalty/coupons/{code}?order_amount=50").json()
    assert (check["valid"], check["reason"]) == (False, "min_spend")
    use = till.send_json(
        "post",
        f"/api/v1/loyalty/coupons/{code}/redeem",
        {"order_ref": "SO-1", "order_amount": "150"},
    )
    assert use.status_code == 200 and use.json()["status"] == "used"
    # The same order again is harmless; another order is refused with the reason.
    assert (
        till.send_json(
            "post", f"/api/v1/loyalty/coupons/{code}/redeem", {"order_ref": "SO-1"}
        ).status_code
        == 200
    )
    used = till.send_json("post", f"/api/v1/loyalty/coupons/{code}/redeem", {"order_ref": "SO-2"})
    assert used.status_code == 409 and "already used on order SO-1" in used.json()["detail"]


def test_foreign_expired_and_unknown_coupons_are_refused(till, programme):
    owner, stranger = make_customer("丙"), make_customer("丁")
    member_of(owner)
    coupon = services.issue_coupon(customer_id=owner.pk, key="gift", by=BY, amount=10)
    foreign = till.send_json(
        "post",
        f"/api/v1/loyalty/coupons/{coupon.code}/redeem",
        {"order_ref": "SO-9", "customer_id": stranger.pk},
    )
    assert foreign.status_code == 409 and "another customer" in foreign.json()["detail"]
    Coupon.objects.filter(pk=coupon.pk).update(expires_at=timezone.now() - timedelta(days=1))
    expired = till.send_json(
        "post", f"/api/v1/loyalty/coupons/{coupon.code}/redeem", {"order_ref": "SO-9"}
    )
    assert expired.status_code == 409 and "expired on" in expired.json()["detail"]
    unknown = till.send_json("post", "/api/v1/loyalty/coupons/NOPE/redeem", {"order_ref": "SO-9"})
    assert unknown.status_code == 404


def test_stock_limits_and_missing_points_are_refused(till, programme):
    customer = make_customer("戊")
    member_of(customer)  # 500 points
    reward("mug", name="Mug", kind="gift", points_cost=100, stock=1)
    reward("pen", name="Pen", kind="gift", points_cost=10, per_member_limit=1)
    reward("tv", name="TV", kind="gift", points_cost=10_000)
    url = "/api/v1/loyalty/rewards/{}/redeem"
    body = {"customer_id": customer.pk}
    assert (
        till.send_json("post", url.format("mug"), {**body, "idempotency_key": "a"}).status_code
        == 201
    )
    out = till.send_json("post", url.format("mug"), {**body, "idempotency_key": "b"})
    assert out.status_code == 409 and "out of stock" in out.json()["detail"]
    assert (
        till.send_json("post", url.format("pen"), {**body, "idempotency_key": "c"}).status_code
        == 201
    )
    limit = till.send_json("post", url.format("pen"), {**body, "idempotency_key": "d"})
    assert limit.status_code == 409 and "the limit" in limit.json()["detail"]
    poor = till.send_json("post", url.format("tv"), {**body, "idempotency_key": "e"})
    assert poor.status_code == 409 and "not enough points" in poor.json()["detail"]
    missing = till.send_json("post", url.format("pen"), body)
    assert missing.status_code == 422
    assert Member.objects.get(pk=customer.pk).balance == 390


def test_cancelling_a_redemption_gives_the_points_and_the_stock_back(make_api_client, programme):
    customer = make_customer("己")
    member_of(customer)
    item = reward("mug", name="Mug", kind="gift", points_cost=100, stock=5)
    redemption = services.redeem_reward(customer_id=customer.pk, reward="mug", key="x", by=BY)
    client = make_api_client("loyalty.change_redemption", "customers.view_all_customers")
    response = client.post(f"/api/v1/loyalty/redemptions/{redemption.pk}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    item.refresh_from_db()
    assert item.stock == 5 and Member.objects.get(pk=customer.pk).balance == 500
    assert Coupon.objects.get(redemption=redemption).status == "cancelled"
    assert Redemption.objects.get(pk=redemption.pk).status == "cancelled"


def test_adjustments_through_the_api_need_a_reason(make_api_client, programme):
    customer = make_customer("庚")
    member_of(customer)
    client = make_api_client("loyalty.add_ledgerentry", "customers.view_all_customers")
    url = f"/api/v1/loyalty/members/{customer.pk}/adjustments"
    ok = client.send_json(
        "post", url, {"points": -100, "reason": "duplicate", "idempotency_key": "a"}
    )
    assert ok.status_code == 201 and ok.json()["points"] == -100
    bad = client.send_json("post", url, {"points": -1000, "reason": "x", "idempotency_key": "b"})
    assert bad.status_code == 409 and "negative" in bad.json()["detail"]
    assert (
        client.send_json(
            "post", url, {"points": 5, "reason": "", "idempotency_key": "c"}
        ).status_code
        == 422
    )
