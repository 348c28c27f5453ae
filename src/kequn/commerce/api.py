"""REST endpoints for orders and products (read)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db.models import Q
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema

from kequn.apiutils import BoundedDateTime, ObjectId, Page, check_perm, paginate
from kequn.commerce.models import Order, Product
from kequn.security.permissions import scope_customers

orders_router = Router(tags=["orders"])
products_router = Router(tags=["products"])


class ProductOut(Schema):
    id: int
    sku: str
    name: str
    brand: str
    category: str | None
    category_path: list[str]
    price: Decimal
    currency: str
    is_consumable: bool
    is_active: bool

    @staticmethod
    def resolve_category(obj: Product) -> str | None:
        return obj.category.code if obj.category_id else None

    @staticmethod
    def resolve_category_path(obj: Product) -> list[str]:
        return [c.name for c in obj.category.get_path()] if obj.category_id else []


class OrderLineOut(Schema):
    product_id: int
    sku: str
    quantity: int
    unit_price: Decimal
    amount: Decimal

    @staticmethod
    def resolve_sku(obj) -> str:
        return obj.product.sku


class OrderOut(Schema):
    id: int
    number: str
    customer_id: int | None
    channel: str | None
    status: str
    currency: str
    total_amount: Decimal
    discount_amount: Decimal
    ordered_at: datetime
    lines: list[OrderLineOut]

    @staticmethod
    def resolve_channel(obj: Order) -> str | None:
        return obj.channel.code if obj.channel_id else None

    @staticmethod
    def resolve_lines(obj: Order) -> list:
        return list(obj.lines.all())


class OrderFilters(Schema):
    customer_id: ObjectId | None = None
    status: Order.Status | None = None
    channel: str | None = Field(None, max_length=50)
    since: BoundedDateTime | None = None
    until: BoundedDateTime | None = None


class ProductFilters(Schema):
    q: str | None = Field(None, max_length=100, description="Name or SKU contains")
    category: str | None = Field(None, max_length=50, description="Category code (or its parent)")


def _orders(request: HttpRequest):
    """Orders of the customers the user may see (another rep's order is a 404)."""
    orders = Order.objects.select_related("channel").prefetch_related("lines__product")
    return scope_customers(getattr(request, "auth", None) or request.user, orders, "customer")


@orders_router.get("", response=Page[OrderOut], summary="List orders (newest first)")
def list_orders(
    request: HttpRequest, filters: Query[OrderFilters], cursor: str | None = None, limit: int = 50
):
    check_perm(request, "commerce.view_order")
    qs = _orders(request)
    if filters.customer_id:
        qs = qs.filter(customer_id=filters.customer_id)
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.channel:
        qs = qs.filter(channel__code=filters.channel)
    if filters.since:
        qs = qs.filter(ordered_at__gte=filters.since)
    if filters.until:
        qs = qs.filter(ordered_at__lt=filters.until)
    return paginate(qs, cursor, limit)


@orders_router.get("/{int:order_id}", response=OrderOut, summary="Read an order")
def get_order(request: HttpRequest, order_id: ObjectId):
    check_perm(request, "commerce.view_order")
    return get_object_or_404(_orders(request), pk=order_id)


@products_router.get("", response=Page[ProductOut], summary="List products")
def list_products(
    request: HttpRequest,
    filters: Query[ProductFilters],
    cursor: str | None = None,
    limit: int = 50,
):
    check_perm(request, "commerce.view_product")
    qs = Product.objects.select_related("category__parent__parent")
    if filters.q:
        qs = qs.filter(Q(name__icontains=filters.q) | Q(sku__icontains=filters.q))
    if filters.category:
        qs = qs.filter(
            Q(category__code=filters.category) | Q(category__parent__code=filters.category)
        )
    return paginate(qs, cursor, limit)


@products_router.get("/{int:product_id}", response=ProductOut, summary="Read a product")
def get_product(request: HttpRequest, product_id: ObjectId):
    check_perm(request, "commerce.view_product")
    return get_object_or_404(Product.objects.select_related("category__parent"), pk=product_id)
