"""Benchmark: the nightly recommendation training on 10,000,000 interactions (target: under 60 s).

Run: python benchmarks/recommend_train.py [--interactions 10000000] [--items 5000] [--repeat 1]
    [--shape clustered|popularity-led|long-tail] [--compare-before] [--quality] [--smoke]

Times the job `kequn recommend train` and the nightly worker run, `algo.train_model`: the
choice between candidates (inner time split, candidate fits and validation NDCG on a sample of
at most CHOOSE_USERS users) and the refit of the chosen model on every interaction, its ALS
starting from the item factors fitted while choosing. Loading the order lines from the
database and storing the top 20 are left out (they scale with the database, not the model).
References measured in the same run: building the sparse matrix alone, and the popularity
baseline. Everything runs warm in this one process, after the interactions are generated and
the libraries imported, one after another.

--compare-before also times the job the old way: the choice made on every user and a cold
refit of ALS.iterations sweeps.
--quality (implied by --compare-before and --smoke) splits each user's history by time
(last 20 % held out), trains on the rest and reports NDCG@10 and recall@10 on the held-out
part of the model trained the fast way, of the one trained the old way (with
--compare-before) and of popularity. Exit status 1 when training misses 60 s, the chosen
model does not beat popularity, or the fast way loses more than 0.005 NDCG@10 to the old.
--shape: the synthetic shop (taste groups): clustered (50 groups, 85 % of purchases within
the group), popularity-led (8 groups, 30 %) or long-tail (400 groups, 70 %).
--smoke: 40,000 interactions, checks judged, the 60 s target not.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from _verdict import Verdict

from kequn.recommend import algorithms as algo
from kequn.recommend.synthetic import make_interactions


def timed(label: str, fn):
    """Run fn, print and return its result and wall seconds (CPU seconds printed beside)."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    seconds = time.perf_counter() - start
    # CPU time of every thread of this process: on a shared machine, wall time alone
    # measures the neighbours too.
    print(f"{label:<52} {seconds:8.2f} s  (CPU {time.process_time() - cpu:7.2f} s)", flush=True)
    return out, seconds


# (taste groups, share of purchases within the user's group)
SHAPES: dict[str, tuple[int, float]] = {
    "clustered": (50, 0.85),
    "popularity-led": (8, 0.3),
    "long-tail": (400, 0.7),
}


def evaluate_training(users, items, times, fast: bool) -> tuple[str, algo.Metrics, algo.Metrics]:
    """Train on the first 80 % of each history; return (model, its metrics, popularity's).

    fast: the nightly job (choice on a sample, warm refit); else the old way (choice on every
    user, cold refit).
    """
    test = algo.split_by_time(users, times)
    full = algo.build_matrix(users, items)
    train = algo.build_matrix(users[~test], items[~test], None, full.user_ids, full.item_ids)
    held = algo.build_matrix(users[test], items[test], None, full.user_ids, full.item_ids)
    choice, _, model = algo.train_model(
        users[~test],
        items[~test],
        times[~test],
        choose_users=algo.CHOOSE_USERS if fast else None,
        warm_start=fast,
    )
    metrics = algo.evaluate(model, train.matrix, held.matrix, max_users=20000)
    pop = algo.Popularity().fit(train.matrix)
    return choice.name, metrics, algo.evaluate(pop, train.matrix, held.matrix, max_users=20000)


def peak_rss_mb() -> float:
    """Return this process's peak resident memory so far, in MB (Linux counts kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interactions", type=int, default=None, help="default 10,000,000")
    parser.add_argument("--per-user", type=int, default=20)
    parser.add_argument("--items", type=int, default=None, help="default 5,000")
    parser.add_argument("--repeat", type=int, default=1, help="timed trainings (median)")
    parser.add_argument("--compare-before", action="store_true",
                        help="also time and score the choice made on every user")  # fmt: skip
    parser.add_argument("--quality", action="store_true", help="NDCG@10 on held-out time")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="clustered")
    parser.add_argument("--smoke", action="store_true", help="a small run for CI")
    args = parser.parse_args()
    interactions = args.interactions or (40_000 if args.smoke else 10_000_000)
    n_items = args.items or (400 if args.smoke else 5000)
    if interactions < args.per_user or args.per_user <= 0 or args.repeat <= 0:
        parser.error("--interactions, --per-user and --repeat must be positive")
    verdict = Verdict("recommend_train", smoke=args.smoke)
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    verdict.conditions(
        "all warm, one after another in this process, after generating the interactions "
        "and importing numpy, scipy and implicit (one untimed ALS fit on a tiny matrix)"
    )
    n_users = interactions // args.per_user
    n_groups, taste = SHAPES[args.shape]
    (users, items, times), _ = timed(
        "generate interactions (untimed)",
        lambda: make_interactions(n_users, n_items, n_groups, args.per_user, taste, seed=1),
    )
    print(f"{len(users):,} interactions, {n_users:,} users, {n_items:,} items, "
          f"{args.shape} shop; "
          f"choice on at most {algo.CHOOSE_USERS:,} users")  # fmt: skip
    algo.ALS(factors=4, iterations=1).fit(algo.build_matrix(users[:500], items[:500]).matrix)
    data, t_matrix = timed(
        "reference: build sparse matrix", lambda: algo.build_matrix(users, items)
    )
    _, t_pop = timed("reference: popularity baseline", lambda: algo.Popularity().fit(data.matrix))
    trainings = []
    for run in range(args.repeat):
        (choice, _, _), seconds = timed(
            f"TRAIN: choose + refit (run {run + 1})", lambda: algo.train_model(users, items, times)
        )
        trainings.append(seconds)
    train = statistics.median(trainings)
    print(
        f"chosen model: {choice.name} (validation NDCG@10 {choice.validation[choice.name]['ndcg@10']})"
    )
    print(f"{'TRAIN median':<52} {train:8.2f} s   target < 60 s")
    print(f"ratio train / build matrix alone:  {train / t_matrix:6.1f}x")
    print(f"ratio train / matrix + popularity: {train / (t_matrix + t_pop):6.1f}x")
    print(f"peak RSS after training: {peak_rss_mb():,.0f} MB")
    verdict.target("train (choose + refit) < 60 s", train < 60, f"median {train:.1f} s")
    if args.compare_before:
        (before, _, _), t_before = timed(
            "before: choose on every user + cold refit",
            lambda: algo.train_model(users, items, times, choose_users=None, warm_start=False),
        )
        print(f"before: chose {before.name}; ratio before / now {t_before / train:.1f}x")
    if args.quality or args.compare_before or args.smoke:
        (name, fast, pop), _ = timed(
            "quality: train on 80 %, score held-out time",
            lambda: evaluate_training(users, items, times, fast=True),
        )
        print(
            f"{'held-out (users ' + format(fast.users, ',') + ')':<36} {'NDCG@10':>8} {'recall@10':>10}"
        )
        print(f"{'fast: ' + name:<36} {fast.ndcg:8.4f} {fast.recall:10.4f}")
        print(f"{'popularity':<36} {pop.ndcg:8.4f} {pop.recall:10.4f}")
        verdict.check("the chosen model beats popularity on held-out time", fast.ndcg > pop.ndcg,
                      f"NDCG@10 {fast.ndcg:.4f} vs {pop.ndcg:.4f}")  # fmt: skip
        if args.compare_before:
            (old, full, _), _ = timed(
                "quality before: choice on every user, cold refit",
                lambda: evaluate_training(users, items, times, fast=False),
            )
            print(f"{'old: ' + old:<36} {full.ndcg:8.4f} {full.recall:10.4f}")
            verdict.check("the fast way keeps the quality (within 0.005 NDCG@10)",
                          fast.ndcg >= full.ndcg - 0.005,
                          f"{fast.ndcg:.4f} vs {full.ndcg:.4f} the old way")  # fmt: skip
    return verdict.finish()


if __name__ == "__main__":
    sys.exit(main())
