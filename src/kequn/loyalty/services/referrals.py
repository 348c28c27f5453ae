"""Referrals: a code per member; both sides earn when the referred customer first buys."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from kequn.commerce.models import Order
from kequn.customers.models import Address, Customer, Identity
from kequn.db import field_in
from kequn.loyalty.models import Member, Referral
from kequn.loyalty.services.base import LoyaltyError, get_programme, lock_member
from kequn.loyalty.services.ledger import add_grant, record
from kequn.security.actors import Actor

Status = Referral.Status


def _shared_identity(referrer_id: int, referee_id: int, device_id: str) -> str:
    """Return what ties the referee to the referrer (phone, email, address, device), or ''."""
    mine = dict(Identity.objects.filter(customer_id=referrer_id).values_list("value_index", "kind"))
    for index, kind in Identity.objects.filter(customer_id=referee_id).values_list(
        "value_index", "kind"
    ):
        if index and index in mine:
            return str(kind)

    def places(customer_id: int) -> set[str]:
        return {
            "".join(a.line.split()).lower()
            for a in Address.objects.filter(customer_id=customer_id)
            if a.line
        }

    if places(referrer_id) & places(referee_id):
        return "address"
    if device_id and (
        Referral.objects.filter(referee_id=referrer_id, device_id=device_id).exists()
        or Referral.objects.filter(referrer_id=referrer_id, device_id=device_id).exists()
    ):
        return "device"
    return ""


def register_referral(
    *, referral_code: str, referee_id: int, by: Actor, device_id: str = ""
) -> Referral:
    """Record that a customer came through a member's code (refused ones kept with the reason)."""
    referrer = Member.objects.filter(referral_code=str(referral_code).strip().upper()).first()
    if referrer is None:
        raise LoyaltyError(
            _("no member has the referral code %(c)r") % {"c": referral_code}, "unknown_code"
        )
    if not Customer.objects.filter(pk=referee_id).exists():
        raise LoyaltyError(
            _("no customer %(id)s: check the customer id") % {"id": referee_id}, "unknown_customer"
        )
    existing = Referral.objects.filter(referee_id=referee_id).first()
    if existing is not None:
        if existing.referrer_id != referrer.customer_id:
            raise LoyaltyError(
                _("customer %(id)s was already referred by another member") % {"id": referee_id},
                "already_referred",
            )
        return existing
    reason = ""
    if referee_id == referrer.customer_id:
        reason = _("a member cannot refer themselves")
    elif Order.objects.filter(customer_id=referee_id, status__in=Order.PURCHASE_STATUSES).exists():
        reason = _("the referred customer has bought before: only new customers count")
    else:
        shared = _shared_identity(referrer.customer_id, referee_id, device_id)
        if shared:
            reason = _("the referred customer shares the referrer's %(what)s") % {"what": shared}
    with transaction.atomic():
        referral = Referral.objects.create(
            referrer=referrer,
            referee_id=referee_id,
            device_id=device_id[:100],
            status=Status.REFUSED if reason else Status.PENDING,
            reason=reason[:300],
        )
        Member.objects.filter(customer_id=referee_id, referred_by__isnull=True).update(
            referred_by=referrer
        )
        record(by, referrer, "referral", None, referee=referee_id, refused=bool(reason))
    return referral


def qualify_referrals(
    customer_ids: Iterable[int], *, by: Actor, now: datetime | None = None
) -> int:
    """Reward both sides of pending referrals whose referee made a first qualifying purchase."""
    now = now or timezone.now()
    pending = list(
        Referral.objects.filter(field_in("referee_id", customer_ids), status=Status.PENDING)
    )
    if not pending:
        return 0
    programme = get_programme()
    rewarded = 0
    for referral in pending:
        first = (
            Order.objects.filter(
                customer_id=referral.referee_id, status__in=Order.PURCHASE_STATUSES
            )
            .order_by("ordered_at", "id")
            .first()
        )
        if first is None:
            continue
        with transaction.atomic():
            referral = Referral.objects.select_for_update().get(pk=referral.pk)
            if referral.status != Status.PENDING:
                continue
            referral.order_ref = first.number[:64]
            if first.total_amount < programme.referral_min_amount:
                referral.status = Status.REFUSED
                referral.reason = _("the first purchase (%(a)s) is below the minimum %(m)s") % {
                    "a": first.total_amount,
                    "m": programme.referral_min_amount,
                }
                referral.save(update_fields=["status", "reason", "order_ref"])
                continue
            month_start = timezone.localtime(now).replace(
                day=1, hour=0, minute=0, second=0, microsecond=0
            )
            referrer = lock_member(referral.referrer_id)
            this_month = Referral.objects.filter(
                referrer=referrer, status=Status.REWARDED, rewarded_at__gte=month_start
            ).count()
            if this_month >= programme.referral_monthly_cap:
                referral.status = Status.REFUSED
                referral.reason = _("the referrer reached the monthly cap of %(n)s referrals") % {
                    "n": programme.referral_monthly_cap
                }
                referral.save(update_fields=["status", "reason", "order_ref"])
                continue
            if programme.referrer_points:
                add_grant(
                    referrer,
                    kind="earn",
                    points=programme.referrer_points,
                    key=f"referral:{referral.pk}:referrer",
                    now=now,
                    by=by,
                    reason="referral",
                    source="referral",
                )
            referee = (
                Member.objects.select_for_update().filter(customer_id=referral.referee_id).first()
            )
            if referee is not None and programme.referee_points:
                add_grant(
                    referee,
                    kind="earn",
                    points=programme.referee_points,
                    key=f"referral:{referral.pk}:referee",
                    now=now,
                    by=by,
                    reason="referral",
                    source="referral",
                )
            referral.status, referral.rewarded_at = Status.REWARDED, now
            referral.save(update_fields=["status", "rewarded_at", "order_ref"])
            record(by, referrer, "referral_rewarded", None, referral=referral.pk)
            rewarded += 1
    return rewarded
