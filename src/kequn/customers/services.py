"""Every change to customers goes through here: API, back office, importers and jobs.

Each write service takes the actor who makes the change (``by``), names it to the audit trail
for the rows it saves (the audit signals record them in the same transaction) and refuses
changes to a customer whose processing is restricted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction

from kequn.customers.access import is_customer_visible
from kequn.customers.guards import check_processing_allowed
from kequn.customers.identities import IdentityError, normalize_identity
from kequn.customers.models import Consent, Customer, CustomerTag, Identity, Tag
from kequn.security.actors import Actor, get_user_or_none
from kequn.security.audit import services as audit

PROFILE_FIELDS = (
    "kind",
    "name",
    "gender",
    "birthday",
    "age_band",
    "income_band",
    "occupation",
    "industry",
    "country",
    "province",
    "city",
    "preferred_language",
    "source_channel",
    "external_ref",
)


@dataclass(frozen=True)
class IdentityInput:
    kind: str
    value: str
    system: str = ""
    verified: bool = False


# Who set a profile field, for import survivorship (kequn.ingest.survivorship): a person's
# own edits in the back office rank above every import.
BACKOFFICE = "backoffice"


def mark_field_sources(customer: Customer, fields: Iterable[str], source: str) -> None:
    """Record that `source` set these profile fields of the customer (saved with it)."""
    sources = dict(customer.field_sources or {})
    sources.update(dict.fromkeys((f for f in fields if f in PROFILE_FIELDS), source))
    customer.field_sources = sources or None


def _clean_profile(data: dict[str, Any]) -> dict[str, Any]:
    unknown = set(data) - set(PROFILE_FIELDS)
    if unknown:
        raise ValidationError(f"unknown customer field(s): {', '.join(sorted(unknown))}")
    return {k: ("" if v is None and k != "birthday" else v) for k, v in data.items()}


def _validate(customer: Customer) -> None:
    customer.full_clean(exclude=["created_at", "updated_at"])


def find_customer_by_identity(kind: str, value: str, system: str = "") -> Customer | None:
    """Return the customer owning the normalised identity, or None."""
    try:
        normalised = normalize_identity(kind, value)
    except IdentityError:
        return None
    identity = (
        Identity.objects.select_related("customer")
        .with_value(normalised)
        .filter(kind=kind, system=system if kind == "external" else "")
        .first()
    )
    return identity.customer if identity else None


def describe_identity_conflict(
    kind: str, value: str, owner_id: int, *, by: Actor | None = None
) -> str:
    """Say which customer holds an identity only to a user who may see that customer."""
    if by is None or is_customer_visible(by, owner_id):
        return f"{kind} {value} already belongs to customer #{owner_id}"
    # Naming (or even hinting at) another rep's customer would let ids and owners be probed.
    return f"{kind} {value} cannot be used for this customer"


def add_identity(customer: Customer, identity: IdentityInput, *, by: Actor) -> Identity:
    """Attach a normalised identity; refuse one that belongs to another customer."""
    check_processing_allowed(customer)
    try:
        value = normalize_identity(identity.kind, identity.value)
    except IdentityError as exc:
        raise ValidationError(str(exc)) from None
    system = identity.system if identity.kind == "external" else ""
    if identity.kind == "external" and not system:
        raise ValidationError("an external id needs the name of its system")
    existing = Identity.objects.with_value(value).filter(kind=identity.kind, system=system).first()
    if existing is not None:
        if existing.customer_id != customer.pk:
            raise ValidationError(
                describe_identity_conflict(identity.kind, value, existing.customer_id, by=by)
            )
        return existing
    try:
        with transaction.atomic(), audit.acting_as(by):
            return Identity.objects.create(
                customer=customer,
                kind=identity.kind,
                system=system,
                value=value,
                verified=identity.verified,
            )
    except IntegrityError:
        raise ValidationError(f"{identity.kind} {value} is already taken") from None


def create_customer(
    data: dict[str, Any],
    identities: Iterable[IdentityInput] = (),
    *,
    by: Actor,
    source: str = BACKOFFICE,
) -> Customer:
    """Create a customer with its identities; all or nothing."""
    customer = Customer(**_clean_profile(data))
    mark_field_sources(customer, [k for k, v in data.items() if v not in ("", None)], source)
    _validate(customer)
    with transaction.atomic(), audit.acting_as(by):
        customer.save()
        for identity in identities:
            add_identity(customer, identity, by=by)
    return customer


def update_customer(
    customer: Customer, data: dict[str, Any], *, by: Actor, source: str = BACKOFFICE
) -> Customer:
    """Change profile fields of a customer."""
    check_processing_allowed(customer)
    for field, value in _clean_profile(data).items():
        setattr(customer, field, value)
    mark_field_sources(customer, data, source)
    _validate(customer)
    with transaction.atomic(), audit.acting_as(by):
        customer.save()
    return customer


def save_customer(
    customer: Customer, *, changed: Iterable[str], by: Actor, source: str = BACKOFFICE
) -> Customer:
    """Save a customer whose fields a validated form has set; `changed` names the fields set."""
    check_processing_allowed(customer)
    # Edits made in the back office outrank every import (import survivorship keeps them).
    mark_field_sources(customer, changed, source)
    with transaction.atomic(), audit.acting_as(by):
        customer.save()
    return customer


def delete_customer(customer: Customer, *, by: Actor) -> None:
    """Delete a customer with identities, consents and tags; orders keep no customer."""
    with transaction.atomic(), audit.acting_as(by):
        # Through the relation's name: the order rows belong to commerce, a layer beside this.
        customer.orders.update(customer=None)
        customer.delete()


def record_consent(
    customer: Customer,
    channel: str,
    purpose: str,
    granted: bool,
    source: str = "",
    *,
    by: Actor,
) -> Consent:
    """Append a consent decision (history is kept; the latest one is in force)."""
    if granted:  # a withdrawal only lessens processing, so it is taken even while restricted
        check_processing_allowed(customer)
    consent = Consent(
        customer=customer, channel=channel, purpose=purpose, granted=granted, source=source
    )
    consent.full_clean(exclude=["recorded_at"])
    with transaction.atomic(), audit.acting_as(by):
        consent.save()
    return consent


def get_current_consents(customer: Customer) -> dict[tuple[str, str], Consent]:
    """Return the latest consent per (channel, purpose)."""
    current: dict[tuple[str, str], Consent] = {}
    for consent in customer.consents.order_by("recorded_at", "id"):
        current[(consent.channel, consent.purpose)] = consent
    return current


def record_consents_in_bulk(
    decisions: dict[int, dict[tuple[str, str], bool]], source: str, *, by: Actor
) -> int:
    """Append the consent decisions that differ from the one in force; return how many.

    decisions maps a customer id to {(channel, purpose): granted}. Re-recording the state in
    force appends nothing, so importing the same file twice keeps one history row. As with
    record_consent, a grant to a customer whose processing is restricted is not taken (a
    withdrawal is).
    """
    if not decisions:
        return 0
    restricted = set(
        Customer.objects.filter(pk__in=list(decisions), processing_restricted=True).values_list(
            "pk", flat=True
        )
    )
    current: dict[tuple[int, str, str], bool] = {}
    for customer_id, channel, purpose, granted in (
        Consent.objects.filter(customer_id__in=list(decisions))
        .order_by("recorded_at", "id")
        .values_list("customer_id", "channel", "purpose", "granted")
    ):
        current[(customer_id, channel, purpose)] = granted
    rows = [
        Consent(customer_id=customer_id, channel=channel, purpose=purpose, granted=granted,
                source=source[:100])
        for customer_id, wanted in decisions.items()
        for (channel, purpose), granted in wanted.items()
        if current.get((customer_id, channel, purpose)) != granted
        and not (granted and customer_id in restricted)
    ]  # fmt: skip
    if rows:
        with transaction.atomic():
            Consent.objects.bulk_create(rows, batch_size=1000)
            # A bulk insert sends no model signals: one entry names the source and the count.
            audit.record_event(
                audit.CREATE,
                actor=by,
                target_type="customers.consent",
                detail={"source": source[:100], "added": len(rows)},
            )
    return len(rows)


def tag_customers_by_name(tag_names: dict[int, list[str]], *, by: Actor) -> int:
    """Give customers tags named by text (tags without a group, made when new); return links added."""
    names = {name[:100] for wanted in tag_names.values() for name in wanted if name}
    if not names:
        return 0
    tags = {t.name: t for t in Tag.objects.filter(group=None, name__in=names)}
    for name in sorted(names - tags.keys()):
        tags[name] = Tag.objects.create(name=name, kind=Tag.Kind.MANUAL)
    restricted = set(
        Customer.objects.filter(pk__in=list(tag_names), processing_restricted=True).values_list(
            "pk", flat=True
        )
    )
    added_by = get_user_or_none(by)
    links = [
        CustomerTag(customer_id=customer_id, tag=tags[name[:100]], added_by=added_by)
        for customer_id, wanted in tag_names.items()
        if customer_id not in restricted
        for name in wanted
        if name
    ]
    tag_ids = [t.pk for t in tags.values()]
    with transaction.atomic():
        before = CustomerTag.objects.filter(tag_id__in=tag_ids).count()
        CustomerTag.objects.bulk_create(links, ignore_conflicts=True, batch_size=1000)
        added = CustomerTag.objects.filter(tag_id__in=tag_ids).count() - before
        if added:
            audit.record_event(
                audit.CREATE,
                actor=by,
                target_type="customers.customertag",
                detail={"tags": sorted(names)[:50], "added": added},
            )
    return added


def tag_customers(customers: Iterable[Customer], tag: Tag, *, by: Actor) -> int:
    """Tag customers (idempotent); return how many links were added (restricted ones are skipped)."""
    added_by = get_user_or_none(by)
    links = [
        CustomerTag(customer=c, tag=tag, added_by=added_by)
        for c in customers
        if not c.processing_restricted
    ]
    with transaction.atomic():
        before = CustomerTag.objects.filter(tag=tag).count()
        CustomerTag.objects.bulk_create(links, ignore_conflicts=True)
        added = CustomerTag.objects.filter(tag=tag).count() - before
        if added:
            # A bulk insert sends no model signals: one entry names the tag and the count.
            audit.record_event(
                audit.CREATE,
                actor=by,
                target=tag,
                detail={"relation": "customers", "added": added},
            )
    return added


def _customer_of(record: models.Model) -> Customer | None:
    """Return the customer a back-office row belongs to (a company for its contact links)."""
    for name in ("customer", "company"):
        if getattr(record, f"{name}_id", None) is not None:
            return getattr(record, name)
    return None


def save_record(record: models.Model, *, by: Actor) -> models.Model:
    """Save a row of this app set by a validated back-office form (identity, address, tag...)."""
    customer = _customer_of(record)
    if customer is not None and not (isinstance(record, Consent) and not record.granted):
        check_processing_allowed(customer)
    if isinstance(record, CustomerTag) and record.added_by_id is None:
        record.added_by = get_user_or_none(by)
    with transaction.atomic(), audit.acting_as(by):
        record.save()
    return record


def delete_record(record: models.Model, *, by: Actor) -> None:
    """Delete a row of this app from the back office (an identity, an address, a tag...)."""
    customer = _customer_of(record)
    if customer is not None:
        check_processing_allowed(customer)
    with transaction.atomic(), audit.acting_as(by):
        record.delete()
