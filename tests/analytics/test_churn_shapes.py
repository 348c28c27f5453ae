"""The churn model keeps its edge on generated shops shaped unlike CDNOW.

The shops come from benchmarks/churn_compare.py (renewal buyers with regular to erratic
gaps; overdispersed, early-leaving buyers); scored 180 days before the end on held-out time.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from kequn.analytics import evaluate_churn

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from churn_compare import generate_shop


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["rhythm", "bursty"])
def test_churn_model_beats_plain_model_and_bgnbd_on_other_shapes(shape):
    frame, last = generate_shop(5_000, shape)
    cutoff = str(pd.Timestamp(last) - pd.Timedelta(days=180))[:10]
    ev, _ = evaluate_churn(frame, cutoff, 180, plain_model=True)
    assert ev.auc["model"] > ev.auc["plain_gbm"] + 0.003
    assert ev.auc["model"] > ev.auc["recency"]
    assert ev.brier["model"] < ev.brier["bgnbd_p_no_purchase"]
