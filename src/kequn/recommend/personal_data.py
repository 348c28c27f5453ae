"""The recommend app's personal data: the person's ranked products (dropped on restriction)."""

from __future__ import annotations

from kequn.recommend.models import Recommendation
from kequn.security.personal_data import register

register(
    Recommendation,
    path="customer",
    export_as="recommendations",
    position=150,
    fields=[
        "customer_id",
        "rank",
        "product_id",
        "product__sku",
        "product__name",
        "score",
        "source",
        "created_at",
    ],
    order_by=["rank"],
    derived=True,
)
