"""Load per-customer behaviour features from the store and store the personas found."""

from __future__ import annotations

import pandas as pd
from django.db.models import Count, Max, Sum
from django.utils import timezone

from kequn.commerce.models import Order, OrderLine
from kequn.customers.models import Customer
from kequn.security.actors import Actor
from kequn.segments.models import Persona
from kequn.segments.personas import find_personas
from kequn.segments.services import store_personas


def load_persona_features() -> pd.DataFrame:
    """Return one row per customer with purchases: behaviour, age, city, top category."""
    rows = (
        Customer.objects.filter(
            merged_into__isnull=True, orders__status__in=Order.PURCHASE_STATUSES
        )
        .values("id", "city", "birth_year")
        .annotate(
            n_orders=Count("orders"),
            total=Sum("orders__total_amount"),
            last=Max("orders__ordered_at"),
        )
    )
    frame = pd.DataFrame.from_records(list(rows.iterator(chunk_size=20000)))
    if frame.empty:
        return frame
    frame = frame.rename(columns={"n_orders": "orders", "total": "spend"})
    now = timezone.now()
    today = timezone.localdate()
    frame["spend"] = frame["spend"].astype(float)
    frame["avg_order_value"] = frame["spend"] / frame["orders"]
    frame["recency_days"] = (now - pd.to_datetime(frame["last"], utc=True)).dt.days.astype(float)
    frame["age"] = today.year - frame["birth_year"].astype(float)
    lines = (
        OrderLine.objects.filter(
            order__status__in=Order.PURCHASE_STATUSES, order__customer__isnull=False
        )
        .values("order__customer_id", "product__category__name")
        .annotate(n=Count("id"))
    )
    cats = pd.DataFrame.from_records(list(lines.iterator(chunk_size=20000)))
    if not cats.empty:
        top = cats.sort_values("n", ascending=False).drop_duplicates("order__customer_id")
        frame = frame.merge(
            top.rename(
                columns={"order__customer_id": "id", "product__category__name": "top_category"}
            )[["id", "top_category"]],
            on="id",
            how="left",
        )
    return frame.drop(columns=["birth_year", "last"]).sort_values("id").reset_index(drop=True)


def discover_personas(k: int | None = None, *, by: Actor) -> list[Persona]:
    """Cluster the customers with purchases and store the described personas."""
    features = load_persona_features()
    if len(features) < 10:
        return []
    result = find_personas(features, k=k)
    return store_personas(result, features["id"].astype(int).tolist(), by=by)
