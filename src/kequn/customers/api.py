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
from kequn.customers.models import Customer

router = Router(tags=["customers"])

IdentityKind = Literal["email", "phone", "wechat", "external"]


class IdentityIn(Schema):
    kind: IdentityKind
    value: str = Field(..., max_length=255)
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


class CustomerOut(CustomerBase):
    id: int
    created_at: datetime
    updated_at: datetime
    identities: list[IdentityOut]

    @staticmethod
    def resolve_identities(obj: Customer) -> list:
        return list(obj.identities.all())


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


def _get(customer_id: int) -> Customer:
    return get_object_or_404(Customer.objects.prefetch_related("identities"), pk=customer_id)


@router.get("", response=Page[CustomerOut], summary="List customers (newest first)")
def list_customers(
    request: HttpRequest,
    filters: Query[CustomerFilters],
    cursor: str | None = None,
    limit: int = 50,
):
    check_perm(request, "customers.view_customer")
    qs = Customer.objects.prefetch_related("identities")
    if filters.q:
        qs = qs.filter(name__icontains=filters.q)
    for field in ("kind", "city", "province"):
        if value := getattr(filters, field):
            qs = qs.filter(**{field: value})
    return paginate(qs, cursor, limit)


@router.get("/lookup", response=CustomerOut, summary="Find a customer by any identity")
def lookup_customer(request: HttpRequest, kind: IdentityKind, value: str, system: str = ""):
    check_perm(request, "customers.view_customer")
    customer = services.find_customer_by_identity(kind, value, system)
    if customer is None:
        raise Http404(f"no customer with {kind} {value!r}")
    return customer


@router.post("", response={201: CustomerOut}, summary="Create a customer")
def create_customer(request: HttpRequest, payload: CustomerIn):
    check_perm(request, "customers.add_customer")
    data = payload.dict()
    identities = [services.IdentityInput(**i) for i in data.pop("identities")]
    customer = services.create_customer(data, identities, by=request.auth)
    return Status(201, _get(customer.pk))


@router.get("/{int:customer_id}", response=CustomerOut, summary="Read a customer")
def get_customer(request: HttpRequest, customer_id: ObjectId):
    check_perm(request, "customers.view_customer")
    return _get(customer_id)


@router.get(
    "/{int:customer_id}/totals", response=CustomerTotalsOut, summary="Orders and revenue totals"
)
def get_customer_totals(request: HttpRequest, customer_id: ObjectId):
    check_perm(request, "customers.view_customer")
    return services.get_customer_totals(_get(customer_id)).__dict__


@router.patch("/{int:customer_id}", response=CustomerOut, summary="Change a customer")
def update_customer(request: HttpRequest, customer_id: ObjectId, payload: CustomerPatch):
    check_perm(request, "customers.change_customer")
    customer = _get(customer_id)
    services.update_customer(customer, payload.dict(exclude_unset=True), by=request.auth)
    return _get(customer_id)


@router.post(
    "/{int:customer_id}/identities",
    response={201: IdentityOut},
    summary="Add an identity to a customer",
)
def add_identity(request: HttpRequest, customer_id: ObjectId, payload: IdentityIn):
    check_perm(request, "customers.change_customer")
    customer = _get(customer_id)
    return Status(201, services.add_identity(customer, services.IdentityInput(**payload.dict())))


@router.delete("/{int:customer_id}", response={204: None}, summary="Delete a customer")
def delete_customer(request: HttpRequest, customer_id: ObjectId):
    check_perm(request, "customers.delete_customer")
    services.delete_customer(_get(customer_id), by=request.auth)
    return Status(204, None)
