"""The blend is chosen on a validation split inside the training data and holds on test data.

Three differently shaped synthetic shops (tight taste groups, popularity-led, a long tail of
many small groups): the candidate is picked on the last 20 % of each user's training
history, then scored once on the held-out test period it never saw.
"""

from __future__ import annotations

import numpy as np
import pytest

from kequn.recommend import algorithms as algo
from kequn.recommend.synthetic import make_interactions

SHAPES = {
    "clustered tastes": {"n_groups": 8, "taste": 0.9},
    "popularity-led": {"n_groups": 8, "taste": 0.3},
    "long tail": {"n_groups": 40, "taste": 0.7},
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_choice_on_validation_holds_on_the_test_period(shape):
    users, items, times = make_interactions(
        n_users=1500, n_items=400, per_user=12, seed=7, **SHAPES[shape]
    )
    report = algo.evaluate_interactions(users, items, times)
    models, chosen = report["models"], report["models"]["chosen"]
    # The choice saw only validation data: every candidate has a validation score ...
    assert chosen["model"] in report["validation"]
    best_single = max(models[name]["ndcg@10"] for name in ("item_knn", "als"))
    # ... and on the test period the chosen model beats popularity and is no worse than
    # the best single model by more than the noise of 1,500 users.
    assert chosen["ndcg@10"] > models["popularity"]["ndcg@10"], models
    assert chosen["ndcg@10"] >= best_single - 0.01, models


def test_blends_ranked_within_pools_match_ranking_the_whole_catalogue(monkeypatch):
    # A pool of 12 per part out of 300 items leaves many rows undecided by the bound: both the
    # pooled ranking and the fallback are exercised, and every metric equals the full ranking.
    monkeypatch.setattr(algo, "POOL_PER_PART", 12)
    users, items, times = make_interactions(n_users=600, n_items=300, per_user=12, seed=5)
    test = algo.split_by_time(users, times)
    full = algo.build_matrix(users, items)
    train = algo.build_matrix(users[~test], items[~test], None, full.user_ids, full.item_ids)
    held = algo.build_matrix(users[test], items[test], None, full.user_ids, full.item_ids)
    parts = [algo.ItemKNN().fit(train.matrix), algo.ALS().fit(train.matrix)]
    parts.append(algo.Popularity().fit(train.matrix))
    blends = {f"{w}": w for w in [(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), *algo.HYBRID_WEIGHTS]}
    pooled = algo.evaluate_blends(parts, blends, train.matrix, held.matrix)
    for name, weights in blends.items():
        whole = algo.evaluate(
            algo.Hybrid(parts, list(weights), fitted=True), train.matrix, held.matrix
        )
        assert pooled[name].ndcg == pytest.approx(whole.ndcg, abs=1e-9), name
        assert pooled[name].recall == pytest.approx(whole.recall, abs=1e-9), name


def test_refit_starts_from_the_item_factors_fitted_while_choosing():
    users, items, times = make_interactions(n_users=800, n_items=120, per_user=12, seed=9)
    choice = algo.choose_model(users[users < 400], items[users < 400], times[users < 400])
    data = algo.build_matrix(users, items)
    start = algo.carry_item_factors(choice.als, choice.item_ids, data.item_ids)
    known = np.isin(data.item_ids, choice.item_ids)
    rows = np.searchsorted(choice.item_ids, data.item_ids[known])
    assert np.array_equal(start[known], choice.als.item_factors[rows])
    assert np.all(np.abs(start[~known]) <= 0.01)
    choice.build = algo.ALS
    model = algo.fit_chosen(choice, data)
    assert model.iterations == algo.REFIT_SWEEPS and model.item_factors.shape == start.shape
