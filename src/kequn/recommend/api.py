"""REST endpoints for recommendations: stored rows, per customer (with fallback), also bought."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Schema

from kequn.apiutils import ObjectId, Page, check_perm, paginate
from kequn.commerce.models import Product
from kequn.customers.models import Customer
from kequn.recommend import selectors
from kequn.recommend.models import Recommendation
from kequn.security.permissions import scope_customers

router = Router(tags=["recommendations"])


class RecommendationOut(Schema):
    id: int
    customer_id: int
    product_id: int
    rank: int
    score: float
    source: str
    created_at: datetime


class ProductPick(Schema):
    rank: int
    product_id: int
    sku: str
    name: str
    category: str
    price: str
    score: float
    source: str


def _user(request: HttpRequest):
    return getattr(request, "auth", None) or request.user


@router.get("", response=Page[RecommendationOut], summary="Stored recommendations")
def list_recommendations(
    request: HttpRequest,
    customer_id: ObjectId | None = None,
    cursor: str | None = None,
    limit: int = 50,
):
    check_perm(request, "recommend.view_recommendation")
    qs = scope_customers(_user(request), Recommendation.objects.all(), "customer")
    if customer_id is not None:
        qs = qs.filter(customer_id=customer_id)
    return paginate(qs, cursor, limit)


@router.get("/{int:recommendation_id}", response=RecommendationOut, summary="One stored row")
def get_recommendation(request: HttpRequest, recommendation_id: ObjectId):
    check_perm(request, "recommend.view_recommendation")
    rows = scope_customers(_user(request), Recommendation.objects.all(), "customer")
    return get_object_or_404(rows, pk=recommendation_id)


@router.get(
    "/customers/{int:customer_id}",
    response=list[ProductPick],
    summary="Top products for a customer (popular in segment or city for new customers)",
)
def recommend_for_customer(request: HttpRequest, customer_id: ObjectId, n: int = 10):
    check_perm(request, "recommend.view_recommendation")
    get_object_or_404(scope_customers(_user(request), Customer.objects.all()), pk=customer_id)
    return selectors.get_recommendations_for_customer(customer_id, max(1, min(n, 50)))


@router.get(
    "/products/{int:product_id}/also-bought",
    response=list[ProductPick],
    summary="Customers who bought this also bought",
)
def also_bought(request: HttpRequest, product_id: ObjectId, n: int = 10):
    check_perm(request, "recommend.view_recommendation")
    get_object_or_404(Product, pk=product_id)
    return selectors.get_also_bought(product_id, max(1, min(n, 50)))
