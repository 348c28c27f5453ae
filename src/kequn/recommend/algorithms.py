"""Recommendation models and offline evaluation on scipy.sparse (no Django imports).

Interactions are (user, item, time[, weight]) arrays. Models score items for a batch of users;
evaluation splits each user's history by time (first 80% train, last 20% test) and measures
precision@k, recall@k and NDCG@k on items the user had not met in training.
"""

from __future__ import annotations

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
    """Item-based neighbours: cosine similarity of item columns, top `k` neighbours kept."""

    name = "item_knn"

    def __init__(self, k: int = 100, shrink: float = 10.0):
        self.k, self.shrink = k, shrink

    def fit(self, matrix: sp.csr_matrix) -> ItemKNN:
        binary = (matrix > 0).astype(np.float32)
        norms = np.sqrt(np.asarray(binary.sum(axis=0)).ravel())
        co = binary.T.tocsr() @ binary  # item × item co-occurrence counts
        if co.shape[0] <= DENSE_ITEMS:
            # A few thousand items: the similarity fits in memory as one array and the top k
            # per row is one argpartition, instead of a COO round trip and a loop over rows.
            sim = co.toarray()
            sim /= np.outer(norms, norms) + self.shrink
            np.fill_diagonal(sim, 0)
            self.similarity = top_k_dense(sim, self.k)
            return self
        co.setdiag(0)
        co.eliminate_zeros()
        co = co.tocoo()
        rows, cols = co.row, co.col
        values = co.data / (norms[rows] * norms[cols] + self.shrink)
        sim = sp.csr_matrix((values.astype(np.float32), (rows, cols)), shape=co.shape)
        self.similarity = keep_top_per_row(sim, self.k)
        return self

    def score(self, matrix: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
        user = (matrix[rows] > 0).astype(np.float32)
        # similarity rows are "neighbours of item i"; a user scores j by summing sim(i, j).
        return np.asarray((user @ self.similarity).todense())


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


@dataclass
class Choice:
    name: str
    build: Callable[[], object]
    validation: dict[str, dict]
    # The ALS fitted while choosing and the item ids of its columns, to start the refit from.
    als: ALS | None = None
    item_ids: np.ndarray | None = None


def choose_model(
    users: np.ndarray, items: np.ndarray, times: np.ndarray, max_users: int | None = 20000
) -> Choice:
    """Pick the model (item_knn, als or a hybrid of both) with the best validation NDCG@10.

    The validation split is the last 20% of each user's training history, so the test part
    of an outer evaluation is never seen while choosing.
    """
    val_mask = split_by_time(users, times)
    full = build_matrix(users, items)
    fit = build_matrix(users[~val_mask], items[~val_mask], None, full.user_ids, full.item_ids)
    val = build_matrix(users[val_mask], items[val_mask], None, full.user_ids, full.item_ids)
    pop, knn, als = Popularity().fit(fit.matrix), ItemKNN().fit(fit.matrix), ALS().fit(fit.matrix)
    builders: dict[str, Callable[[], object]] = {
        "item_knn": ItemKNN,
        "als": ALS,
    }
    blends: dict[str, tuple[float, ...]] = {"item_knn": (1.0, 0.0, 0.0), "als": (0.0, 1.0, 0.0)}
    for w_knn, w_als, w_pop in HYBRID_WEIGHTS:
        name = f"hybrid_{w_knn:g}_{w_als:g}_{w_pop:g}"
        blends[name] = (w_knn, w_als, w_pop)
        builders[name] = _hybrid_builder(w_knn, w_als, w_pop)
    # Every candidate is a blend of the same three fits: score each part once per user batch.
    metrics = evaluate_blends([knn, als, pop], blends, fit.matrix, val.matrix, max_users=max_users)
    results = {name: m.as_dict() for name, m in metrics.items()}
    best = max(results, key=lambda n: (results[n]["ndcg@10"], n.startswith("hybrid")))
    return Choice(best, builders[best], results, als, full.item_ids)


def _hybrid_builder(w_knn: float, w_als: float, w_pop: float) -> Callable[[], Hybrid]:
    def build() -> Hybrid:
        return Hybrid([ItemKNN(), ALS(), Popularity()], [w_knn, w_als, w_pop], name="hybrid")

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
) -> dict:
    """Split per user by time (80/20), choose a model on the training part, evaluate all on test."""
    test_mask = split_by_time(users, times)
    full = build_matrix(users, items)
    train_rows = ~test_mask
    train = build_matrix(users[train_rows], items[train_rows], None, full.user_ids, full.item_ids)
    test = build_matrix(users[test_mask], items[test_mask], None, full.user_ids, full.item_ids)
    choice = choose_model(users[train_rows], items[train_rows], times[train_rows], max_users)
    models = {
        "popularity": Popularity(),
        "item_knn": ItemKNN(),
        "als": ALS(),
    }
    report: dict[str, dict] = {}
    for name, model in models.items():
        model.fit(train.matrix)
        report[name] = evaluate(model, train.matrix, test.matrix, k, max_users).as_dict()
    if choice.name in models:
        report["chosen"] = {**report[choice.name], "model": choice.name}
    else:
        fitted = models
        w = [float(x) for x in choice.name.split("_")[1:]]
        chosen = Hybrid([fitted["item_knn"], fitted["als"], fitted["popularity"]], w, fitted=True)
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
