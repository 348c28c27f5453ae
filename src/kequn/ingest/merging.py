"""Merging duplicate customers, undoing merges, and the review queue of possible matches."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from kequn.commerce.models import Order
from kequn.customers.models import Address, CompanyContact, Consent, Customer, CustomerTag, Identity
from kequn.customers.services import PROFILE_FIELDS
from kequn.ingest.models import MatchCandidate, Merge
from kequn.ingest.unionfind import UnionFind
from kequn.security.actors import Actor, get_user_or_none
from kequn.security.audit import services as audit

# Rows that belong to a customer and follow it into the merged record: {snapshot key:
# (model, foreign key to the customer)}. Apps above ingest (events) add theirs with
# register_movable() in their AppConfig.ready().
_MOVABLE: dict[str, tuple[type[models.Model], str]] = {
    "identities": (Identity, "customer"),
    "addresses": (Address, "customer"),
    "consents": (Consent, "customer"),
    "orders": (Order, "customer"),
}


def register_movable(key: str, model: type[models.Model], fk: str = "customer") -> None:
    """Make rows of `model` follow their customer (by `fk`) into a merge, and back on undo."""
    _MOVABLE[key] = (model, fk)


def _jsonable(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value


def get_surviving_record(customer: Customer) -> Customer:
    """Return the record a customer was (transitively) merged into, or itself."""
    seen = set()
    while customer.merged_into_id and customer.pk not in seen:
        seen.add(customer.pk)
        customer = Customer.objects.get(pk=customer.merged_into_id)
    return customer


def _record_merge(action: str, merge: Merge, by: Actor | None) -> None:
    # An import writes one entry for the whole job (row-level entries are suppressed there).
    if audit.is_suppressed():
        return
    audit.record_event(
        audit.CHANGE,
        actor=by,
        target=merge,
        detail={
            "action": action,
            "merge": merge.pk,
            "customer": merge.target_id,
            "absorbed": merge.absorbed_id,
            "rule": merge.rule,
        },
    )


@transaction.atomic
def merge_customers(
    target: Customer,
    absorbed: Customer,
    *,
    rule: str,
    score: float | None = None,
    by: Actor,
    actor: str = "",
    evidence: object = None,
) -> Merge:
    """Move everything of `absorbed` onto `target` and mark it merged; record how to undo."""
    # Model-level audit entries of these saves name who made the change.
    with audit.acting_as(by):
        target = Customer.objects.select_for_update().get(pk=target.pk)
        absorbed = Customer.objects.select_for_update().get(pk=absorbed.pk)
        if target.pk == absorbed.pk:
            raise ValidationError(_("a record cannot be merged into itself"))
        if absorbed.merged_into_id or target.merged_into_id:
            raise ValidationError(
                _("customer #%(id)s was already merged; merge the surviving record instead")
                % {"id": absorbed.pk if absorbed.merged_into_id else target.pk}
            )
        snapshot: dict = {
            "target_fields": {f: _jsonable(getattr(target, f)) for f in PROFILE_FIELDS},
            "evidence": evidence,
        }
        for key, (model, fk) in _MOVABLE.items():
            qs = model.objects.filter(**{fk: absorbed})
            snapshot[key] = list(qs.values_list("pk", flat=True))
            qs.update(**{fk: target})
        # A tag or company link the target already has would break a unique constraint: drop the
        # duplicate and remember it so undo can put it back.
        own_tags = set(CustomerTag.objects.filter(customer=target).values_list("tag_id", flat=True))
        moved, removed = [], []
        for link in CustomerTag.objects.filter(customer=absorbed):
            if link.tag_id in own_tags:
                removed.append(
                    {"tag": link.tag_id, "by": link.added_by_id, "at": link.added_at.isoformat()}
                )
                link.delete()
            else:
                moved.append(link.pk)
        CustomerTag.objects.filter(pk__in=moved).update(customer=target)
        snapshot["tags_moved"], snapshot["tags_removed"] = moved, removed
        contacts = []
        for fk, other in (("company", "contact"), ("contact", "company")):
            taken = set(
                CompanyContact.objects.filter(**{fk: target}).values_list(f"{other}_id", flat=True)
            )
            for link in CompanyContact.objects.filter(**{fk: absorbed}):
                if (
                    getattr(link, f"{other}_id") not in taken
                    and getattr(link, f"{other}_id") != target.pk
                ):
                    setattr(link, fk, target)
                    link.save(update_fields=[fk])
                    contacts.append([fk, link.pk])
        snapshot["contacts_moved"] = contacts
        # Survivorship: the kept record keeps its values and takes the absorbed one's where empty.
        changed = []
        for name in PROFILE_FIELDS:
            if name in ("kind", "external_ref", "country"):
                continue
            if getattr(target, name) in ("", None) and getattr(absorbed, name) not in ("", None):
                setattr(target, name, getattr(absorbed, name))
                changed.append(name)
        if changed:
            target.save(update_fields=[*changed, "updated_at"])
        absorbed.merged_into = target
        absorbed.save(update_fields=["merged_into", "updated_at"])
    merge = Merge.objects.create(
        target=target,
        absorbed=absorbed,
        rule=rule[:100],
        score=score,
        snapshot=snapshot,
        created_by=get_user_or_none(by),
        actor=actor[:100],
    )
    _record_merge("merge", merge, by)
    return merge


@transaction.atomic
def undo_merge(merge: Merge, *, by: Actor) -> Merge:
    """Restore both records as they were before the merge."""
    merge = Merge.objects.select_for_update().get(pk=merge.pk)
    if merge.undone_at:
        raise ValidationError(_("merge #%(id)s was already undone") % {"id": merge.pk})
    involved = [merge.target_id, merge.absorbed_id]
    later = (
        Merge.objects.filter(undone_at__isnull=True, pk__gt=merge.pk)
        .filter(Q(target_id__in=involved) | Q(absorbed_id__in=involved))
        .order_by("-pk")
        .first()
    )
    if later is not None:
        raise ValidationError(
            _("undo the later merge #%(id)s (%(merge)s) first") % {"id": later.pk, "merge": later}
        )
    # Model-level audit entries of these saves name who made the change.
    with audit.acting_as(by):
        snapshot = merge.snapshot
        target, absorbed = merge.target, merge.absorbed
        for key, (model, fk) in _MOVABLE.items():
            ids = snapshot.get(key) or []
            for start in range(0, len(ids), 5000):
                model.objects.filter(pk__in=ids[start : start + 5000], **{fk: target}).update(
                    **{fk: absorbed}
                )
        CustomerTag.objects.filter(pk__in=snapshot.get("tags_moved", []), customer=target).update(
            customer=absorbed
        )
        for link in snapshot.get("tags_removed", []):
            CustomerTag.objects.get_or_create(
                customer=absorbed,
                tag_id=link["tag"],
                defaults={"added_by_id": link["by"], "added_at": link["at"]},
            )
        for fk, link_id in snapshot.get("contacts_moved", []):
            CompanyContact.objects.filter(pk=link_id).update(**{fk: absorbed})
        fields = snapshot.get("target_fields", {})
        for name, value in fields.items():
            setattr(
                target, name, date.fromisoformat(value) if name == "birthday" and value else value
            )
        target.save()
        absorbed.merged_into = None
        absorbed.save(update_fields=["merged_into", "updated_at"])
    user = get_user_or_none(by)
    merge.undone_at = timezone.now()
    merge.undone_by = user
    merge.save(update_fields=["undone_at", "undone_by"])
    # An undone merge is a human "these are different people": keep the matcher from redoing it.
    MatchCandidate.objects.filter(merge=merge).update(
        status=MatchCandidate.Status.REJECTED, decided_at=timezone.now(), decided_by=user
    )
    _record_merge("undo", merge, by)
    return merge


# ---------------------------------------------------------------- the review queue


@transaction.atomic
def accept_match(candidate: MatchCandidate, *, by: Actor) -> Merge:
    """Merge a reviewed pair: the older record is kept."""
    left, right = get_surviving_record(candidate.left), get_surviving_record(candidate.right)
    if left.pk == right.pk:
        raise ValidationError(_("the two records are already one customer"))
    target, absorbed = (left, right) if left.pk < right.pk else (right, left)
    merge = merge_customers(
        target, absorbed, rule="probabilistic: reviewed", score=candidate.score, by=by,
        actor=by.get_username() if by else "review", evidence=candidate.details,
    )  # fmt: skip
    candidate.status = MatchCandidate.Status.ACCEPTED
    candidate.decided_at, candidate.decided_by = timezone.now(), get_user_or_none(by)
    candidate.merge = merge
    candidate.save(update_fields=["status", "decided_at", "decided_by", "merge"])
    return merge


@transaction.atomic
def reject_match(candidate: MatchCandidate, *, by: Actor) -> None:
    """Keep a reviewed pair apart; the matcher will not propose it again."""
    candidate.status = MatchCandidate.Status.REJECTED
    candidate.decided_at, candidate.decided_by = timezone.now(), get_user_or_none(by)
    candidate.save(update_fields=["status", "decided_at", "decided_by"])
    audit.record_event(
        audit.CHANGE,
        actor=by,
        target=candidate,
        detail={"action": "reject_match", "left": candidate.left_id, "right": candidate.right_id},
    )


@dataclass
class ResolveSummary:
    records: int = 0
    pairs: int = 0
    merged: int = 0
    queued: int = 0
    skipped: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def resolve_probabilistic(*, upper: float = 0.95, lower: float = 0.60, by: Actor) -> ResolveSummary:
    """Score records without a shared identifier; merge above `upper`, queue the rest above `lower`."""
    from kequn.ingest.resolution import (  # noqa: PLC0415 -- pandas and Splink load on use only
        load_profiles,
        score_pairs,
    )

    frame = load_profiles()
    pairs = score_pairs(frame, lower=lower)
    summary = ResolveSummary(records=len(frame), pairs=len(pairs))
    decided = {
        (a, b): status
        for a, b, status in MatchCandidate.objects.exclude(
            status=MatchCandidate.Status.PENDING
        ).values_list("left_id", "right_id", "status")
    }
    undone = {
        tuple(sorted(p))
        for p in Merge.objects.filter(undone_at__isnull=False).values_list(
            "target_id", "absorbed_id"
        )
    }
    uf = UnionFind()
    evidence: dict[int, tuple] = {}
    for pair in sorted(pairs, key=lambda p: -p.probability):
        key = (pair.left, pair.right)
        if decided.get(key) == MatchCandidate.Status.REJECTED or key in undone:
            summary.skipped += 1
            continue
        if pair.probability >= upper:
            uf.union(pair.left, pair.right)
            evidence.setdefault(pair.right, (pair.left, pair.probability, pair.details))
        else:
            MatchCandidate.objects.update_or_create(
                left_id=pair.left, right_id=pair.right,
                defaults={"score": pair.probability, "details": pair.details},
            )  # fmt: skip
            summary.queued += 1
    clusters: dict[int, list[int]] = {}
    for node in list(uf.parent):
        clusters.setdefault(uf.find(node), []).append(node)
    for members in clusters.values():
        members.sort()
        target = Customer.objects.get(pk=members[0])
        for absorbed_id in members[1:]:
            _other, probability, details = evidence.get(absorbed_id, (None, None, {}))
            merge_customers(
                target, Customer.objects.get(pk=absorbed_id), rule="probabilistic: splink",
                score=probability, by=by, actor="resolve", evidence=details,
            )  # fmt: skip
            summary.merged += 1
    return summary
