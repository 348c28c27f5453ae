"""Rewards and coupons: redeem points for a reward, issue coupons directly, validate and use them."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from kequn.loyalty.models import Coupon, LedgerEntry, Redemption, Reward
from kequn.loyalty.services.base import LoyaltyError, lock_member, make_code
from kequn.loyalty.services.ledger import (
    check_key,
    enroll_member,
    find_entry,
    record,
    reverse_locked,
    spend_locked,
)
from kequn.security.actors import Actor

# 16 characters of a 31-letter alphabet: about 79 bits, not guessable at a till or online.
COUPON_CODE_LENGTH = 16


def get_reward(reward: int | str) -> Reward:
    """Return a reward by id or code, or raise naming it."""
    found = (
        Reward.objects.filter(pk=reward).first()
        if isinstance(reward, int)
        else Reward.objects.filter(code=reward).first()
    )
    if found is None:
        raise LoyaltyError(_("no reward %(r)r: check the reward code") % {"r": reward}, "not_found")
    return found


def _new_coupon(**values: object) -> Coupon:
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return Coupon.objects.create(code=make_code(COUPON_CODE_LENGTH), **values)
        except IntegrityError:
            if (
                values.get("issue_key")
                and Coupon.objects.filter(issue_key=values["issue_key"]).exists()
            ):
                raise
    raise RuntimeError("could not draw a unique coupon code")


def redeem_reward(
    *, customer_id: int, reward: int | str, key: str, by: Actor, now: datetime | None = None
) -> Redemption:
    """Spend a member's points on a reward and issue its coupon; the same key redeems once."""
    key = check_key(key)
    try:
        return _redeem(customer_id=customer_id, reward=reward, key=key, by=by, now=now)
    except IntegrityError:
        # Two members' requests with one key at the same moment: the member locks do not
        # order them, the key's unique index does. The loser hears why, not a server error.
        if LedgerEntry.objects.filter(key=key).exclude(member_id=customer_id).exists():
            raise LoyaltyError(
                _("the idempotency key %(k)r was already used for another operation: use a new key")
                % {"k": key},
                "key_conflict",
            ) from None
        raise


def _redeem(
    *, customer_id: int, reward: int | str, key: str, by: Actor, now: datetime | None
) -> Redemption:
    now = now or timezone.now()
    with transaction.atomic():
        member = lock_member(customer_id)
        existing = find_entry(key, member, LedgerEntry.Kind.SPEND)
        if existing is not None:
            redemption = Redemption.objects.filter(spend=existing).first()
            if redemption is None:
                raise LoyaltyError(
                    _(
                        "the idempotency key %(k)r was already used for another operation: use a new key"
                    )
                    % {"k": key},
                    "key_conflict",
                )
            return redemption
        # No lock on the reward: it would queue every redemption of it behind one another.
        # A limited stock is taken by one conditional UPDATE at the end (see below).
        item = get_reward(reward)
        if not item.is_active:
            raise LoyaltyError(
                _("reward %(r)s is not offered any more") % {"r": item.code}, "inactive"
            )
        if item.stock is not None and item.stock <= 0:
            raise LoyaltyError(_("reward %(r)s is out of stock") % {"r": item.code}, "out_of_stock")
        if item.per_member_limit is not None:
            taken = Redemption.objects.filter(
                member=member, reward=item, status=Redemption.Status.DONE
            ).count()
            if taken >= item.per_member_limit:
                raise LoyaltyError(
                    _("customer %(id)s has already redeemed reward %(r)s %(n)s times, the limit")
                    % {"id": customer_id, "r": item.code, "n": taken},
                    "limit_reached",
                )
        spend = spend_locked(
            member,
            points=item.points_cost,
            key=key,
            now=now,
            by=by,
            reason=f"reward {item.code}",
            source="redemption",
        )
        if item.stock is not None:
            # Late in the transaction, so the reward's row stays locked only until the commit.
            taken = Reward.objects.filter(pk=item.pk, stock__gt=0).update(stock=F("stock") - 1)
            if not taken:  # the last one went to a concurrent redemption: undo the spend too
                raise LoyaltyError(
                    _("reward %(r)s is out of stock") % {"r": item.code}, "out_of_stock"
                )
        redemption = Redemption.objects.create(
            member=member, reward=item, points=item.points_cost, spend=spend, created_at=now
        )
        _new_coupon(
            member=member,
            reward=item,
            redemption=redemption,
            kind=item.kind,
            amount=item.amount,
            percent=item.percent,
            min_spend=item.min_spend,
            source="redemption",
            issued_at=now,
            expires_at=now + timedelta(days=item.valid_days),
        )
        record(by, member, "redeem", spend, reward=item.code, redemption=redemption.pk)
    return redemption


def cancel_redemption(*, redemption_id: int, by: Actor, now: datetime | None = None) -> Redemption:
    """Cancel an unused redemption: its points go back to the grants they came from."""
    now = now or timezone.now()
    found = Redemption.objects.filter(pk=redemption_id).first()
    if found is None:
        raise LoyaltyError(_("no redemption %(id)s") % {"id": redemption_id}, "not_found")
    with transaction.atomic():
        member = lock_member(found.member_id)
        redemption = Redemption.objects.select_related("spend").get(pk=redemption_id)
        if redemption.status == Redemption.Status.CANCELLED:
            return redemption
        coupon = Coupon.objects.select_for_update().filter(redemption=redemption).first()
        if coupon is not None and coupon.status == Coupon.Status.USED:
            raise LoyaltyError(
                _(
                    "the coupon of redemption %(id)s was used on order %(o)s: refund the order instead"
                )
                % {"id": redemption_id, "o": coupon.order_ref},
                "coupon_used",
            )
        reverse_locked(
            member,
            redemption.spend,
            key=f"cancel-redemption:{redemption.pk}",
            now=now,
            by=by,
            reason="redemption cancelled",
            source="redemption",
        )
        if coupon is not None:
            coupon.status = Coupon.Status.CANCELLED
            coupon.save(update_fields=["status"])
        Reward.objects.filter(pk=redemption.reward_id, stock__isnull=False).update(
            stock=F("stock") + 1
        )
        redemption.status = Redemption.Status.CANCELLED
        redemption.save(update_fields=["status"])
        record(by, member, "cancel_redemption", None, redemption=redemption.pk)
    return redemption


def issue_coupon(
    *,
    customer_id: int,
    key: str,
    by: Actor,
    reward: int | str | None = None,
    amount: Decimal | None = None,
    min_spend: Decimal = Decimal(0),
    valid_days: int = 30,
    source: str = "direct",
    now: datetime | None = None,
) -> Coupon:
    """Issue a coupon without spending points (a journey, a bulk issue); once per key."""
    key = check_key(key)
    now = now or timezone.now()
    existing = Coupon.objects.filter(issue_key=key).first()
    if existing is not None:
        if existing.member_id != customer_id:
            raise LoyaltyError(
                _("the idempotency key %(k)r was already used for another customer") % {"k": key},
                "key_conflict",
            )
        return existing
    if reward is None and (amount is None or amount <= 0):
        raise LoyaltyError(_("name a reward or an amount above zero for the coupon"))
    item = get_reward(reward) if reward is not None else None
    enroll_member(customer_id=customer_id, by=by, now=now)
    with transaction.atomic():
        member = lock_member(customer_id)
        try:
            coupon = _new_coupon(
                member=member,
                reward=item,
                kind=item.kind if item else Reward.Kind.COUPON_AMOUNT,
                amount=item.amount if item else amount,
                percent=item.percent if item else 0,
                min_spend=item.min_spend if item else min_spend,
                source=source[:30],
                issue_key=key,
                issued_at=now,
                expires_at=now + timedelta(days=item.valid_days if item else valid_days),
            )
        except IntegrityError:
            return Coupon.objects.get(issue_key=key)
        record(by, member, "issue_coupon", None, coupon=coupon.pk, source=source[:30])
    return coupon


def _to_amount(value: object) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise LoyaltyError(_("the order amount %(v)r is not a number") % {"v": value}) from None


def check_coupon(
    coupon: Coupon,
    *,
    customer_id: int | None = None,
    order_amount: object = None,
    now: datetime | None = None,
) -> None:
    """Raise a LoyaltyError saying why the coupon cannot be used now (nothing when it can)."""
    now = now or timezone.now()
    if customer_id is not None and coupon.member_id != customer_id:
        raise LoyaltyError(
            _("coupon %(c)s belongs to another customer") % {"c": coupon.code}, "foreign"
        )
    if coupon.status == Coupon.Status.USED:
        raise LoyaltyError(
            _("coupon %(c)s was already used on order %(o)s")
            % {"c": coupon.code, "o": coupon.order_ref},
            "used",
        )
    if coupon.status == Coupon.Status.CANCELLED:
        raise LoyaltyError(_("coupon %(c)s was cancelled") % {"c": coupon.code}, "cancelled")
    if coupon.expires_at <= now:
        raise LoyaltyError(
            _("coupon %(c)s expired on %(d)s")
            % {"c": coupon.code, "d": timezone.localtime(coupon.expires_at).date().isoformat()},
            "expired",
        )
    amount = _to_amount(order_amount)
    if amount is not None and amount < coupon.min_spend:
        raise LoyaltyError(
            _("coupon %(c)s needs an order of at least %(m)s")
            % {"c": coupon.code, "m": coupon.min_spend},
            "min_spend",
        )


def find_coupon(code: str) -> Coupon:
    """Return a coupon by its code (any case), or raise."""
    coupon = Coupon.objects.filter(code=str(code).strip().upper()[:32]).first()
    if coupon is None:
        raise LoyaltyError(_("no coupon with this code: check it"), "unknown")
    return coupon


def use_coupon(
    *,
    code: str,
    order_ref: str,
    by: Actor,
    customer_id: int | None = None,
    order_amount: object = None,
    now: datetime | None = None,
) -> Coupon:
    """Mark a coupon used on an order; the same order again returns it, another is refused."""
    if not order_ref or not str(order_ref).strip():
        raise LoyaltyError(_("an order reference is required to use a coupon"), "missing_order")
    order_ref = str(order_ref).strip()[:64]
    now = now or timezone.now()
    with transaction.atomic():
        coupon = Coupon.objects.select_for_update().filter(pk=find_coupon(code).pk).get()
        if coupon.status == Coupon.Status.USED and coupon.order_ref == order_ref:
            if customer_id is not None and coupon.member_id != customer_id:
                check_coupon(coupon, customer_id=customer_id, now=now)
            return coupon
        check_coupon(coupon, customer_id=customer_id, order_amount=order_amount, now=now)
        coupon.status, coupon.used_at, coupon.order_ref = Coupon.Status.USED, now, order_ref
        coupon.save(update_fields=["status", "used_at", "order_ref"])
        record(by, coupon.member, "use_coupon", None, coupon=coupon.pk, order=order_ref)
    return coupon
