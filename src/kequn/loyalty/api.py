"""Loyalty API (/api/v1/loyalty/...): members and their ledger, rewards, redemptions, coupons."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError

from kequn.apiutils import MAX_LIMIT, ObjectId, Page, check_perm, decode_cursor, paginate
from kequn.customers.models import Customer
from kequn.loyalty import selectors, services
from kequn.loyalty.models import Coupon, LedgerEntry, Member, Redemption, Reward, open_points
from kequn.security.permissions import scope_customers

router = Router(tags=["loyalty"])
routers: list[tuple[str, Router]] = [("/v1/loyalty", router)]

# What each refusal answers: the customer or object is unknown (404), the request conflicts
# with the state (409: no points, out of stock, a used coupon), or the input is wrong (422).
STATUS = {
    "unknown_member": 404, "unknown_customer": 404, "not_found": 404, "unknown": 404,
    "insufficient_points": 409, "out_of_stock": 409, "limit_reached": 409, "inactive": 409,
    "used": 409, "expired": 409, "cancelled": 409, "foreign": 409, "min_spend": 409,
    "key_conflict": 409, "already_reversed": 409, "coupon_used": 409, "not_reversible": 409,
}  # fmt: skip


def _user(request: HttpRequest) -> Any:
    return getattr(request, "auth", None) or request.user


def _refuse(exc: services.LoyaltyError) -> HttpError:
    return HttpError(STATUS.get(exc.code, 422), exc.message)


def _member(request: HttpRequest, customer_id: int) -> Member:
    qs = scope_customers(_user(request), Member.objects.select_related("tier"), "customer")
    member = qs.filter(customer_id=customer_id).first()
    if member is None:
        raise Http404("no loyalty member with this customer id")
    return member


def _key(request: HttpRequest, given: str | None) -> str:
    key = given or request.headers.get("Idempotency-Key") or ""
    if not key:
        raise HttpError(422, "idempotency_key (or the Idempotency-Key header) is required")
    return key


class ExpiringOut(Schema):
    expires_at: datetime
    points: int


class LoyaltyMemberOut(Schema):
    id: int = Field(description="The customer id (a member is keyed by its customer)")
    customer_id: int
    tier: str | None
    tier_name: str | None
    tier_since: datetime
    balance: int
    pending: int
    expiring_points: int = Field(description="Points expiring within 30 days")
    next_expiry: datetime | None
    expiring: list[ExpiringOut]
    referral_code: str
    joined_at: datetime


class EntryOut(Schema):
    id: int
    kind: str
    points: int
    pending: int
    reason: str
    source: str
    order_ref: str
    reverses_id: int | None
    created_at: datetime
    available_at: datetime | None
    expires_at: datetime | None
    remaining: int = Field(description="Unspent points of a grant that have not expired")

    @staticmethod
    def resolve_remaining(obj: LedgerEntry) -> int:
        return getattr(obj, "open_points", obj.remaining)


class AdjustIn(Schema):
    points: int = Field(description="Positive adds, negative removes")
    reason: str = Field(max_length=300)
    idempotency_key: str | None = Field(None, max_length=200)


class RewardOut(Schema):
    id: int
    code: str
    name: str
    kind: str
    points_cost: int
    amount: Decimal
    percent: Decimal
    min_spend: Decimal
    stock: int | None
    per_member_limit: int | None
    valid_days: int
    is_active: bool


class RedeemIn(Schema):
    customer_id: ObjectId
    idempotency_key: str | None = Field(None, max_length=200)


class CouponOut(Schema):
    code: str
    customer_id: int
    reward: str | None
    kind: str
    amount: Decimal
    percent: Decimal
    min_spend: Decimal
    status: str
    source: str
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None
    order_ref: str

    @staticmethod
    def resolve_customer_id(obj: Coupon) -> int:
        return obj.member_id

    @staticmethod
    def resolve_reward(obj: Coupon) -> str | None:
        return obj.reward.code if obj.reward else None


class RedemptionOut(Schema):
    id: int
    customer_id: int
    reward: str
    points: int
    status: str
    created_at: datetime
    coupon: CouponOut | None

    @staticmethod
    def resolve_customer_id(obj: Redemption) -> int:
        return obj.member_id

    @staticmethod
    def resolve_reward(obj: Redemption) -> str:
        return obj.reward.code

    @staticmethod
    def resolve_coupon(obj: Redemption) -> Coupon | None:
        return Coupon.objects.select_related("reward").filter(redemption=obj).first()


class CouponUseIn(Schema):
    order_ref: str = Field(max_length=64)
    customer_id: ObjectId | None = None
    order_amount: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=2)


class CouponCheckOut(Schema):
    valid: bool
    reason: str
    detail: str
    coupon: CouponOut | None


@router.get(
    "/members", response=Page[LoyaltyMemberOut], summary="List members (newest customer id first)"
)
def list_members(request: HttpRequest, cursor: str | None = None, limit: int = 50):
    check_perm(request, "loyalty.view_member")
    if limit < 1 or limit > MAX_LIMIT:
        raise HttpError(400, f"limit must be between 1 and {MAX_LIMIT}")
    qs = scope_customers(_user(request), Member.objects.select_related("tier"), "customer")
    qs = qs.order_by("-customer_id")
    if cursor:
        qs = qs.filter(customer_id__lt=decode_cursor(cursor))
    rows = list(qs[: limit + 1])
    more = len(rows) > limit
    return {
        "items": [selectors.summarise_member(m) for m in rows[:limit]],
        "next_cursor": str(rows[limit - 1].customer_id) if more else None,
    }


@router.get(
    "/members/{int:customer_id}",
    response=LoyaltyMemberOut,
    summary="A member's balance, tier, pending and expiring points",
)
def get_member(request: HttpRequest, customer_id: ObjectId):
    check_perm(request, "loyalty.view_member")
    return selectors.summarise_member(_member(request, customer_id))


@router.post(
    "/members/{int:customer_id}",
    response={201: LoyaltyMemberOut, 200: LoyaltyMemberOut},
    summary="Enrol a customer (an existing member is returned)",
)
def enroll_member(request: HttpRequest, customer_id: ObjectId):
    check_perm(request, "loyalty.add_member")
    visible = scope_customers(_user(request), Customer.objects.all(), "")
    if not visible.filter(pk=customer_id).exists():
        raise Http404("no customer with this id")
    existed = Member.objects.filter(customer_id=customer_id).exists()
    try:
        services.enroll_member(customer_id=customer_id, by=_user(request))
    except services.LoyaltyError as exc:
        raise _refuse(exc) from None
    return Status(
        200 if existed else 201, selectors.summarise_member(_member(request, customer_id))
    )


@router.get(
    "/members/{int:customer_id}/ledger",
    response=Page[EntryOut],
    summary="Page a member's ledger entries (newest first)",
)
def list_ledger(
    request: HttpRequest, customer_id: ObjectId, cursor: str | None = None, limit: int = 50
):
    check_perm(request, "loyalty.view_ledgerentry")
    member = _member(request, customer_id)
    entries = LedgerEntry.objects.filter(member=member).annotate(open_points=open_points(member))
    return paginate(entries, cursor, limit)


@router.post(
    "/members/{int:customer_id}/adjustments",
    response={201: EntryOut},
    summary="Add or remove points by hand (a reason is required)",
)
def adjust(request: HttpRequest, customer_id: ObjectId, payload: AdjustIn):
    check_perm(request, "loyalty.add_ledgerentry")
    member = _member(request, customer_id)
    try:
        entry = services.adjust_points(
            customer_id=member.customer_id,
            points=payload.points,
            reason=payload.reason,
            key=_key(request, payload.idempotency_key),
            by=_user(request),
        )
    except services.LoyaltyError as exc:
        raise _refuse(exc) from None
    return Status(201, entry)


@router.get("/rewards", response=Page[RewardOut], summary="The reward catalogue")
def list_rewards(request: HttpRequest, cursor: str | None = None, limit: int = 50):
    check_perm(request, "loyalty.view_reward")
    return paginate(Reward.objects.filter(is_active=True), cursor, limit)


@router.post(
    "/rewards/{code}/redeem",
    response={201: RedemptionOut, 200: RedemptionOut},
    summary="Spend a member's points on a reward (issues its coupon)",
)
def redeem(request: HttpRequest, code: str, payload: RedeemIn):
    check_perm(request, "loyalty.add_redemption")
    member = _member(request, payload.customer_id)
    key = _key(request, payload.idempotency_key)
    again = LedgerEntry.objects.filter(key=key).exists()
    try:
        redemption = services.redeem_reward(
            customer_id=member.customer_id, reward=code[:50], key=key, by=_user(request)
        )
    except services.LoyaltyError as exc:
        raise _refuse(exc) from None
    return Status(200 if again else 201, redemption)


def _redemptions(request: HttpRequest) -> QuerySet:
    qs = Redemption.objects.select_related("reward")
    return scope_customers(_user(request), qs, "member__customer")


@router.get("/redemptions", response=Page[RedemptionOut], summary="List redemptions (newest first)")
def list_redemptions(
    request: HttpRequest,
    customer_id: ObjectId | None = None,
    cursor: str | None = None,
    limit: int = 50,
):
    check_perm(request, "loyalty.view_redemption")
    qs = _redemptions(request)
    if customer_id:
        qs = qs.filter(member_id=customer_id)
    return paginate(qs, cursor, limit)


@router.get("/redemptions/{int:redemption_id}", response=RedemptionOut, summary="Read a redemption")
def get_redemption(request: HttpRequest, redemption_id: ObjectId):
    check_perm(request, "loyalty.view_redemption")
    found = _redemptions(request).filter(pk=redemption_id).first()
    if found is None:
        raise Http404("no redemption with this id")
    return found


@router.post(
    "/redemptions/{int:redemption_id}/cancel",
    response=RedemptionOut,
    summary="Cancel an unused redemption (its points go back with their expiry)",
)
def cancel_redemption(request: HttpRequest, redemption_id: ObjectId):
    check_perm(request, "loyalty.change_redemption")
    if not _redemptions(request).filter(pk=redemption_id).exists():
        raise Http404("no redemption with this id")
    try:
        return services.cancel_redemption(redemption_id=redemption_id, by=_user(request))
    except services.LoyaltyError as exc:
        raise _refuse(exc) from None


def _coupons(request: HttpRequest) -> QuerySet:
    return scope_customers(
        _user(request), Coupon.objects.select_related("reward"), "member__customer"
    )


@router.get("/coupons", response=Page[CouponOut], summary="List coupons (newest first)")
def list_coupons(
    request: HttpRequest,
    customer_id: ObjectId | None = None,
    status: Coupon.Status | None = None,
    cursor: str | None = None,
    limit: int = 50,
):
    check_perm(request, "loyalty.view_coupon")
    qs = _coupons(request)
    if customer_id:
        qs = qs.filter(member_id=customer_id)
    if status:
        qs = qs.filter(status=status)
    return paginate(qs, cursor, limit)


@router.get(
    "/coupons/{code}",
    response=CouponCheckOut,
    summary="Validate a coupon (for the shop or the till)",
)
def check_coupon(
    request: HttpRequest,
    code: str,
    customer_id: ObjectId | None = None,
    order_amount: Decimal | None = None,
):
    check_perm(request, "loyalty.view_coupon")
    coupon = _coupons(request).filter(code=code.strip().upper()[:32]).first()
    if coupon is None:
        return {
            "valid": False,
            "reason": "unknown",
            "detail": "no coupon with this code: check it",
            "coupon": None,
        }
    try:
        services.check_coupon(coupon, customer_id=customer_id, order_amount=order_amount)
    except services.LoyaltyError as exc:
        return {"valid": False, "reason": exc.code, "detail": exc.message, "coupon": coupon}
    return {"valid": True, "reason": "", "detail": "", "coupon": coupon}


@router.post(
    "/coupons/{code}/redeem",
    response=CouponOut,
    summary="Use a coupon on an order (used, expired or foreign codes are refused with the reason)",
)
def use_coupon(request: HttpRequest, code: str, payload: CouponUseIn):
    check_perm(request, "loyalty.change_coupon")
    if not _coupons(request).filter(code=code.strip().upper()[:32]).exists():
        raise Http404("no coupon with this code: check it")
    try:
        return services.use_coupon(
            code=code,
            order_ref=payload.order_ref,
            customer_id=payload.customer_id,
            order_amount=payload.order_amount,
            by=_user(request),
        )
    except services.LoyaltyError as exc:
        raise _refuse(exc) from None
