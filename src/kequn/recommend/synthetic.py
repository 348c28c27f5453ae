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
