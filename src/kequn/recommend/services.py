"""Train and store recommendations; read them for the API and the customer 360 page."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from kequn.commerce.models import Order, OrderLine, Product
from kequn.recommend import algorithms as algo
from kequn.recommend.models import AlsoBought, Recommendation, TrainingRun
from kequn.recommend.selectors import MAX_PER_CATEGORY
from kequn.security.actors import Actor
from kequn.security.audit.services import record_event

STORE_N = 20
ALSO_BOUGHT_N = 10


@dataclass(frozen=True)
class TrainResult:
    model: str
    customers: int
    interactions: int
    seconds: float
    validation: dict


def load_interactions() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (customer ids, product ids, unix times) of every purchased order line."""
    rows = OrderLine.objects.filter(
        order__status__in=Order.PURCHASE_STATUSES,
        order__customer__isnull=False,
        order__customer__processing_restricted=False,  # restricted on a data-subject request
    ).values_list("order__customer_id", "product_id", "order__ordered_at")
    users, items, times = [], [], []
    for customer_id, product_id, ordered_at in rows.iterator(chunk_size=20000):
        users.append(customer_id)
        items.append(product_id)
        times.append(ordered_at.timestamp())
    return (
        np.asarray(users, dtype=np.int64),
        np.asarray(items, dtype=np.int64),
        np.asarray(times, dtype=np.float64),
    )


def load_catalogue(item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return category ids, consumable flags and on-sale flags aligned with item_ids."""
    info = {
        pk: (cat or 0, cons, active)
        for pk, cat, cons, active in Product.objects.filter(pk__in=item_ids.tolist()).values_list(
            "pk", "category_id", "is_consumable", "is_active"
        )
    }
    rows = [info.get(int(i), (0, False, False)) for i in item_ids]
    return (
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[1] for r in rows], dtype=bool),
        np.array([r[2] for r in rows], dtype=bool),
    )


def recommend_for_rows(
    model,
    matrix,
    rows: np.ndarray,
    categories: np.ndarray,
    consumable: np.ndarray,
    on_sale: np.ndarray,
    n: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Return top-n item columns and scores for user rows: no bought durables, diverse."""
    bought = (matrix[rows] > 0).astype(np.int8)
    # Consumables may be bought again; durables and items off sale are never re-offered.
    durable = sp.diags((~consumable).astype(np.int8), dtype=np.int8)
    exclude = (bought @ durable).tocsr()
    off_sale = np.flatnonzero(~on_sale)
    if len(off_sale):
        block = sp.csr_matrix(
            (
                np.ones(len(rows) * len(off_sale), dtype=np.int8),
                (np.repeat(np.arange(len(rows)), len(off_sale)), np.tile(off_sale, len(rows))),
            ),
            shape=exclude.shape,
        )
        exclude = (exclude + block).tocsr()
    return algo.top_n(
        model.score(matrix, rows), n, exclude, categories, max_per_category=MAX_PER_CATEGORY
    )


def train_recommendations(*, n: int = STORE_N, progress: bool = False, by: Actor) -> TrainResult:
    """Choose a model on held-out time, fit it on all purchases and store top-n per customer."""
    started = time.perf_counter()
    run = TrainingRun.objects.create()
    users, items, times = load_interactions()
    if len(users) == 0:
        with transaction.atomic():
            run.message = "no purchases yet: new customers get the fallback (popular products)"
            run.finished_at = timezone.now()
            run.save()
            _record_training(run, by)
        return TrainResult("fallback", 0, 0, time.perf_counter() - started, {})
    choice, data, model = algo.train_model(users, items, times)
    categories, consumable, on_sale = load_catalogue(data.item_ids)
    now = timezone.now()
    batches = algo.iter_batches(len(data.user_ids), 2048)
    if progress:
        batches = tqdm(list(batches), desc="recommend", unit="batch")
    with transaction.atomic():
        Recommendation.objects.all().delete()
        for rows in batches:
            cols, scores = recommend_for_rows(
                model, data.matrix, rows, categories, consumable, on_sale, n
            )
            objs = [
                Recommendation(
                    customer_id=int(data.user_ids[r]),
                    product_id=int(data.item_ids[c]),
                    rank=rank + 1,
                    score=float(s),
                    source=choice.name,
                    created_at=now,
                )
                for r, row_cols, row_scores in zip(rows, cols, scores, strict=True)
                for rank, (c, s) in enumerate(zip(row_cols, row_scores, strict=True))
                if np.isfinite(s)
            ]
            Recommendation.objects.bulk_create(objs, batch_size=5000)
        _store_also_bought(data, _item_similarity(model))
        run.model, run.customers, run.interactions = choice.name, len(data.user_ids), len(users)
        run.metrics = choice.validation
        run.finished_at = timezone.now()
        run.save()
        _record_training(run, by)
    return TrainResult(
        choice.name,
        len(data.user_ids),
        len(users),
        time.perf_counter() - started,
        choice.validation,
    )


def _record_training(run: TrainingRun, by: Actor) -> None:
    """Write the audit entry of a training run (inside the transaction that stores it)."""
    record_event(
        "recommend.train",
        actor=by,
        target=run,
        detail={"model": run.model, "customers": run.customers, "interactions": run.interactions},
    )


def _item_similarity(model: object) -> sp.csr_matrix | None:
    """Return the item-neighbour similarity the model already fitted, if it has one."""
    parts = model.parts if isinstance(model, algo.Hybrid) else [model]
    for part, weight in zip(parts, getattr(model, "weights", [1.0]), strict=True):
        if isinstance(part, algo.ItemKNN) and weight:
            return part.similarity
    return None


def _store_also_bought(
    data: algo.Dataset, similarity: sp.csr_matrix | None = None, n: int = ALSO_BOUGHT_N
) -> int:
    """Store "customers also bought" per product from item-neighbour similarity.

    The similarity of a fitted item-neighbour model is reused when given: its top n per
    product are the neighbours a fit keeping n would find.
    """
    if similarity is None:
        similarity = algo.ItemKNN(k=n).fit(data.matrix).similarity
    sim = algo.keep_top_per_row(similarity, n).tocsr()
    AlsoBought.objects.all().delete()
    objs = []
    for r in range(sim.shape[0]):
        start, end = sim.indptr[r], sim.indptr[r + 1]
        order = np.argsort(-sim.data[start:end])
        for rank, j in enumerate(order, start=1):
            objs.append(
                AlsoBought(
                    product_id=int(data.item_ids[r]),
                    other_id=int(data.item_ids[sim.indices[start + j]]),
                    rank=rank,
                    score=float(sim.data[start + j]),
                )
            )
    AlsoBought.objects.bulk_create(objs, batch_size=5000)
    return len(objs)
