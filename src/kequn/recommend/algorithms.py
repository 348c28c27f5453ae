"""Recommendation models and offline evaluation on scipy.sparse (no Django imports).

Interactions are (user, item, time[, weight]) arrays. Models score items for a batch of users;
evaluation splits each user's history by time (first 80% train, last 20% test) and measures
precision@k, recall@k and NDCG@k on items the user had not met in training.
"""

from __future__ import annotations

import itertools
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

BATCH_USERS = 4096
MAX_FACTORS = 64
# The choice between candidates is made on the histories of at most this many randomly drawn
# users, so its cost stops growing with the data (at 10M interactions only the refit on every
# interaction does); benchmarks/recommend_train.py --compare-before checks that the model
# chosen on the sample scores as well on held-out time as the one chosen on every user.
CHOOSE_USERS = 50_000
DENSE_ITEMS = 8000  # item-item similarity as a dense array up to 8000² float32 (256 MB)


@dataclass
class Dataset:
    """A user × item matrix with the original ids of its rows and columns."""

    matrix: sp.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray


def build_matrix(
    users: np.ndarray,
    items: np.ndarray,
    weights: np.ndarray | None = None,
    user_ids: np.ndarray | None = None,
    item_ids: np.ndarray | None = None,
) -> Dataset:
    """Return the summed user × item matrix of interactions (ids mapped to rows/columns)."""
    user_ids, u = _codes(users, user_ids)
    item_ids, i = _codes(items, item_ids)
    n_users, n_items = len(user_ids), len(item_ids)
    # One sort of (row, column) keys gives the canonical CSR layout with duplicates summed;
    # scipy's COO route sorts the same data twice and keeps a copy of every duplicate.
    key = u.astype(np.int64) * n_items + i
    if weights is None:
        keys, data = np.unique(key, return_counts=True)
    else:
        keys, inverse = np.unique(key, return_inverse=True)
        data = np.bincount(inverse, weights=weights, minlength=len(keys))
    rows, cols = np.divmod(keys, n_items)
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_users), out=indptr[1:])
    index_type = np.int32 if max(len(keys), n_items) < 2**31 else np.int64
    matrix = sp.csr_matrix(
        (data.astype(np.float32), cols.astype(index_type), indptr.astype(index_type)),
        shape=(n_users, n_items),
    )
    return Dataset(matrix, user_ids, item_ids)


def _codes(values: np.ndarray, ids: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    if ids is not None:
        return ids, np.searchsorted(ids, values)
    # Hashing then sorting the few distinct ids beats np.unique's sort of every value.
    codes, uniques = pd.factorize(values, sort=True)
    return np.asarray(uniques), codes


def split_by_time(users: np.ndarray, times: np.ndarray, test_fraction: float = 0.2) -> np.ndarray:
    """Return a boolean mask of test rows: the last `test_fraction` of each user's history.

    Users with a single interaction keep it in training.
    """
    order = np.lexsort((times, users))
    sorted_users = users[order]
    starts = np.r_[0, np.flatnonzero(sorted_users[1:] != sorted_users[:-1]) + 1]
    counts = np.diff(np.r_[starts, len(users)])
    position = np.arange(len(users)) - np.repeat(starts, counts)
    n_test = np.floor(counts * test_fraction + 1e-9).astype(np.int64)
    n_test = np.where((counts >= 2) & (n_test == 0), 1, n_test)
    is_test_sorted = position >= np.repeat(counts - n_test, counts)
    mask = np.zeros(len(users), dtype=bool)
    mask[order] = is_test_sorted
    return mask


# --- models ------------------------------------------------------------------------------


class Popularity:
    name = "popularity"

    def fit(self, matrix: sp.csr_matrix) -> Popularity:
        self.scores = np.asarray((matrix > 0).sum(axis=0)).ravel().astype(np.float32)
        return self

    def score(self, matrix: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
        return np.tile(self.scores, (len(rows), 1))


class ItemKNN:
    """Item-based neighbours: cosine similarity of item columns, top `k` neighbours kept.

    ``weighting`` scales each user's row before the similarity: "none" (plain cosine),
    "tfidf" (inverse user frequency: log(items / the user's items), so a customer who
    bought everything says little about which items go together) or "bm25" (the Okapi
    length normalisation of the same idea, K1 = 1.2, B = 0.75). ``shrink`` is added to
    the denominator, pulling similarities resting on few co-buyers toward 0.
    """

    name = "item_knn"

    def __init__(self, k: int = 100, shrink: float = 10.0, weighting: str = "none"):
        if weighting not in KNN_WEIGHTINGS:
            raise ValueError(f"unknown weighting {weighting!r}; use one of {KNN_WEIGHTINGS}")
        self.k, self.shrink, self.weighting = k, shrink, weighting

    def fit(self, matrix: sp.csr_matrix) -> ItemKNN:
        binary = (matrix > 0).astype(np.float32).tocsr()
        if self.weighting != "none":
            binary = sp.diags(weight_users(binary, self.weighting)) @ binary
        norms = np.sqrt(np.asarray(binary.multiply(binary).sum(axis=0)).ravel())
        co = binary.T.tocsr() @ binary  # item × item co-occurrence (weighted)
        if co.shape[0] <= DENSE_ITEMS:
            # A few thousand items: the similarity fits in memory as one array and the top k
            # per row is one argpartition, instead of a COO round trip and a loop over rows.
            sim = co.toarray()
            denominator = np.outer(norms, norms) + self.shrink
            denominator[denominator == 0] = 1  # an item nobody bought: similarity 0, not nan
            sim /= denominator
            np.fill_diagonal(sim, 0)
            self.similarity = top_k_dense(sim, self.k)
            return self
        co.setdiag(0)
        co.eliminate_zeros()
        co = co.tocoo()
        rows, cols = co.row, co.col
        values = co.data / np.maximum(norms[rows] * norms[cols] + self.shrink, 1e-12)
        sim = sp.csr_matrix((values.astype(np.float32), (rows, cols)), shape=co.shape)
        self.similarity = keep_top_per_row(sim, self.k)
        return self

    def score(self, matrix: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
        user = (matrix[rows] > 0).astype(np.float32)
        # similarity rows are "neighbours of item i"; a user scores j by summing sim(i, j).
        return np.asarray((user @ self.similarity).todense())


KNN_WEIGHTINGS = ("none", "tfidf", "bm25")


def weight_users(
    binary: sp.csr_matrix, weighting: str, k1: float = 1.2, b: float = 0.75
) -> np.ndarray:
    """Return each user's row weight under "tfidf" or "bm25" (see ItemKNN)."""
    lengths = np.diff(binary.indptr).astype(np.float64)
    n_items = binary.shape[1]
    if weighting == "tfidf":
        return np.asarray(np.log((n_items + 1) / (lengths + 1)), dtype=np.float32)
    average = lengths[lengths > 0].mean() if (lengths > 0).any() else 1.0
    return np.asarray((k1 + 1) / (1 + k1 * (1 - b + b * lengths / average)), dtype=np.float32)


class EASE:
    """Embarrassingly shallow autoencoder (Steck 2019): a closed-form item-item model.

    B = I - P diag(1/diag(P)) with P = (XᵀX + λI)⁻¹; a user scores items by X_u B. It needs
    the dense item × item inverse, so it is offered up to EASE_MAX_ITEMS items.
    """

    name = "ease"

    def __init__(self, regularization: float = 200.0):
        self.regularization = regularization

    def fit(self, matrix: sp.csr_matrix) -> EASE:
        binary = (matrix > 0).astype(np.float64)
        gram = (binary.T @ binary).toarray()
        gram[np.diag_indices_from(gram)] += self.regularization
        with threadpool_limits(1, "blas"):
            precision = np.linalg.inv(gram)
        weights = precision / (-np.diag(precision))
        np.fill_diagonal(weights, 0.0)
        self.weights = weights.astype(np.float32)
        return self

    def score(self, matrix: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
        user = (matrix[rows] > 0).astype(np.float32)
        return np.asarray(user @ self.weights)


EASE_MAX_ITEMS = 4000


class ALS:
    """Implicit-feedback matrix factorisation (implicit's AlternatingLeastSquares)."""

    name = "als"

    def __init__(
        self,
        factors: int | None = None,
        regularization: float = 10.0,
        alpha: float = 5.0,
        # 8 sweeps score the same NDCG@10 as 15 (within 0.001 on the demo shop and on planted
        # synthetic tastes) in half the time.
        iterations: int = 8,
        seed: int = 42,
        start: np.ndarray | None = None,
    ):
        self.factors, self.regularization = factors, regularization
        self.alpha, self.iterations, self.seed = alpha, iterations, seed
        # Item factors to start from instead of random ones (see warm_start).
        self.start = start

    def fit(self, matrix: sp.csr_matrix) -> ALS:
        """Factorise the log-scaled interaction counts."""
        from implicit.cpu.als import AlternatingLeastSquares  # noqa: PLC0415 -- heavy, used on training only

        confidence = matrix.copy()
        confidence.data = np.log1p(confidence.data).astype(np.float32)
        factors = self.factors or choose_factors(matrix.shape[1])
        # implicit parallelises itself; BLAS threads would fight it (hence the limit), and it
        # warns about the BLAS pool even when limited for the call.
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            model = AlternatingLeastSquares(
                factors=factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.seed,
            )
            if self.start is not None and self.start.shape == (matrix.shape[1], factors):
                model.item_factors = np.ascontiguousarray(self.start, dtype=np.float32)
            model.fit(confidence.tocsr(), show_progress=False)
        self.user_factors = np.asarray(model.user_factors)
        self.item_factors = np.asarray(model.item_factors)
        return self

    def score(self, matrix: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
        return self.user_factors[rows] @ self.item_factors.T


def choose_factors(n_items: int) -> int:
    """Return the ALS rank for a catalogue: one factor per 16 items, from 8 to MAX_FACTORS."""
    # A small catalogue cannot support many factors: on the demo shop's 137 products, 8
    # factors beat 16, 32 and 64 on validation NDCG (the larger ranks overfit).
    return int(np.clip(n_items // 16, 8, MAX_FACTORS))


@dataclass
class Hybrid:
    """A weighted sum of per-user max-normalised scores of other models."""

    parts: list
    weights: list[float]
    name: str = "hybrid"
    fitted: bool = field(default=False)

    def fit(self, matrix: sp.csr_matrix) -> Hybrid:
        if not self.fitted:
            for part, weight in zip(self.parts, self.weights, strict=True):
                if weight:  # a part with no weight never scores: do not pay for its fit
                    part.fit(matrix)
        self.fitted = True
        return self

    def score(self, matrix: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
        total = np.zeros((len(rows), matrix.shape[1]), dtype=np.float32)
        for part, weight in zip(self.parts, self.weights, strict=True):
            if weight:
                total += weight * normalise_rows(part.score(matrix, rows))
        return total


def normalise_rows(scores: np.ndarray) -> np.ndarray:
    """Scale each row to [0, 1] by its minimum and maximum."""
    low = scores.min(axis=1, keepdims=True)
    span = scores.max(axis=1, keepdims=True) - low
    return ((scores - low) / np.where(span > 0, span, 1)).astype(np.float32)


def top_k_dense(matrix: np.ndarray, k: int) -> sp.csr_matrix:
    """Return the k largest positive values of each row of a dense array as a CSR matrix."""
    n_rows, n_cols = matrix.shape
    if k < n_cols:
        cols = np.argpartition(-matrix, k - 1, axis=1)[:, :k]
    else:
        cols = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols))
    values = np.take_along_axis(matrix, cols, axis=1)
    keep = values > 0
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(keep.sum(axis=1), out=indptr[1:])
    out = sp.csr_matrix((values[keep].astype(np.float32), cols[keep], indptr), shape=matrix.shape)
    out.sort_indices()
    return out


def keep_top_per_row(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Return the matrix with only the k largest values of each row."""
    matrix = matrix.tocsr()
    counts = np.diff(matrix.indptr)
    if counts.max(initial=0) <= k:
        return matrix
    rows, cols, vals = [], [], []
    for r in np.flatnonzero(counts):
        start, end = matrix.indptr[r], matrix.indptr[r + 1]
        data = matrix.data[start:end]
        keep = np.argpartition(-data, k - 1)[:k] if len(data) > k else np.arange(len(data))
        rows.append(np.full(len(keep), r))
        cols.append(matrix.indices[start:end][keep])
        vals.append(data[keep])
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=matrix.shape
    )


# --- ranking --------------------------------------------------------------------------------


def iter_batches(n: int, size: int = BATCH_USERS) -> Iterator[np.ndarray]:
    for start in range(0, n, size):
        yield np.arange(start, min(start + size, n))


def top_n(
    scores: np.ndarray,
    n: int,
    exclude: sp.csr_matrix | None = None,
    categories: np.ndarray | None = None,
    max_per_category: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (item columns, scores) of the best n items per row, vectorised.

    `exclude` marks items not to recommend; with `categories`, at most `max_per_category`
    items of one category are kept, the rest filled from the next best (diversity).
    """
    scores = scores.astype(np.float32, copy=True)
    if exclude is not None and exclude.nnz:
        r, c = exclude.nonzero()
        scores[r, c] = -np.inf
    width = scores.shape[1]
    pool = min(width, n * 5 if max_per_category else n)
    candidates = (
        np.argpartition(-scores, pool - 1, axis=1)[:, :pool]
        if pool < width
        else (np.tile(np.arange(width), (len(scores), 1)))
    )
    cand_scores = np.take_along_axis(scores, candidates, axis=1)
    order = np.argsort(-cand_scores, axis=1, kind="stable")
    candidates = np.take_along_axis(candidates, order, axis=1)
    cand_scores = np.take_along_axis(cand_scores, order, axis=1)
    if max_per_category and categories is not None:
        cats = categories[candidates]
        # How many better-ranked candidates share the category (upper triangle of equality).
        same = cats[:, :, None] == cats[:, None, :]
        earlier = np.triu(np.ones((pool, pool), dtype=bool), k=1)
        seen_before = (same & earlier[None, :, :]).sum(axis=1)
        demote = seen_before >= max_per_category
        order = np.argsort(demote, axis=1, kind="stable")
        candidates = np.take_along_axis(candidates, order, axis=1)
        cand_scores = np.take_along_axis(cand_scores, order, axis=1)
    return candidates[:, :n], cand_scores[:, :n]


# --- evaluation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metrics:
    precision: float
    recall: float
    ndcg: float
    users: int

    def as_dict(self) -> dict:
        return {
            "precision@10": round(self.precision, 4),
            "recall@10": round(self.recall, 4),
            "ndcg@10": round(self.ndcg, 4),
            "users": self.users,
        }


def evaluate(
    model, train: sp.csr_matrix, test: sp.csr_matrix, k: int = 10, max_users: int | None = None
) -> Metrics:
    """Return precision, recall and NDCG at k on test items not met in training."""
    train_bin = (train > 0).astype(np.int8).tocsr()
    target = ((test > 0).astype(np.int8) - train_bin.multiply(test > 0)).tocsr()
    target.eliminate_zeros()
    users = np.flatnonzero((np.diff(target.indptr) > 0) & (np.diff(train_bin.indptr) > 0))
    if max_users and len(users) > max_users:
        users = np.random.default_rng(0).choice(users, max_users, replace=False)
        users.sort()
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    p_sum = r_sum = n_sum = 0.0
    for start in range(0, len(users), BATCH_USERS):
        rows = users[start : start + BATCH_USERS]
        ranked, _ = top_n(model.score(train, rows), k, exclude=train_bin[rows])
        truth = target[rows]
        hits = np.asarray(truth[np.arange(len(rows))[:, None], ranked].todense()) > 0
        n_true = np.diff(truth.indptr)
        p_sum += hits.sum() / k
        r_sum += (hits.sum(axis=1) / n_true).sum()
        ideal = np.array([discounts[: min(t, k)].sum() for t in n_true])
        n_sum += ((hits * discounts).sum(axis=1) / ideal).sum()
    n = max(len(users), 1)
    return Metrics(p_sum / n, r_sum / n, n_sum / n, len(users))


def evaluate_blends(
    parts: list,
    blends: dict[str, tuple[float, ...]],
    train: sp.csr_matrix,
    test: sp.csr_matrix,
    k: int = 10,
    max_users: int | None = None,
) -> dict[str, Metrics]:
    """Return evaluate()'s metrics for weighted blends of fitted parts, scoring each part once.

    Each batch of users is scored by every part once; every blend is then a weighted sum of
    those row-normalised scores. A blend with one non-zero weight ranks exactly as its part
    alone (normalising a row keeps its order), so single models are blends too.
    """
    # A part no blend weighs is never scored.
    used = [i for i in range(len(parts)) if any(w[i] for w in blends.values())]
    parts = [parts[i] for i in used]
    blends = {name: tuple(w[i] for i in used) for name, w in blends.items()}
    train_bin = (train > 0).astype(np.int8).tocsr()
    target = ((test > 0).astype(np.int8) - train_bin.multiply(test > 0)).tocsr()
    target.eliminate_zeros()
    users = np.flatnonzero((np.diff(target.indptr) > 0) & (np.diff(train_bin.indptr) > 0))
    if max_users and len(users) > max_users:
        users = np.random.default_rng(0).choice(users, max_users, replace=False)
        users.sort()
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    sums = {name: np.zeros(3) for name in blends}
    for start in range(0, len(users), BATCH_USERS):
        rows = users[start : start + BATCH_USERS]
        pool = BlendPool([part.score(train, rows) for part in parts], train_bin[rows], k)
        truth = target[rows]
        n_true = np.diff(truth.indptr)
        ideal = np.array([discounts[: min(t, k)].sum() for t in n_true])
        for name, weights in blends.items():
            ranked = pool.rank(weights)
            hits = np.asarray(truth[np.arange(len(rows))[:, None], ranked].todense()) > 0
            sums[name] += [
                hits.sum() / k,
                (hits.sum(axis=1) / n_true).sum(),
                ((hits * discounts).sum(axis=1) / ideal).sum(),
            ]
    n = max(len(users), 1)
    return {name: Metrics(*(total / n), len(users)) for name, total in sums.items()}


POOL_PER_PART = 50


class BlendPool:
    """The top k unseen items of any weighted blend of some parts' scores for a batch of users.

    Ranking every blend over the whole catalogue costs one selection over users × items per
    blend. Instead each part's best POOL_PER_PART unseen items are selected once, and a blend
    is ranked within the union of those pools. That is exact: an item outside every pool
    scores at most the weighted sum of each part's best score outside its pool, so where the
    blend's k-th best pooled item reaches that bound, no outside item can beat it; the few
    rows where it does not are ranked over the whole catalogue.
    """

    def __init__(self, scores: list[np.ndarray], seen: sp.csr_matrix, k: int):
        self.k = k
        n_rows, width = seen.shape
        seen_r, seen_c = seen.nonzero()
        self.scores, self.lows, self.spans, self.bounds, columns = [], [], [], [], []
        per_part = min(POOL_PER_PART, width - 1)
        pooling = per_part >= k  # else the catalogue is too small to pool: rank all of it
        for raw in scores:
            part = np.array(raw, dtype=np.float32)  # ours to overwrite
            low = part.min(axis=1, keepdims=True)
            span = part.max(axis=1, keepdims=True) - low
            span[span <= 0] = 1
            part[seen_r, seen_c] = -np.inf
            outside = np.full((n_rows, 1), -np.inf, dtype=np.float32)
            if pooling:
                # The per_part best unseen items, and the best score left outside them.
                order = np.argpartition(part, width - per_part - 1, axis=1)
                columns.append(order[:, width - per_part :])
                outside = np.take_along_axis(part, order[:, width - per_part - 1, None], axis=1)
            self.scores.append(part)
            self.lows.append(low)
            self.spans.append(span)
            self.bounds.append((outside - low) / span)
        if pooling:
            pooled = np.sort(np.concatenate(columns, axis=1), axis=1)
        else:
            pooled = np.broadcast_to(np.arange(width), (n_rows, width))
        # An item in several parts' pools counts once.
        self.repeated = np.zeros(pooled.shape, dtype=bool)
        self.repeated[:, 1:] = pooled[:, 1:] == pooled[:, :-1]
        self.columns = pooled
        self.normalised = [
            (np.take_along_axis(part, pooled, axis=1) - low) / span
            for part, low, span in zip(self.scores, self.lows, self.spans, strict=True)
        ]

    def rank(self, weights: tuple[float, ...]) -> np.ndarray:
        """Return the k best unseen item columns of each row for a blend, best first."""
        k = self.k
        total = self._blend(self.normalised, weights)
        total[self.repeated] = -np.inf
        best = np.argpartition(total, total.shape[1] - k, axis=1)[:, -k:]
        best_scores = np.take_along_axis(total, best, axis=1)
        order = np.argsort(-best_scores, axis=1, kind="stable")
        ranked = np.take_along_axis(np.take_along_axis(self.columns, best, axis=1), order, axis=1)
        kth = best_scores.min(axis=1)
        bound = self._blend(self.bounds, weights)[:, 0]
        # A tie with the bound is a tie with an outside item: either is a k-th best.
        unsure = np.flatnonzero(kth < bound)
        if len(unsure):
            whole = self._blend(
                [
                    (part[unsure] - low[unsure]) / span[unsure]
                    for part, low, span in zip(self.scores, self.lows, self.spans, strict=True)
                ],
                weights,
            )
            best = np.argpartition(whole, whole.shape[1] - k, axis=1)[:, -k:]
            order = np.argsort(-np.take_along_axis(whole, best, axis=1), axis=1, kind="stable")
            ranked[unsure] = np.take_along_axis(best, order, axis=1)
        return ranked

    @staticmethod
    def _blend(values: list[np.ndarray], weights: tuple[float, ...]) -> np.ndarray:
        total = np.zeros(values[0].shape, dtype=np.float32)
        for value, weight in zip(values, weights, strict=True):
            if weight:  # a zero weight leaves the part out (0 × -inf would be nan)
                total += np.float32(weight) * value
        return total


# (item neighbours, ALS, popularity); popularity-heavy blends win where tastes differ little.
HYBRID_WEIGHTS = [
    (1.0, 1.0, 0.0),
    (1.0, 0.5, 0.0),
    (1.0, 0.0, 1.0),
    (1.0, 0.3, 1.0),
    (0.5, 0.5, 1.0),
    (0.5, 1.0, 2.0),
    (0.5, 0.5, 2.0),
    (1.0, 1.0, 2.0),
]
# ALS sweeps of the refit on every interaction when it starts from the item factors fitted
# while choosing: benchmarks/recommend_train.py --quality checks it scores as the cold fit of
# ALS.iterations sweeps on held-out time.
REFIT_SWEEPS = 3


# Each family's settings, tried one coordinate at a time from its default (the first
# value): on validation NDCG@10, every value of the first setting is fitted with the others
# at their defaults, the best kept, then the next setting. The families take turns, so a
# time budget that runs out leaves each of them tuned about as far.
SEARCH_GRID: dict[str, list[tuple[str, list]]] = {
    "item_knn": [
        ("weighting", ["none", "tfidf", "bm25"]),
        ("shrink", [10.0, 0.0, 50.0, 200.0]),
        ("k", [100, 20, 50, 400]),
    ],
    "als": [
        ("factors", [32, 16, 64, 128]),
        ("regularization", [10.0, 0.1, 1.0, 50.0]),
        ("alpha", [5.0, 1.0, 20.0, 40.0]),
    ],
    "ease": [("regularization", [200.0, 20.0, 50.0, 500.0, 1000.0, 3000.0])],
}
FAMILIES = {"item_knn": ItemKNN, "als": ALS, "ease": EASE}
# Blend weights tried for (item neighbours, ALS, EASE, popularity), each part its family's
# tuned winner; single models are the blends with one weight.
BLEND_STEPS = (0.0, 0.5, 1.0)
POPULARITY_STEPS = (0.0, 0.25, 1.0)
# Seconds the search may spend fitting candidates (the blends are scored afterwards, from
# fits already made); the refit on every interaction is not counted.
CHOICE_BUDGET_SECONDS = 30.0
BLEND_SCREEN_USERS = 4000
BLEND_FINALISTS = 5


@dataclass
class Choice:
    name: str
    build: Callable[[], object]
    validation: dict[str, dict]
    # The ALS fitted while choosing and the item ids of its columns, to start the refit from.
    als: ALS | None = None
    item_ids: np.ndarray | None = None
    # Each family's tuned settings, and the blend weights (item_knn, als, ease, popularity).
    settings: dict[str, dict] = field(default_factory=dict)
    weights: tuple[float, ...] = ()


def choose_model(
    users: np.ndarray,
    items: np.ndarray,
    times: np.ndarray,
    max_users: int | None = 20000,
    budget_seconds: float = CHOICE_BUDGET_SECONDS,
) -> Choice:
    """Pick the model with the best validation NDCG@10 among tuned families and their blends.

    The validation split is the last 20% of each user's training history, so the test part
    of an outer evaluation is never seen while choosing. Each family (item neighbours with
    weighting and shrinkage, ALS, EASE where the catalogue is small enough) is tuned on its
    grid (SEARCH_GRID) within ``budget_seconds``; then every blend of the winners and
    popularity (BLEND_STEPS) is scored from those fits.
    """
    val_mask = split_by_time(users, times)
    full = build_matrix(users, items)
    fit = build_matrix(users[~val_mask], items[~val_mask], None, full.user_ids, full.item_ids)
    val = build_matrix(users[val_mask], items[val_mask], None, full.user_ids, full.item_ids)
    n_items = fit.matrix.shape[1]
    families = [f for f in SEARCH_GRID if f != "ease" or n_items <= EASE_MAX_ITEMS]
    results: dict[str, dict] = {}
    best: dict[str, tuple[float, dict, object]] = {}
    deadline = time.perf_counter() + budget_seconds

    def trial(family: str, settings: dict) -> None:
        label = _label(family, settings)
        if label in results:
            return
        model = FAMILIES[family](**_usable(family, settings, n_items)).fit(fit.matrix)
        metrics = evaluate(model, fit.matrix, val.matrix, max_users=max_users).as_dict()
        results[label] = {**metrics, "family": family, "settings": dict(settings)}
        if family not in best or metrics["ndcg@10"] > best[family][0]:
            best[family] = (metrics["ndcg@10"], dict(settings), model)

    for family in families:  # every family's defaults first, whatever the budget
        trial(family, {name: values[0] for name, values in SEARCH_GRID[family]})
    for step in range(max(len(grid) for grid in SEARCH_GRID.values())):
        for family in families:
            grid = SEARCH_GRID[family]
            if step >= len(grid):
                continue
            name, values = grid[step]
            for value in values[1:]:
                if time.perf_counter() > deadline:
                    break
                trial(family, {**best[family][1], name: value})
    pop = Popularity().fit(fit.matrix)
    parts = [best[f][2] if f in best else pop for f in SEARCH_GRID]
    blends: dict[str, tuple[float, ...]] = {}
    for weights in itertools.product(*[BLEND_STEPS] * len(SEARCH_GRID), POPULARITY_STEPS):
        present = [w for w, f in zip(weights, SEARCH_GRID, strict=False) if w and f in best]
        if not present or (len(present) == 1 and weights[-1] == 0):
            continue  # a single tuned model alone is already in results
        if any(w and f not in best for w, f in zip(weights, SEARCH_GRID, strict=False)):
            continue
        blends["hybrid_" + "_".join(f"{w:g}" for w in weights)] = weights
    # Every blend is screened on a few thousand users; the best few are then scored on as many
    # users as the single models were, and only those compete with them.
    screened = evaluate_blends(
        [*parts, pop], blends, fit.matrix, val.matrix, max_users=BLEND_SCREEN_USERS
    )
    finalists = sorted(screened, key=lambda n: -screened[n].ndcg)[:BLEND_FINALISTS]
    blended = evaluate_blends(
        [*parts, pop],
        {n: blends[n] for n in finalists},
        fit.matrix,
        val.matrix,
        max_users=max_users,
    )
    for name, metrics in blended.items():
        results[name] = {**metrics.as_dict(), "family": "hybrid", "weights": list(blends[name])}
    settings = {f: best[f][1] for f in best}
    chosen = max(results, key=lambda n: (results[n]["ndcg@10"], n.startswith("hybrid")))
    build: Callable[[], object]
    if chosen.startswith("hybrid"):
        weights = tuple(results[chosen]["weights"])
        name, build = chosen, _hybrid_builder(settings, weights, n_items)
    else:
        family = results[chosen]["family"]
        weights = (*(float(f == family) for f in SEARCH_GRID), 0.0)
        name = family
        build = _single_builder(family, settings[family], n_items)
    als = best["als"][2] if "als" in best else None
    choice = Choice(name, build, results, als, full.item_ids, settings, weights)
    return choice


def _label(family: str, settings: dict) -> str:
    return (
        family
        + "("
        + ", ".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in settings.items()
        )
        + ")"
    )


def _usable(family: str, settings: dict, n_items: int) -> dict:
    """Return the settings a catalogue of n_items can take (no more ALS factors than half the items)."""
    if family == "als":
        return {**settings, "factors": int(max(2, min(settings["factors"], n_items // 2)))}
    return settings


def _single_builder(family: str, settings: dict, n_items: int) -> Callable[[], object]:
    def build() -> object:
        return FAMILIES[family](**_usable(family, settings, n_items))

    return build


def _hybrid_builder(
    settings: dict[str, dict], weights: tuple[float, ...], n_items: int
) -> Callable[[], Hybrid]:
    def build() -> Hybrid:
        parts: list = [
            FAMILIES[f](**_usable(f, settings[f], n_items)) if f in settings else Popularity()
            for f in SEARCH_GRID
        ]
        return Hybrid([*parts, Popularity()], list(weights), name="hybrid")

    return build


def fit_chosen(choice: Choice, data: Dataset, warm_start: bool = True) -> object:
    """Fit the chosen model on every interaction; its ALS starts from the choice's items."""
    model = choice.build()
    parts = model.parts if isinstance(model, Hybrid) else [model]
    for part in parts:
        if warm_start and isinstance(part, ALS) and choice.als is not None:
            part.start = carry_item_factors(choice.als, choice.item_ids, data.item_ids)
            part.iterations = REFIT_SWEEPS
    return model.fit(data.matrix)


def carry_item_factors(
    als: ALS, fitted_ids: np.ndarray, item_ids: np.ndarray, seed: int = 42
) -> np.ndarray:
    """Return ALS item factors for item_ids: fitted ones where known, small random otherwise."""
    known = als.item_factors
    start = np.random.default_rng(seed).random((len(item_ids), known.shape[1]), np.float32)
    start *= 0.01  # implicit's own initial scale
    at = np.minimum(np.searchsorted(fitted_ids, item_ids), len(fitted_ids) - 1)
    found = fitted_ids[at] == item_ids
    start[found] = known[at[found]]
    return start


def sample_users(users: np.ndarray, max_users: int | None, seed: int = 0) -> np.ndarray:
    """Return a mask of the interactions of at most max_users randomly drawn users."""
    ids = np.unique(users)
    if not max_users or len(ids) <= max_users:
        return np.ones(len(users), dtype=bool)
    chosen = np.random.default_rng(seed).choice(ids, max_users, replace=False)
    return np.isin(users, chosen)


def train_model(
    users: np.ndarray,
    items: np.ndarray,
    times: np.ndarray,
    choose_users: int | None = CHOOSE_USERS,
    max_users: int | None = 20000,
    warm_start: bool = True,
) -> tuple[Choice, Dataset, object]:
    """Choose a model on a user sample's held-out time, then fit it on every interaction.

    This is the nightly job's training (kequn.recommend.services.train_recommendations) and
    what benchmarks/recommend_train.py times. With choose_users=None and warm_start=False it
    is the job as it was before sampling and reuse (the benchmark's reference for quality).
    """
    sample = sample_users(users, choose_users)
    choice = choose_model(users[sample], items[sample], times[sample], max_users)
    data = build_matrix(users, items)
    return choice, data, fit_chosen(choice, data, warm_start)


def evaluate_interactions(
    users: np.ndarray,
    items: np.ndarray,
    times: np.ndarray,
    k: int = 10,
    max_users: int | None = 20000,
    budget_seconds: float = CHOICE_BUDGET_SECONDS,
) -> dict:
    """Split per user by time (80/20), choose a model on the training part, evaluate all on test.

    Reported on test: popularity, the plain baselines (cosine item neighbours, ALS with 32
    factors), each family with the settings it was tuned to on validation, and the chosen
    model. Nothing of the test part is seen while choosing.
    """
    test_mask = split_by_time(users, times)
    full = build_matrix(users, items)
    train_rows = ~test_mask
    train = build_matrix(users[train_rows], items[train_rows], None, full.user_ids, full.item_ids)
    test = build_matrix(users[test_mask], items[test_mask], None, full.user_ids, full.item_ids)
    choice = choose_model(
        users[train_rows], items[train_rows], times[train_rows], max_users, budget_seconds
    )
    n_items = train.matrix.shape[1]
    models: dict[str, object] = {
        "popularity": Popularity(),
        "item_knn_cosine": ItemKNN(shrink=0.0),
        "als_32": ALS(factors=min(32, max(2, n_items // 2))),
    }
    for family, settings in choice.settings.items():
        models[f"{family}_tuned"] = FAMILIES[family](**_usable(family, settings, n_items))
    report: dict[str, dict] = {}
    for name, model in models.items():
        model.fit(train.matrix)  # type: ignore[attr-defined]
        report[name] = evaluate(model, train.matrix, test.matrix, k, max_users).as_dict()
    tuned = [models.get(f"{f}_tuned", models["popularity"]) for f in SEARCH_GRID]
    chosen = Hybrid([*tuned, models["popularity"]], list(choice.weights), fitted=True)
    report["chosen"] = {
        **evaluate(chosen, train.matrix, test.matrix, k, max_users).as_dict(),
        "model": choice.name,
    }
    return {
        "interactions": len(users),
        "users": len(full.user_ids),
        "items": len(full.item_ids),
        "test_interactions": int(test_mask.sum()),
        "models": report,
        "validation": choice.validation,
        "settings": choice.settings,
    }


def format_report(report: dict) -> str:
    """Return the evaluation report as an aligned text table."""
    lines = [
        f"{report['interactions']:,} interactions, {report['users']:,} users, "
        f"{report['items']:,} items; test = last 20% of each user's history "
        f"({report['test_interactions']:,} interactions)",
        f"{'model':<28} {'precision@10':>12} {'recall@10':>10} {'NDCG@10':>8} {'users':>8}",
    ]
    for name, m in report["models"].items():
        label = f"chosen ({m['model']})" if name == "chosen" else name
        lines.append(
            f"{label:<28} {m['precision@10']:>12.4f} {m['recall@10']:>10.4f} "
            f"{m['ndcg@10']:>8.4f} {m['users']:>8,}"
        )
    return "\n".join(lines)
