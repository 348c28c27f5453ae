"""REST endpoints for customers: CRUD, find by identity, cursor paging."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema, Status

from kequn.apiutils import ObjectId, Page, check_perm, paginate
from kequn.customers import services
from kequn.customers.access import claim_customer
from kequn.customers.models import Customer
from kequn.customers.places import normalize_place
from kequn.customers.profile import get_customer_totals as get_purchase_totals
from kequn.security.masking import BIRTHDAY, get_unmasked_groups, mask_birthday, mask_identity_for
from kequn.security.permissions import record_personal_view, scope_customers

router = Router(tags=["customers"])

IdentityKind = Literal["email", "phone", "wechat", "external"]


class IdentityIn(Schema):
    kind: IdentityKind
    # At least one visible character: a blank value is refused by the identity service.
    value: str = Field(..., max_length=255, pattern=r"\S")
    system: str = Field("", max_length=50)
    verified: bool = False


class IdentityOut(Schema):
    kind: str
    system: str
    value: str
    verified: bool


class CustomerBase(Schema):
    kind: Literal["person", "company"] = "person"
    name: str = Field("", max_length=200)
    gender: Literal["f", "m", "o", ""] = ""
    birthday: date | None = None
    age_band: str = Field("", max_length=16)
    income_band: str = Field("", max_length=16)
    occupation: str = Field("", max_length=100)
    industry: str = Field("", max_length=100)
    country: str = Field("CN", max_length=2)
    province: str = Field("", max_length=50)
    city: str = Field("", max_length=50)
    preferred_language: Literal["zh-hans", "en", ""] = ""
    source_channel: str = Field("", max_length=50)
    external_ref: str = Field("", max_length=100)


class CustomerIn(CustomerBase):
    identities: list[IdentityIn] = Field(default_factory=list, max_length=50)


class CustomerPatch(Schema):
    kind: Literal["person", "company"] | None = None
    name: str | None = Field(None, max_length=200)
    gender: Literal["f", "m", "o", ""] | None = None
    birthday: date | None = None
    age_band: str | None = Field(None, max_length=16)
    income_band: str | None = Field(None, max_length=16)
    occupation: str | None = Field(None, max_length=100)
    industry: str | None = Field(None, max_length=100)
    country: str | None = Field(None, max_length=2)
    province: str | None = Field(None, max_length=50)
    city: str | None = Field(None, max_length=50)
    preferred_language: Literal["zh-hans", "en", ""] | None = None
    source_channel: str | None = Field(None, max_length=50)
    external_ref: str | None = Field(None, max_length=100)


def _viewer(request: HttpRequest):
    return getattr(request, "auth", None) or request.user


def _unmasked(context: dict | None) -> frozenset[str]:
    request = (context or {}).get("request")
    return get_unmasked_groups(_viewer(request)) if request is not None else frozenset()


class CustomerOut(CustomerBase):
    id: int
    # Text, not a date: without the unmasking permission the year is hidden (****-05-04).
    birthday: str | None = None
    created_at: datetime
    updated_at: datetime
    identities: list[IdentityOut]

    @staticmethod
    def resolve_birthday(obj: Customer, context) -> str | None:
        if obj.birthday is None:
            return None
        if BIRTHDAY in _unmasked(context):
            return obj.birthday.isoformat()
        return mask_birthday(obj.birthday)

    @staticmethod
    def resolve_identities(obj: Customer, context) -> list:
        groups = _unmasked(context)
        return [
            {
                "kind": i.kind,
                "system": i.system,
                "value": mask_identity_for(groups, i.kind, i.value),
                "verified": i.verified,
            }
            for i in obj.identities.all()
        ]


class CustomerFilters(Schema):
    q: str | None = Field(None, max_length=100, description="Name contains")
    kind: Literal["person", "company"] | None = None
    city: str | None = Field(None, max_length=50)
    province: str | None = Field(None, max_length=50)


class CustomerTotalsOut(Schema):
    orders: int
    revenue: Decimal
    first_purchase: datetime | None
    last_purchase: datetime | None


def _get(request: HttpRequest, customer_id: int) -> Customer:
    # A customer outside the user's scope is a 404, like one that does not exist.
    customers = scope_customers(_viewer(request), Customer.objects.prefetch_related("identities"))
    return get_object_or_404(customers, pk=customer_id)


def _shown(request: HttpRequest, customers: list[Customer]) -> None:
    """Record who saw these customers' personal data unmasked."""
    record_personal_view(_viewer(request), [c.pk for c in customers], via="api")


@router.get("", response=Page[CustomerOut], summary="List customers (newest first)")
def list_customers(
    request: HttpRequest,
    filters: Query[CustomerFilters],
    cursor: str | None = None,
    limit: int = 50,
):
    check_perm(request, "customers.view_customer")
    qs = scope_customers(_viewer(request), Customer.objects.prefetch_related("identities"))
    if filters.q:
        qs = qs.filter(name__icontains=filters.q)
    for field in ("kind", "city", "province"):
        if value := getattr(filters, field):
            # 深圳, 深圳市 and Shenzhen find the same customers: places are stored in one form.
            qs = qs.filter(**{field: normalize_place(field, value)})
    page = paginate(qs, cursor, limit)
    _shown(request, page["items"])
    return page


@router.get("/lookup", response=CustomerOut, summary="Find a customer by any identity")
def lookup_customer(request: HttpRequest, kind: IdentityKind, value: str, system: str = ""):
    check_perm(request, "customers.view_customer")
    customer = services.find_customer_by_identity(kind, value, system)
    if (
        customer is None
        or not scope_customers(_viewer(request), Customer.objects.filter(pk=customer.pk)).exists()
    ):
        raise Http404(f"no customer with {kind} {value!r}")
    _shown(request, [customer])
    return customer


@router.post("", response={201: CustomerOut}, summary="Create a customer")
def create_customer(request: HttpRequest, payload: CustomerIn):
    check_perm(request, "customers.add_customer")
    data = payload.dict()
    identities = [services.IdentityInput(**i) for i in data.pop("identities")]
    customer = services.create_customer(data, identities, by=_viewer(request), source="api")
    claim_customer(_viewer(request), customer.pk)
    customer = _get(request, customer.pk)
    _shown(request, [customer])
    return Status(201, customer)


@router.get("/{int:customer_id}", response=CustomerOut, summary="Read a customer")
def get_customer(request: HttpRequest, customer_id: ObjectId):
    check_perm(request, "customers.view_customer")
    customer = _get(request, customer_id)
    _shown(request, [customer])
    return customer


@router.get(
    "/{int:customer_id}/totals", response=CustomerTotalsOut, summary="Orders and revenue totals"
)
def get_customer_totals(request: HttpRequest, customer_id: ObjectId):
    check_perm(request, "customers.view_customer")
    return get_purchase_totals(_get(request, customer_id)).__dict__


@router.patch("/{int:customer_id}", response=CustomerOut, summary="Change a customer")
def update_customer(request: HttpRequest, customer_id: ObjectId, payload: CustomerPatch):
    check_perm(request, "customers.change_customer")
    customer = _get(request, customer_id)
    services.update_customer(
        customer, payload.dict(exclude_unset=True), by=_viewer(request), source="api"
    )
    customer = _get(request, customer_id)
    _shown(request, [customer])
    return customer


@router.post(
    "/{int:customer_id}/identities",
    response={201: IdentityOut},
    summary="Add an identity to a customer",
)
def add_identity(request: HttpRequest, customer_id: ObjectId, payload: IdentityIn):
    check_perm(request, "customers.change_customer")
    customer = _get(request, customer_id)
    identity = services.add_identity(
        customer, services.IdentityInput(**payload.dict()), by=_viewer(request)
    )
    value = mask_identity_for(get_unmasked_groups(_viewer(request)), identity.kind, identity.value)
    return Status(201, {**IdentityOut.from_orm(identity).dict(), "value": value})


@router.delete("/{int:customer_id}", response={204: None}, summary="Delete a customer")
def delete_customer(request: HttpRequest, customer_id: ObjectId):
    check_perm(request, "customers.delete_customer")
    services.delete_customer(_get(request, customer_id), by=_viewer(request))
    return Status(204, None)
