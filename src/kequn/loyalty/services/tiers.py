"""Tiers: upgrade as soon as a member qualifies, downgrade one tier at a time at the yearly review."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, cast

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from tqdm import tqdm

from kequn.commerce.models import Order
from kequn.db import field_in, insert_columns
from kequn.loyalty.models import LedgerEntry, Member, Programme, Tier, TierChange, TierCheck
from kequn.loyalty.services.base import get_programme
from kequn.security.actors import Actor
from kequn.security.audit import services as audit

WINDOW = timedelta(days=365)
# Called after commit with (customer_ids, payload) when tiers change (see loyalty.integrations).
TierListener = Callable[[list[int], dict], None]
_listeners: list[TierListener] = []


def register_tier_listener(listener: TierListener) -> None:
    """Call `listener` after each commit that changed tiers."""
    if listener not in _listeners:
        _listeners.append(listener)


def _notify(changes: list[tuple[int, str, str]]) -> None:
    if not changes or not _listeners:
        return
    # One call per (from, to) pair with all its members: a call per member (one journey
    # lookup each) made an import batch that upgraded 3,600 members spend 10 s here.
    moves: dict[tuple[str, str], list[int]] = {}
    for customer_id, old, new in changes:
        moves.setdefault((old, new), []).append(customer_id)
    for listener in _listeners:
        for (old, new), customer_ids in moves.items():
            listener(customer_ids, {"from_tier": old, "tier": new})


def compute_qualifying(
    member_ids: Iterable[int], programme: Programme, now: datetime
) -> dict[int, Decimal]:
    """Return each member's spend (or points earned) in the rolling 12 months."""
    ids = list(member_ids)
    since = now - WINDOW
    rows: Any
    if programme.tier_basis == Programme.TierBasis.POINTS:
        rows = (
            LedgerEntry.objects.filter(
                field_in("member_id", ids),
                kind=LedgerEntry.Kind.EARN,
                created_at__gte=since,
                reversals__isnull=True,
            )
            .values("member_id")
            .annotate(total=Sum("points") + Sum("pending"))
            .values_list("member_id", "total")
        )
    else:
        rows = (
            Order.objects.filter(
                field_in("customer_id", ids),
                status__in=Order.PURCHASE_STATUSES,
                ordered_at__gte=since,
                ordered_at__lte=now,
            )
            .values("customer_id")
            .annotate(total=Sum("total_amount"))
            .values_list("customer_id", "total")
        )
    return {member_id: Decimal(total or 0) for member_id, total in rows}


def find_tier(value: Decimal, tiers: list[Tier]) -> Tier | None:
    """Return the highest tier whose threshold the value reaches."""
    best = None
    for tier in tiers:
        if value >= tier.threshold:
            best = tier
    return best


@dataclass
class ReviewResult:
    upgraded: int = 0
    downgraded: int = 0
    unchanged: int = 0
    changes: list[tuple[int, str, str]] = field(default_factory=list)


def _describe(programme: Programme) -> Callable[[Decimal], str]:
    """Return the function that words a member's 12-month value (translated once)."""
    if programme.tier_basis == Programme.TierBasis.POINTS:
        text = _("%(v)s points earned in 12 months")
        return lambda value: text % {"v": int(value)}
    text = _("spend %(v)s in 12 months")
    return lambda value: text % {"v": value.quantize(Decimal("0.01"))}


# A member as the tier check reads it: (customer id, id of its tier or None).
MemberTier = tuple[int, int | None]


def _apply(
    members: Sequence[MemberTier],
    *,
    review: bool,
    now: datetime,
    result: ReviewResult,
    values: dict[int, Decimal] | None = None,
) -> None:
    """Move the given (locked) members to the tier their 12 months earn; record each move.

    Plain rows in and out: model objects for a batch's members and their history cost more
    than the check itself.
    """
    programme = get_programme()
    tiers = list(Tier.objects.order_by("rank"))
    if not tiers:
        return
    by_pk = {t.pk: t for t in tiers}
    if values is None:
        values = compute_qualifying((m[0] for m in members), programme, now)
    describe = _describe(programme)
    upgraded, reviewed = _("upgraded: %(why)s"), _("yearly review: %(why)s")
    history: dict[str, list] = {"member": [], "from_tier": [], "to_tier": [], "reason": []}
    by_tier: dict[int, list[int]] = {}
    for customer_id, tier_id in members:
        value = values.get(customer_id, Decimal(0))
        target = find_tier(value, tiers) or tiers[0]
        current = by_pk.get(tier_id) if tier_id is not None else None
        if current is None or target.rank > current.rank:
            new, reason = target, upgraded
            result.upgraded += 1
        elif review and target.rank < current.rank:
            new, reason = tiers[tiers.index(current) - 1], reviewed  # one tier at a time
            result.downgraded += 1
        else:
            result.unchanged += 1
            continue
        for name, item in zip(
            history,
            (customer_id, tier_id, new.pk, (reason % {"why": describe(value)})[:300]),
            strict=True,
        ):
            history[name].append(item)
        result.changes.append((customer_id, current.code if current else "", new.code))
        by_tier.setdefault(new.pk, []).append(customer_id)
    for new_tier, ids in by_tier.items():  # one UPDATE per tier, not a CASE per row
        Member.objects.filter(field_in("customer_id", ids)).update(tier_id=new_tier, tier_since=now)
    insert_columns(TierChange, history, fixed={"changed_at": now})


def upgrade_members(
    member_ids: Iterable[int],
    *,
    by: Actor,
    now: datetime | None = None,
    ranks: dict[int, int | None] | None = None,
) -> int:
    """Upgrade at once the members who now qualify for a higher tier; return how many.

    ``ranks`` (member → rank of their tier) saves reading them when the caller has.
    """
    now = now or timezone.now()
    wanted = set(member_ids)
    tiers = list(Tier.objects.order_by("rank"))
    if not tiers or not wanted:
        return 0
    if ranks is None:
        ranks = dict(
            Member.objects.filter(field_in("customer_id", wanted)).values_list(
                "customer_id", "tier__rank"
            )
        )
    # Members of the top tier have nowhere to go: most of a loyal shop's buyers, once
    # it has run a while, and the 12-month sums below are the check's main cost.
    top = tiers[-1].rank
    ids = sorted(i for i in wanted if i in ranks and ranks[i] != top)
    if not ids:
        return 0
    # Most orders move nobody up: lock and load only the members whose 12 months now reach
    # a tier above theirs (one aggregate for the whole batch).
    values = compute_qualifying(ids, get_programme(), now)
    candidates = [
        i
        for i in ids
        if ranks[i] is None
        or (find_tier(values.get(i, Decimal(0)), tiers) or tiers[0]).rank > cast(int, ranks[i])
    ]
    if not candidates:
        return 0
    result = ReviewResult()
    with transaction.atomic():
        members = list(
            Member.objects.select_for_update(of=("self",))
            .filter(field_in("customer_id", candidates))
            .order_by("customer_id")
            .values_list("customer_id", "tier_id")
        )
        # The sums above serve: summing again after the lock would add only the orders of
        # a concurrent batch, and the candidates were chosen without those anyway.
        _apply(members, review=False, now=now, result=result, values=values)
        if result.upgraded:
            audit.record_event(
                audit.CHANGE,
                actor=by,
                target_type="loyalty.member",
                detail={"loyalty": "upgrade", "members": result.upgraded},
            )
            changes = list(result.changes)
            transaction.on_commit(lambda: _notify(changes))
    return result.upgraded


def queue_tier_checks(ranks: dict[int, int | None]) -> None:
    """Leave the members (member → rank of their tier) to the end-of-import check, once each.

    An import's batches name the same buyers again and again; checking them at the end
    sums each one's 12 months once instead of once a batch.
    """
    top = Tier.objects.order_by("-rank").values_list("rank", flat=True).first()
    if top is None:
        return
    ids = [i for i, rank in ranks.items() if rank != top]
    TierCheck.objects.bulk_create(
        [TierCheck(member_id=i) for i in ids], ignore_conflicts=True, batch_size=2000
    )


def run_tier_checks(*, by: Actor, now: datetime | None = None, batch_size: int = 5000) -> int:
    """Check the members imports left for a tier check (also those of a run that died)."""
    upgraded = 0
    while True:
        with transaction.atomic():
            ids = list(
                TierCheck.objects.select_for_update(skip_locked=True)
                .order_by("member_id")
                .values_list("member_id", flat=True)[:batch_size]
            )
            if not ids:
                return upgraded
            upgraded += upgrade_members(ids, by=by, now=now)
            TierCheck.objects.filter(field_in("member_id", ids)).delete()


def review_tiers(
    *, by: Actor, now: datetime | None = None, batch_size: int = 2000, progress: bool = False
) -> ReviewResult:
    """The yearly review: upgrade who qualifies, move down one tier who no longer does."""
    now = now or timezone.now()
    result = ReviewResult()
    last = 0
    total = Member.objects.count()
    with tqdm(total=total, unit=" members", file=sys.stderr, disable=not progress) as bar:
        while True:
            with transaction.atomic():
                members = list(
                    Member.objects.select_for_update(of=("self",))
                    .filter(customer_id__gt=last)
                    .order_by("customer_id")
                    .values_list("customer_id", "tier_id")[:batch_size]
                )
                if not members:
                    break
                part = ReviewResult()
                _apply(members, review=True, now=now, result=part)
                audit.record_event(
                    audit.CHANGE,
                    actor=by,
                    target_type="loyalty.member",
                    detail={
                        "loyalty": "review",
                        "upgraded": part.upgraded,
                        "downgraded": part.downgraded,
                        "members": len(members),
                    },
                )
                changes = list(part.changes)
                transaction.on_commit(partial(_notify, changes))
            result.upgraded += part.upgraded
            result.downgraded += part.downgraded
            result.unchanged += part.unchanged
            result.changes.extend(part.changes)
            last = members[-1][0]
            bar.update(len(members))
    return result
