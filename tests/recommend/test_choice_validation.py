"""The blend is chosen on a validation split inside the training data and holds on test data.

Three differently shaped synthetic shops (tight taste groups, popularity-led, a long tail of
many small groups): the candidate is picked on the last 20 % of each user's training
history, then scored once on the held-out test period it never saw.
"""

from __future__ import annotations

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
