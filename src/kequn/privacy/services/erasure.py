"""Erase a person: every declared table's rows go, orders stay anonymised, identities suppressed.

Erasure deletes the person's rows and keeps their orders anonymised (detached from any
customer): orders are accounting records that Chinese law requires to be kept for years
(Accounting Archives Management Measures: 30 years for vouchers and books). How each table is
erased is declared with its personal data (kequn.security.personal_data); every identity of
the erased person goes on the suppression list (see suppression.py).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from kequn.customers.models import Customer, Identity
from kequn.privacy import journal as erasure_journal
from kequn.privacy.models import PrivacyRequest, Suppression
from kequn.privacy.services.base import (
    check_request,
    finish_request,
    get_record_ids,
    record_privacy_event,
    start_request,
)
from kequn.privacy.services.suppression import hash_identity
from kequn.security.actors import Actor
from kequn.security.audit.services import suppress_model_events
from kequn.security.backups.services import AfterRestoreError
from kequn.security.personal_data import Erase, ErasureContext, PersonalData, get_entries


def _erase_entry(entry: PersonalData, context: ErasureContext) -> int:
    """Apply one declared table's erasure before the customer rows go; return the rows touched."""
    rows = entry.model._default_manager.filter(entry.filter_for(context.customer_ids))
    if entry.erase is Erase.CUSTOM and entry.eraser is not None:
        return entry.eraser(context)
    if entry.erase is Erase.DELETE:
        return rows.delete()[0]
    if entry.erase is Erase.DETACH:
        # Each path is a link to the person; every one of them is cut.
        return sum(
            entry.model._default_manager.filter(**{f"{path}__in": context.customer_ids}).update(
                **{path: None}
            )
            for path in entry.paths
        )
    if entry.erase is Erase.BLANK:
        return rows.update(**dict.fromkeys(entry.blank_fields, ""))
    return 0  # CASCADE and KEEP: nothing to do before the customer rows are deleted


@transaction.atomic
def erase_customer(
    customer: Customer,
    *,
    request: PrivacyRequest | None = None,
    by: Actor | None,
    journal: bool = True,
) -> dict[str, int]:
    """Delete the person's records (merged ones too), keep their orders anonymised, suppress them.

    The erasure also goes to the erasure journal outside the database (see journal.py), so a
    restore of an older backup can erase the person again; a replay passes journal=False.
    """
    check_request(request, PrivacyRequest.Type.ERASURE, customer)
    if request is not None:
        start_request(request, by)
    ids = get_record_ids(customer)
    identities = list(
        Identity.objects.filter(customer_id__in=ids).values_list("kind", "system", "value")
    )
    now = timezone.now()
    request_ref = request.pk if request else None
    hashes = {hash_identity(k, v, s, normalised=True): k for k, s, v in identities}
    Suppression.objects.bulk_create(
        [
            Suppression(
                kind=k, key_hash=h, request=request, request_ref=request_ref, created_at=now
            )
            for h, k in hashes.items()
        ],
        ignore_conflicts=True,
    )
    if journal:
        records = list(Customer.objects.filter(pk__in=ids).values_list("pk", "created_at"))
        erasure_journal.append_erasure(records, hashes, request_ref)
    counts: dict[str, int] = {"records": len(ids), "suppressed": len(hashes)}
    context = ErasureContext(
        customer_ids=ids, identity_values=frozenset(v for _k, _s, v in identities)
    )
    for entry in get_entries():
        touched = _erase_entry(entry, context)
        if entry.erase_count:
            counts[entry.erase_count] = touched
    # Everything declared with Erase.CASCADE goes with the customer rows.
    Customer.objects.filter(pk__in=ids).update(merged_into=None)
    with suppress_model_events():  # one erasure entry instead of one per deleted row
        deleted, _per_model = Customer.objects.filter(pk__in=ids).delete()
    counts["rows_deleted"] = deleted
    if request is not None:
        request.customer = None
        finish_request(request, by, counts, customer=None)
    record_privacy_event("ERASURE", request, by, customer_id=customer.pk, **counts)
    return counts


def replay_erasures(*, by: Actor | None) -> dict[str, int]:
    """Re-apply every erasure of the journal to this database (after restoring a backup).

    Puts each suppression hash back on the list and erases again the records the database
    still holds, matched on id and creation time. Running it twice changes nothing.
    """
    done = {"erasures": 0, "suppressions_restored": 0, "records_erased": 0}
    for erasure in erasure_journal.read_erasures():
        done["erasures"] += 1
        known = set(
            Suppression.objects.filter(key_hash__in=list(erasure.hashes)).values_list(
                "key_hash", flat=True
            )
        )
        missing = [h for h in erasure.hashes if h not in known]
        Suppression.objects.bulk_create(
            [
                Suppression(kind=erasure.hashes[h], key_hash=h, request_ref=erasure.request)
                for h in missing
            ],
            ignore_conflicts=True,
        )
        done["suppressions_restored"] += len(missing)
        for pk, created in erasure.records:
            customer = Customer.objects.filter(pk=pk).first()
            if customer is not None and customer.created_at.isoformat() == created:
                done["records_erased"] += erase_customer(customer, by=by, journal=False)["records"]
    return done


def describe_replay(done: dict[str, int]) -> str:
    """Return one line on what replay_erasures did."""
    return (
        f"erasure journal: {done['erasures']} erasures re-applied, "
        f"{done['records_erased']} records erased again, "
        f"{done['suppressions_restored']} suppressions restored"
    )


def replay_after_restore(*, by: Actor | None) -> str:
    """Replay the erasure journal after a restore; return what was done ("" when nothing)."""
    try:
        done = replay_erasures(by=by)
    except erasure_journal.JournalError as exc:
        raise AfterRestoreError(
            f"the erasures were not re-applied: {exc}; then run `kequn privacy replay-erasures`"
        ) from None
    return describe_replay(done) if done["erasures"] else ""
