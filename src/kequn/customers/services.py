"""Every change to customers goes through here: API, back office, importers and jobs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Min, Sum

from kequn.customers.access import is_customer_visible
from kequn.customers.identities import IdentityError, normalize_identity
from kequn.customers.models import Consent, Customer, CustomerTag, Identity, Tag

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


@dataclass(frozen=True)
class CustomerTotals:
    orders: int
    revenue: Decimal
    first_purchase: datetime | None
    last_purchase: datetime | None


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


def _check_processing_allowed(customer: Customer) -> None:
    """Refuse changes to a customer whose processing is restricted on a data-subject request."""
    if customer.pk:
        from kequn.privacy.services import check_not_restricted

        check_not_restricted(customer)


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


def describe_identity_conflict(kind: str, value: str, owner_id: int, by: Any = None) -> str:
    """Say which customer holds an identity only to a user who may see that customer."""
    if by is None or is_customer_visible(by, owner_id):
        return f"{kind} {value} already belongs to customer #{owner_id}"
    # Naming (or even hinting at) another rep's customer would let ids and owners be probed.
    return f"{kind} {value} cannot be used for this customer"


def add_identity(
    customer: Customer, identity: IdentityInput, *, by: AbstractBaseUser | None = None
) -> Identity:
    """Attach a normalised identity; refuse one that belongs to another customer."""
    _check_processing_allowed(customer)
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
                describe_identity_conflict(identity.kind, value, existing.customer_id, by)
            )
        return existing
    try:
        with transaction.atomic():
            return Identity.objects.create(
                customer=customer,
                kind=identity.kind,
                system=system,
                value=value,
                verified=identity.verified,
            )
    except IntegrityError:
        raise ValidationError(f"{identity.kind} {value} is already taken") from None


@transaction.atomic
def create_customer(
    data: dict[str, Any],
    identities: Iterable[IdentityInput] = (),
    by: AbstractBaseUser | None = None,
    source: str = BACKOFFICE,
) -> Customer:
    """Create a customer with its identities; all or nothing."""
    customer = Customer(**_clean_profile(data))
    mark_field_sources(customer, [k for k, v in data.items() if v not in ("", None)], source)
    _validate(customer)
    customer.save()
    for identity in identities:
        add_identity(customer, identity, by=by)
    return customer


@transaction.atomic
def update_customer(
    customer: Customer,
    data: dict[str, Any],
    by: AbstractBaseUser | None = None,
    source: str = BACKOFFICE,
) -> Customer:
    """Change profile fields of a customer."""
    _check_processing_allowed(customer)
    for field, value in _clean_profile(data).items():
        setattr(customer, field, value)
    mark_field_sources(customer, data, source)
    _validate(customer)
    customer.save()
    return customer


@transaction.atomic
def delete_customer(customer: Customer, by: AbstractBaseUser | None = None) -> None:
    """Delete a customer with identities, consents and tags; orders keep no customer."""
    customer.orders.update(customer=None)
    customer.delete()


def record_consent(
    customer: Customer, channel: str, purpose: str, granted: bool, source: str = ""
) -> Consent:
    """Append a consent decision (history is kept; the latest one is in force)."""
    if granted:  # a withdrawal only lessens processing, so it is taken even while restricted
        _check_processing_allowed(customer)
    consent = Consent(
        customer=customer, channel=channel, purpose=purpose, granted=granted, source=source
    )
    consent.full_clean(exclude=["recorded_at"])
    consent.save()
    return consent


def get_current_consents(customer: Customer) -> dict[tuple[str, str], Consent]:
    """Return the latest consent per (channel, purpose)."""
    current: dict[tuple[str, str], Consent] = {}
    for consent in customer.consents.order_by("recorded_at", "id"):
        current[(consent.channel, consent.purpose)] = consent
    return current


def tag_customers(
    customers: Iterable[Customer], tag: Tag, by: AbstractBaseUser | None = None
) -> int:
    """Tag customers (idempotent); return how many links were added (restricted ones are skipped)."""
    links = [
        CustomerTag(customer=c, tag=tag, added_by=by)
        for c in customers
        if not c.processing_restricted
    ]
    before = CustomerTag.objects.filter(tag=tag).count()
    CustomerTag.objects.bulk_create(links, ignore_conflicts=True)
    return CustomerTag.objects.filter(tag=tag).count() - before


def untag_customer(customer: Customer, tag: Tag) -> None:
    """Remove a tag from a customer."""
    CustomerTag.objects.filter(customer=customer, tag=tag).delete()


def get_customer_totals(customer: Customer) -> CustomerTotals:
    """Return orders, revenue, first and last purchase over purchase orders."""
    from kequn.commerce.models import Order

    agg = Order.objects.filter(customer=customer, status__in=Order.PURCHASE_STATUSES).aggregate(
        orders=Count("id"),
        revenue=Sum("total_amount"),
        first=Min("ordered_at"),
        last=Max("ordered_at"),
    )
    return CustomerTotals(
        orders=agg["orders"] or 0,
        revenue=agg["revenue"] or Decimal("0"),
        first_purchase=agg["first"],
        last_purchase=agg["last"],
    )
