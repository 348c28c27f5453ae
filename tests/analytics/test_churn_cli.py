"""Churn beats its baselines on CDNOW held-out time; `kequn analyze` end to end on the sample."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from kequn.analytics import evaluate_churn, read_transactions, score_customers
from kequn.analytics.cli import main


@pytest.fixture(scope="module")
def master_tx(cdnow_master_path):
    return read_transactions(cdnow_master_path)


def test_churn_model_beats_recency_and_bgnbd_on_cdnow_master(master_tx):
    # Features at 1997-09-30, churn = no purchase in the next 39 weeks (to 1998-06-30).
    # Trained at 1997-05-17 with labels to 1997-09-30: nothing after the test cut-off is seen.
    ev, _ = evaluate_churn(
        master_tx,
        "1997-09-30",
        273,
        train_cutoff="1997-05-17",
        train_horizon_days=136,
        plain_model=True,
        ceiling=True,
    )
    auc = ev.auc
    assert ev.n_test == 23570
    assert auc["recency"] == pytest.approx(0.759, abs=0.002)
    assert auc["bgnbd_expected_purchases"] == pytest.approx(0.763, abs=0.002)
    assert auc["model"] > 0.771  # 0.7712
    assert auc["model"] > auc["recency"] + 0.008
    assert auc["model"] > auc["bgnbd_expected_purchases"] + 0.005
    # Scikit-learn's defaults on recency, frequency, monetary value, age and the BG/NBD
    # outputs, trained on the same rows, scored 0.7647; with the shipped settings 0.7694,
    # and the rhythm features (gaps against the usual gap, spend trend) earn the rest.
    assert auc["plain_gbm"] == pytest.approx(0.765, abs=0.003)
    assert auc["model"] > auc["plain_gbm"] + 0.003
    # The same features and settings fitted on the test period's own labels (5-fold) reach
    # only 0.7719, and 0.7720 with counts of purchase days in recent and first windows too:
    # the held-out model is within 0.001 of what the purchase history can tell here.
    assert auc["ceiling"] == pytest.approx(0.772, abs=0.002)
    assert auc["ceiling"] - auc["model"] < 0.003
    assert ev.brier["ceiling"] < ev.brier["model"]
    assert ev.lift_top_decile["model"] > max(ev.lift_top_decile["recency"], 1.2)
    # Calibrated on the test horizon: better than BG/NBD's own P(no purchase), not just the base rate.
    assert ev.brier["model"] < ev.brier["bgnbd_p_no_purchase"] - 0.003
    assert ev.brier["model"] < ev.brier["base_rate"]
    assert ev.reliability["customers"].sum() == 23570


def test_stacked_snapshots_beat_a_single_training_cutoff(master_tx):
    args = ("1997-09-30", 273)
    kw = {"train_cutoff": "1997-05-17", "train_horizon_days": 136}
    stacked, _ = evaluate_churn(master_tx, *args, **kw)
    single, _ = evaluate_churn(master_tx, *args, **kw, snapshots=1)
    assert stacked.n_train > 2 * single.n_train
    # 0.7712 against 0.7701 here; on the validation period 0.7466 against 0.7437.
    assert stacked.auc["model"] > single.auc["model"] + 0.0008
    val = {"train_cutoff": "1997-03-30", "train_horizon_days": 92}
    stacked, _ = evaluate_churn(master_tx, "1997-06-30", 92, **val)
    single, _ = evaluate_churn(master_tx, "1997-06-30", 92, **val, snapshots=1)
    assert stacked.auc["model"] > single.auc["model"] + 0.002


def test_score_customers_one_row_per_customer(master_tx):
    customers = ["99999", "00001", "00002"]
    scores = score_customers(master_tx, "1998-06-30", customers=customers)
    assert len(scores) == 23571 and scores["customer_id"].is_unique
    row = scores.set_index("customer_id").loc["00001"]
    assert row["lifecycle_stage"] == "churned"
    assert 0 <= row["churn_risk"] <= 1 and row["clv"] >= 0
    assert (
        "only one purchase" in row["churn_reasons_en"] and "仅购买过一次" in row["churn_reasons_zh"]
    )
    assert "倍于平常间隔未购买" in row["churn_reasons_zh"]
    assert scores.set_index("customer_id").loc["99999", "lifecycle_stage"] == "prospect"
    assert scores["segment"].notna().sum() == 23570
    assert "bgnbd" in scores.attrs["models"]


def test_analyze_cli_end_to_end_on_cdnow_sample(cdnow_sample_path, tmp_path):
    out = tmp_path / "report"
    code = main(
        [
            str(cdnow_sample_path),
            "--out",
            str(out),
            "--calibration-end",
            "1997-09-30",
            "--holdout-end",
            "1998-06-30",
            "--time-unit",
            "week",
            "--quiet",
        ]
    )
    assert code == 0
    models = json.loads((out / "models.json").read_text(encoding="utf-8"))
    assert models["bgnbd"]["params"]["r"] == pytest.approx(0.243, abs=0.0005)
    assert models["bgnbd"]["log_likelihood"] == pytest.approx(-9582.4, abs=0.1)
    assert models["paretonbd"]["log_likelihood"] == pytest.approx(-9595.0, abs=0.1)
    assert models["gammagamma"]["params"]["p"] == pytest.approx(6.25, abs=0.005)
    assert {row["label"] for row in models["holdout"]} >= {"0", "7+", "total"}
    assert "model" in models["churn_evaluation"]["auc"]
    # Every stage's time, in the order run; the scores' own stages inside theirs.
    stages = models["stage_seconds"]
    assert list(stages)[:2] == ["read file", "calibration fits"] and "writing files" in stages
    assert all(v >= 0 for v in stages.values())
    inner = models["customer_scores_stage_seconds"]
    assert "training churn model" in inner
    assert sum(inner.values()) <= stages["customer scores"] + 0.01
    # The value models judged on this holdout are the ones the scores were computed with.
    value = models["value_models"]
    assert models["scores"]["value_models"]["used"] == {
        "count_model": value["count_model"],
        "spend_model": value["spend_model"],
    }
    page_text = (out / "report.html").read_text(encoding="utf-8")
    assert "MBG/NBD" in page_text and "Pareto/NBD" in page_text
    customers = pd.read_csv(out / "customers.csv", dtype={"customer_id": str})
    assert len(customers) == 2357 and customers["customer_id"].is_unique
    for col in ("r_score", "segment_zh", "lifecycle_stage", "p_alive", "clv", "churn_risk"):
        assert col in customers
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("<svg") >= 5
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page and "<script" not in page


def test_daily_netting_is_shared_and_training_is_capped(master_tx):
    from kequn.analytics.churn import build_training_set
    from kequn.analytics.engine import prepare_daily, summarize_customers

    daily = prepare_daily(master_tx)
    assert prepare_daily(daily) is daily
    direct = summarize_customers(master_tx, "1997-09-30", "1998-06-30")
    shared = summarize_customers(daily, "1997-09-30", "1998-06-30")
    pd.testing.assert_frame_equal(direct, shared)

    cut = pd.Timestamp("1997-09-30").date()
    full, _ = build_training_set(daily, cut, 90, "week", None, max_customers=None)
    capped, labels = build_training_set(daily, cut, 90, "week", None, max_customers=5_000)
    again, _ = build_training_set(daily, cut, 90, "week", None, max_customers=5_000)
    assert len(full) > 3 * 20_000
    # The same 5,000 customers at each of the three snapshots, drawn reproducibly.
    assert capped["customer_id"].nunique() == 5_000 and len(capped) == 3 * 5_000
    assert set(capped["customer_id"]) == set(again["customer_id"]) and 0 < labels.mean() < 1
