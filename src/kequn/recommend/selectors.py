"""Read recommendations for the profile page and the API: stored ones, else popular products.

Kept apart from services.py (training), so that reading them loads no NumPy/SciPy model code.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.db.models import Count
from django.utils import timezone

from kequn.commerce.models import Order, OrderLine, Product
from kequn.customers.models import Customer
from kequn.recommend.models import AlsoBought, Recommendation

MAX_PER_CATEGORY = 3
# Fallback for customers without stored recommendations: products bought in the last
# FALLBACK_DAYS days, among the customer's segment, else city (if MIN_CITY_BUYERS bought there).
FALLBACK_DAYS = 180
MIN_CITY_BUYERS = 5
# Popularity lists are kept this deep, so that a customer's own purchases can be left out of
# a stored list and still leave enough to choose from.
POPULAR_DEPTH = 100
POPULAR_SECONDS = 3600


def rank_popular_products(customer_filter: dict[str, Any]) -> list[dict]:
    """Return the products most bought lately by the customers matching the filter, best first."""
    since = timezone.now() - timedelta(days=FALLBACK_DAYS)
    rows = (
        OrderLine.objects.filter(
            order__status__in=Order.PURCHASE_STATUSES,
            order__ordered_at__gte=since,
            product__is_active=True,
            **customer_filter,
        )
        .values("product_id")
        .annotate(buyers=Count("order__customer", distinct=True))
        .order_by("-buyers", "product_id")[:POPULAR_DEPTH]
    )
    return [{"product_id": r["product_id"], "score": float(r["buyers"])} for r in rows]


def get_popular_products(customer_filter: dict[str, Any]) -> list[dict]:
    """Return rank_popular_products(customer_filter), stored for an hour."""
    # The same lists for every customer of a segment or city, and each one scans months of
    # order lines (seconds at ten million orders): once an hour, not on every profile view.
    key = (
        "kequn:recommend:popular:"
        + hashlib.sha256(repr(sorted(customer_filter.items())).encode()).hexdigest()
    )
    ranked = cache.get_or_set(key, lambda: rank_popular_products(customer_filter), POPULAR_SECONDS)
    return ranked if ranked is not None else rank_popular_products(customer_filter)


def _popular_products(customer_filter: dict, exclude_ids: set[int], n: int) -> list[dict]:
    ranked = get_popular_products(customer_filter)
    return [p for p in ranked if p["product_id"] not in exclude_ids][: n * 3]


def count_city_buyers(city: str) -> int:
    """Return how many customers of a city ever ordered, stored for an hour."""
    key = "kequn:recommend:city-buyers:" + hashlib.sha256(city.encode()).hexdigest()

    def count() -> int:
        return Order.objects.filter(customer__city=city).values("customer").distinct().count()

    buyers = cache.get_or_set(key, count, POPULAR_SECONDS)
    return buyers if buyers is not None else count()


def get_recommendations_for_customer(customer_id: int, n: int = 10) -> list[dict]:
    """Return up to n recommendations: stored ones, else popular in the customer's segment or city."""
    stored = list(
        Recommendation.objects.filter(customer_id=customer_id)
        .select_related("product", "product__category")
        .order_by("rank")[:n]
    )
    if stored:
        return [_describe(r.product, r.score, r.rank, r.source) for r in stored]
    customer = Customer.objects.filter(pk=customer_id).only("city", "processing_restricted").first()
    if customer is None or customer.processing_restricted:
        return []
    bought = set(
        OrderLine.objects.filter(
            order__customer_id=customer_id, product__is_consumable=False
        ).values_list("product_id", flat=True)
    )
    picks: list[dict] = []
    source = "popular_global"
    segment_ids = list(
        customer.segment_memberships.order_by("segment__member_count").values_list(
            "segment_id", flat=True
        )[:1]
    )
    if segment_ids:
        picks = _popular_products(
            {"order__customer__segment_memberships__segment_id": segment_ids[0]}, bought, n
        )
        source = "popular_in_segment"
    city = customer.city
    if len(picks) < n and city and count_city_buyers(city) >= MIN_CITY_BUYERS:
        picks += _popular_products({"order__customer__city": city}, bought, n)
        source = source if segment_ids and picks else "popular_in_city"
    if len(picks) < n:
        picks += _popular_products({}, bought, n)
    products = Product.objects.select_related("category").in_bulk([p["product_id"] for p in picks])
    out: list[dict] = []
    seen: set[int] = set()
    per_category: dict[int | None, int] = {}
    for p in picks:
        product = products[p["product_id"]]
        cat = product.category_id
        if product.pk in seen or per_category.get(cat, 0) >= MAX_PER_CATEGORY:
            continue
        seen.add(product.pk)
        per_category[cat] = per_category.get(cat, 0) + 1
        out.append(_describe(product, p["score"], len(out) + 1, source))
        if len(out) >= n:
            break
    return out


def _describe(product: Product, score: float, rank: int, source: str) -> dict:
    return {
        "rank": rank,
        "product_id": product.pk,
        "sku": product.sku,
        "name": product.name,
        "category": product.category.name if product.category is not None else "",
        "price": str(product.price),
        "score": round(float(score), 4),
        "source": source,
    }


def get_also_bought(product_id: int, n: int = 10) -> list[dict]:
    """Return the products most often bought by the buyers of a product."""
    rows = (
        AlsoBought.objects.filter(product_id=product_id)
        .select_related("other", "other__category")
        .order_by("rank")[:n]
    )
    return [_describe(r.other, r.score, r.rank, "also_bought") for r in rows]
