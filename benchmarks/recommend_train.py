"""Benchmark: train recommendations on 10,000,000 interactions (target: under 60 s).

Run: python benchmarks/recommend_train.py [--interactions 10000000] [--items 5000]
Prints the time to build the matrix and fit item neighbours and ALS, the time to rank the
top 10 for a sample of users, and the ratio to references measured in the same run
(building the sparse matrix alone; the popularity baseline).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from kequn.recommend import algorithms as algo  # noqa: E402
from kequn.recommend.synthetic import make_interactions  # noqa: E402


def timed(label: str, fn):
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    print(f"{label:<42} {seconds:8.2f} s")
    return out, seconds


def main() -> None:
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interactions", type=int, default=10_000_000)
    parser.add_argument("--per-user", type=int, default=20)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--sample-users", type=int, default=50_000)
    args = parser.parse_args()
    n_users = args.interactions // args.per_user
    (users, items, times), _ = timed(
        "generate interactions",
        lambda: make_interactions(n_users, args.items, 50, args.per_user, seed=1),
    )
    print(f"{len(users):,} interactions, {n_users:,} users, {args.items:,} items")
    data, t_matrix = timed(
        "reference: build sparse matrix", lambda: algo.build_matrix(users, items)
    )
    _, t_pop = timed("reference: popularity baseline", lambda: algo.Popularity().fit(data.matrix))
    knn, t_knn = timed("fit item neighbours", lambda: algo.ItemKNN().fit(data.matrix))
    model = algo.ALS()
    factors = model.factors or algo.choose_factors(len(data.item_ids))
    label = f"fit ALS ({factors} factors, {model.iterations} iterations)"
    als, t_als = timed(label, lambda: model.fit(data.matrix))
    train = t_matrix + t_knn + t_als
    print(f"{'TRAIN (matrix + item neighbours + ALS)':<42} {train:8.2f} s   target < 60 s")
    print(f"ratio train / build matrix alone:  {train / t_matrix:6.1f}x")
    print(f"ratio train / matrix + popularity: {train / (t_matrix + t_pop):6.1f}x")
    rows = np.sort(np.random.default_rng(0).choice(len(data.user_ids), args.sample_users, False))
    hybrid = algo.Hybrid([knn, als], [1.0, 1.0], fitted=True)
    categories = np.arange(len(data.item_ids)) % 40

    def rank():
        for start in range(0, len(rows), 2048):
            batch = rows[start : start + 2048]
            exclude = (data.matrix[batch] > 0).astype(np.int8)
            algo.top_n(hybrid.score(data.matrix, batch), 10, exclude, categories, 3)

    _, t_rank = timed(f"rank top 10 for {len(rows):,} users (hybrid)", rank)
    per_user = t_rank / len(rows)
    print(
        f"ranking all {len(data.user_ids):,} users would take ~{per_user * len(data.user_ids):.0f} s "
        f"({per_user * 1e6:.0f} µs per user)"
    )


if __name__ == "__main__":
    main()
