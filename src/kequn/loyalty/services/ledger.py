"""The points ledger: enrol, grant, spend (oldest expiry first), reverse, adjust, release, expire.

Every write locks the member's row first (SELECT … FOR UPDATE on PostgreSQL; SQLite's
transactions take the write lock at BEGIN), then looks its idempotency key up: the same key
again returns the entry already written instead of writing twice. The invariant the services
keep: the sum of the open grants' ``remaining`` equals the balance when it is positive (zero
when the balance is negative, a debt the next points pay off first).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from kequn.loyalty.models import Allocation, LedgerEntry, Member
from kequn.loyalty.services.base import (
    LoyaltyError,
    check_points,
    compute_expiry,
    get_base_tier,
    get_programme,
    lock_member,
    new_member,
)
from kequn.security.actors import Actor
from kequn.security.audit import services as audit

Kind = LedgerEntry.Kind
GRANT_KINDS = (Kind.EARN, Kind.ADJUST)
EVENT_KINDS = ("review", "sign_in", "profile", "birthday")
MAX_KEY = 200


def _actor_name(by: Actor) -> str:
    return by.get_username()[:150]


def check_key(key: object) -> str:
    """Return the idempotency key, or raise when it is missing or too long."""
    if not isinstance(key, str) or not key.strip():
        raise LoyaltyError(_("an idempotency key is required"), "missing_key")
    if len(key) > MAX_KEY:
        raise LoyaltyError(
            _("the idempotency key is longer than %(n)s characters") % {"n": MAX_KEY}, "invalid"
        )
    return key.strip()


def find_entry(key: str, member: Member, kind: str | Iterable[str]) -> LedgerEntry | None:
    """Return the entry already written under this key, refusing a key used for something else."""
    entry = LedgerEntry.objects.filter(key=key).first()
    if entry is None:
        return None
    kinds = {kind} if isinstance(kind, str) else set(kind)
    if entry.member_id != member.customer_id or entry.kind not in kinds:
        raise LoyaltyError(
            _("the idempotency key %(k)r was already used for another operation: use a new key")
            % {"k": key},
            "key_conflict",
        )
    return entry


def record(by: Actor, member: Member, op: str, entry: LedgerEntry | None, **detail: object) -> None:
    """Append the audit entry of one ledger operation (in the caller's transaction)."""
    audit.record_event(
        audit.CHANGE,
        actor=by,
        target=member,
        detail={
            "loyalty": op,
            **({"entry": entry.pk, "points": entry.points} if entry else {}),
            **detail,
        },
    )


def enroll_member(*, customer_id: int, by: Actor, now: datetime | None = None) -> Member:
    """Make a customer a member (in the lowest tier); an existing member is returned as is."""
    existing = Member.objects.filter(customer_id=customer_id).first()
    if existing is not None:
        return existing
    from kequn.customers.models import Customer  # noqa: PLC0415 -- only to check the id

    if not Customer.objects.filter(pk=customer_id, merged_into__isnull=True).exists():
        raise LoyaltyError(
            _("no customer %(id)s: check the customer id") % {"id": customer_id}, "unknown_customer"
        )
    member = new_member(customer_id, get_base_tier(), now)
    try:
        with transaction.atomic():
            member.save(force_insert=True)
            if member.tier_id:
                member.tier_changes.create(
                    from_tier=None,
                    to_tier_id=member.tier_id,
                    reason="enrolled",
                    changed_at=member.joined_at,
                )
            record(by, member, "enroll", None)
    except IntegrityError:  # enrolled at the same moment by another request
        return Member.objects.get(customer_id=customer_id)
    return member


def add_grant(
    member: Member,
    *,
    kind: str,
    points: int,
    key: str,
    now: datetime,
    by: Actor,
    reason: str = "",
    source: str = "",
    order_ref: str = "",
    available_at: datetime | None = None,
) -> LedgerEntry:
    """Write a grant on a locked member (pending until `available_at` when that is ahead)."""
    programme = get_programme()
    available_at = available_at or now
    held = available_at > now
    entry = LedgerEntry(
        member=member,
        kind=kind,
        key=key,
        reason=reason[:300],
        source=source[:30],
        order_ref=order_ref[:64],
        created_at=now,
        created_by=_actor_name(by),
        available_at=available_at,
        expires_at=compute_expiry(programme, available_at),
    )
    if held:
        entry.points, entry.pending, entry.held = 0, points, points
        member.pending += points
    else:
        debt = max(0, -member.balance)
        entry.points, entry.remaining = points, max(0, points - debt)
        member.balance += points
    entry.save(force_insert=True)
    member.save(update_fields=["balance", "pending"])
    return entry


def draw_points(
    member: Member, entry: LedgerEntry, points: int, now: datetime, first: LedgerEntry | None = None
) -> int:
    """Take up to `points` from the member's open grants, oldest expiry first; return the taken."""
    taken = 0
    allocations = []
    grants: list[LedgerEntry] = []
    if first is not None and first.remaining > 0:
        grants.append(first)
    others = LedgerEntry.objects.filter(member=member, remaining__gt=0)
    if first is not None:
        others = others.exclude(pk=first.pk)
    others = others.order_by(F("expires_at").asc(nulls_last=True), "id")
    for grant in [*grants, *others.iterator(chunk_size=200)]:
        if taken >= points:
            break
        part = min(grant.remaining, points - taken)
        LedgerEntry.objects.filter(pk=grant.pk).update(remaining=F("remaining") - part)
        grant.remaining -= part
        allocations.append(Allocation(entry=entry, grant=grant, points=-part))
        taken += part
    Allocation.objects.bulk_create(allocations)
    return taken


def expire_overdue(member: Member, now: datetime, by: Actor) -> LedgerEntry | None:
    """Expire a locked member's grants whose expiry has passed (before a spend reads the balance)."""
    overdue = LedgerEntry.objects.filter(member=member, remaining__gt=0, expires_at__lte=now)
    total = sum(overdue.values_list("remaining", flat=True))
    if not total:
        return None
    entry = LedgerEntry.objects.create(
        member=member,
        kind=Kind.EXPIRE,
        points=-total,
        key=f"expire:{member.pk}:{uuid.uuid4().hex}",
        reason="expired",
        source="expiry",
        created_at=now,
        created_by=_actor_name(by),
    )
    # As the nightly run does: each grant keeps what expired of it (see services.expiry).
    overdue.update(expired=F("expired") + F("remaining"), remaining=0)
    member.balance -= total
    member.save(update_fields=["balance"])
    return entry


def grant_points(
    *,
    customer_id: int,
    points: object,
    key: str,
    by: Actor,
    reason: str = "",
    source: str = "",
    kind: str = Kind.EARN,
    order_ref: str = "",
    available_at: datetime | None = None,
    now: datetime | None = None,
) -> LedgerEntry:
    """Give a member points (pending until `available_at`); the same key again changes nothing."""
    amount = check_points(points)
    key = check_key(key)
    now = now or timezone.now()
    with transaction.atomic():
        member = lock_member(customer_id)
        existing = find_entry(key, member, kind)
        if existing is not None:
            return existing
        entry = add_grant(
            member,
            kind=kind,
            points=amount,
            key=key,
            now=now,
            by=by,
            reason=reason,
            source=source,
            order_ref=order_ref,
            available_at=available_at,
        )
        record(by, member, "grant", entry, reason=reason[:100])
    return entry


def spend_locked(
    member: Member,
    *,
    points: int,
    key: str,
    now: datetime,
    by: Actor,
    reason: str = "",
    source: str = "",
    order_ref: str = "",
    kind: str = Kind.SPEND,
) -> LedgerEntry:
    """Spend points of a locked member whose key is new; refuse more than the balance."""
    expire_overdue(member, now, by)
    if member.balance < points:
        raise LoyaltyError(
            _("not enough points: customer %(id)s has %(b)s available, %(p)s needed")
            % {"id": member.customer_id, "b": member.balance, "p": points},
            "insufficient_points",
        )
    entry = LedgerEntry.objects.create(
        member=member,
        kind=kind,
        points=-points,
        key=key,
        reason=reason[:300],
        source=source[:30],
        order_ref=order_ref[:64],
        created_at=now,
        created_by=_actor_name(by),
    )
    draw_points(member, entry, points, now)
    member.balance -= points
    member.save(update_fields=["balance"])
    return entry


def spend_points(
    *,
    customer_id: int,
    points: object,
    key: str,
    by: Actor,
    reason: str = "",
    source: str = "",
    order_ref: str = "",
    now: datetime | None = None,
) -> LedgerEntry:
    """Spend points, oldest expiry first; the same key again returns the first spend."""
    amount = check_points(points)
    key = check_key(key)
    now = now or timezone.now()
    with transaction.atomic():
        member = lock_member(customer_id)
        existing = find_entry(key, member, Kind.SPEND)
        if existing is not None:
            return existing
        entry = spend_locked(
            member,
            points=amount,
            key=key,
            now=now,
            by=by,
            reason=reason,
            source=source,
            order_ref=order_ref,
        )
        record(by, member, "spend", entry)
    return entry


def give_back(member: Member, entry: LedgerEntry, original: LedgerEntry) -> int:
    """Return to their grants the points an entry drew (their original expiry kept)."""
    debt = max(0, -member.balance)
    returned = 0
    allocations = []
    for allocation in original.allocations.filter(points__lt=0).order_by("id"):
        part = -allocation.points
        returned += part
        paid = min(debt, part)  # a debt is paid off before a grant gets points back
        debt -= paid
        if part - paid:
            LedgerEntry.objects.filter(pk=allocation.grant_id).update(
                remaining=F("remaining") + (part - paid)
            )
        allocations.append(Allocation(entry=entry, grant_id=allocation.grant_id, points=part))
    Allocation.objects.bulk_create(allocations)
    return returned


def take_back(member: Member, entry: LedgerEntry, grant: LedgerEntry, now: datetime) -> int:
    """Take a released grant's points back: from itself first, then others; return the taken."""
    programme = get_programme()
    grant.refresh_from_db(fields=["remaining"])
    size = grant.points
    taken = draw_points(member, entry, size, now, first=grant)
    if taken < size and programme.allow_negative_balance:
        return size  # the rest becomes a debt: the balance goes below zero
    return taken


def reverse_entry(
    *,
    entry_id: int,
    key: str,
    by: Actor,
    reason: str = "",
    source: str = "",
    now: datetime | None = None,
) -> LedgerEntry:
    """Reverse a spend (its points go back to the grants they came from) or a grant."""
    key = check_key(key)
    now = now or timezone.now()
    original = LedgerEntry.objects.filter(pk=entry_id).first()
    if original is None:
        raise LoyaltyError(_("no ledger entry %(id)s") % {"id": entry_id}, "not_found")
    with transaction.atomic():
        member = lock_member(original.member_id)
        existing = find_entry(key, member, Kind.REVERSE)
        if existing is not None:
            return existing
        original.refresh_from_db()
        entry = reverse_locked(
            member, original, key=key, now=now, by=by, reason=reason, source=source
        )
        record(by, member, "reverse", entry, reverses=original.pk)
    return entry


def reverse_locked(
    member: Member,
    original: LedgerEntry,
    *,
    key: str,
    now: datetime,
    by: Actor,
    reason: str = "",
    source: str = "",
) -> LedgerEntry:
    """Reverse an entry of a locked member (see reverse_entry)."""
    if original.reversals.exists():
        raise LoyaltyError(
            _("ledger entry %(id)s was already reversed") % {"id": original.pk}, "already_reversed"
        )
    entry = LedgerEntry(
        member=member,
        kind=Kind.REVERSE,
        points=0,
        key=key,
        reason=reason[:300],
        source=source[:30],
        order_ref=original.order_ref,
        reverses=original,
        created_at=now,
        created_by=_actor_name(by),
    )
    if original.points < 0 and original.kind in (Kind.SPEND, Kind.ADJUST):
        entry.save(force_insert=True)
        entry.points = give_back(member, entry, original)
        member.balance += entry.points
    elif original.kind in GRANT_KINDS and original.points >= 0:
        entry.save(force_insert=True)
        if original.held:
            entry.pending = -original.held
            member.pending -= original.held
            LedgerEntry.objects.filter(pk=original.pk).update(held=0)
        else:
            expire_overdue(member, now, by)  # a refund is not paid with points already expired
            entry.points = -take_back(member, entry, original, now)
            member.balance += entry.points
    else:
        raise LoyaltyError(
            _("a %(kind)s entry cannot be reversed: reverse the spend or grant itself")
            % {"kind": original.get_kind_display()},
            "not_reversible",
        )
    entry.save(update_fields=["points", "pending"])
    member.save(update_fields=["balance", "pending"])
    return entry


def adjust_points(
    *,
    customer_id: int,
    points: object,
    reason: str,
    key: str,
    by: Actor,
    now: datetime | None = None,
) -> LedgerEntry:
    """Add (positive) or remove (negative) points by hand; a reason is required and audited."""
    amount = check_points(points, allow_negative=True)
    key = check_key(key)
    if not reason or not reason.strip():
        raise LoyaltyError(_("a manual adjustment needs a reason"), "missing_reason")
    now = now or timezone.now()
    with transaction.atomic():
        member = lock_member(customer_id)
        existing = find_entry(key, member, Kind.ADJUST)
        if existing is not None:
            return existing
        if amount > 0:
            entry = add_grant(
                member,
                kind=Kind.ADJUST,
                points=amount,
                key=key,
                now=now,
                by=by,
                reason=reason,
                source="manual",
            )
        else:
            expire_overdue(member, now, by)
            if member.balance + amount < 0:
                raise LoyaltyError(
                    _(
                        "this adjustment would make the balance negative: customer %(id)s has "
                        "%(b)s points, the adjustment removes %(p)s"
                    )
                    % {"id": customer_id, "b": member.balance, "p": -amount},
                    "insufficient_points",
                )
            entry = spend_locked(
                member,
                points=-amount,
                key=key,
                now=now,
                by=by,
                reason=reason,
                source="manual",
                kind=Kind.ADJUST,
            )
        record(by, member, "adjust", entry, reason=reason.strip()[:200])
    return entry


def award_event_points(
    *, customer_id: int, event: str, key: str, by: Actor, now: datetime | None = None
) -> LedgerEntry | None:
    """Give the programme's points for an event (review, sign_in, profile, birthday), once a key."""
    if event not in EVENT_KINDS:
        raise LoyaltyError(
            _("unknown event %(e)r: use one of %(all)s")
            % {"e": event, "all": ", ".join(EVENT_KINDS)}
        )
    programme = get_programme()
    points = int(programme.event_points.get(event, 0) or 0)
    if event == "birthday":
        member = Member.objects.select_related("tier").filter(customer_id=customer_id).first()
        if member is not None and member.tier is not None and member.tier.birthday_points:
            points = member.tier.birthday_points
    if points <= 0:
        return None
    return grant_points(
        customer_id=customer_id, points=points, key=key, by=by, reason=event, source=event, now=now
    )


def release_pending(*, by: Actor, now: datetime | None = None, batch_size: int = 500) -> int:
    """Make pending points available once their date has come; return the grants released."""
    now = now or timezone.now()
    released = 0
    while True:
        due = list(
            LedgerEntry.objects.filter(held__gt=0, available_at__lte=now)
            .order_by("member_id")
            .values_list("member_id", flat=True)
            .distinct()[:batch_size]
        )
        if not due:
            return released
        with transaction.atomic():
            for member_id in due:
                member = lock_member(member_id)
                for grant in LedgerEntry.objects.filter(
                    member=member, held__gt=0, available_at__lte=now
                ).order_by("id"):
                    release_grant(member, grant, now, by)
                    released += 1
            audit.record_event(
                audit.CHANGE,
                actor=by,
                target_type="loyalty.member",
                detail={"loyalty": "release", "members": len(due)},
            )


def release_grant(member: Member, grant: LedgerEntry, now: datetime, by: Actor) -> LedgerEntry:
    """Move one held grant's points to the available balance of its locked member."""
    points = grant.held
    entry = LedgerEntry.objects.create(
        member=member,
        kind=Kind.RELEASE,
        points=points,
        pending=-points,
        key=f"release:{grant.pk}",
        source="release",
        order_ref=grant.order_ref,
        created_at=now,
        created_by=_actor_name(by),
    )
    Allocation.objects.create(entry=entry, grant=grant, points=points)
    debt = max(0, -member.balance)
    LedgerEntry.objects.filter(pk=grant.pk).update(held=0, remaining=max(0, points - debt))
    member.balance += points
    member.pending -= points
    member.save(update_fields=["balance", "pending"])
    return entry
