"""Synthetic interactions with planted taste groups, for tests and benchmarks (no Django)."""

from __future__ import annotations

import numpy as np


def make_interactions(
    n_users: int = 2000,
    n_items: int = 300,
    n_groups: int = 10,
    per_user: int = 12,
    taste: float = 0.85,
    seed: int = 42,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (users, items, times): each user buys mostly within one group of items.

    Within a group, items are bought in a rough order (accessories after the phone), and a
    few items are popular with everyone, so popularity is a real but beatable baseline.
    """
    rng = np.random.default_rng(seed)
    group_of_user = rng.integers(0, n_groups, n_users)
    items_by_group = np.array_split(rng.permutation(n_items), n_groups)
    global_pop = rng.zipf(1.6, n_items).astype(float)
    global_pop /= global_pop.sum()
    users = np.repeat(np.arange(n_users), per_user)
    in_group = rng.random(len(users)) < taste
    items = rng.choice(n_items, len(users), p=global_pop)
    for g, group_items in enumerate(items_by_group):
        weights = 1.0 / np.arange(1, len(group_items) + 1) ** 0.7
        weights /= weights.sum()
        mask = in_group & (group_of_user[users] == g)
        items[mask] = rng.choice(group_items, mask.sum(), p=weights)
    times = np.tile(np.arange(per_user), n_users) * 86400 + rng.integers(0, 3600, len(users))
    return users, items, times.astype(np.int64)


def make_ratings_like(
    n_users: int = 943,
    n_items: int = 1682,
    n_interactions: int = 100_000,
    dims: int = 12,
    popularity: float = 1.0,
    seed: int = 42,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (users, items, times) shaped like the public 100k movie-ratings set.

    943 users and 1,682 items by default, each user with at least 20 items and a
    heavy-tailed count (median about a third of the mean's), item popularity following a
    long tail, and tastes from a low-rank model: a user picks items without repeats with
    weight popularity^``popularity`` x exp(taste . genre). Items also have a release time;
    a user meets newer items later in their history, so a per-user temporal split asks for
    what came next, as on the public set.
    """
    rng = np.random.default_rng(seed)
    counts = 20 + rng.lognormal(np.log(40), 1.0, n_users)
    counts = np.minimum(np.round(counts * (n_interactions / counts.sum())), n_items // 2)
    counts = np.maximum(counts, 20).astype(np.int64)
    appeal = rng.lognormal(0.0, 1.3, n_items)
    taste = rng.normal(0, 1, (n_users, dims)) / np.sqrt(dims)
    genre = rng.normal(0, 1, (n_items, dims)) * 1.6
    release = rng.random(n_items)
    logits = popularity * np.log(appeal)[None, :] + taste @ genre.T
    # Gumbel top-k: each user's items drawn without replacement in one vectorised step.
    keys = logits + rng.gumbel(size=logits.shape)
    users_out, items_out, times_out = [], [], []
    for u in range(n_users):
        chosen = np.argpartition(-keys[u], counts[u] - 1)[: counts[u]]
        # Seen in release order, give or take: the user's history runs forward in time.
        order = np.argsort(release[chosen] + rng.normal(0, 0.15, len(chosen)))
        users_out.append(np.full(len(chosen), u))
        items_out.append(chosen[order])
        times_out.append(np.arange(len(chosen)) * 3600 + u)
    return (
        np.concatenate(users_out),
        np.concatenate(items_out),
        np.concatenate(times_out).astype(np.int64),
    )
