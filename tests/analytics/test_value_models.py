# ruff: noqa: N806 - T is the papers' name
"""One-time buyers: MBG/NBD, the order-value variants and the holdout choice between them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from kequn.analytics import churn, clv, valuemodels
from kequn.analytics.errors import AnalyticsInputError
from kequn.analytics.scores import score_customers


def test_mbgnbd_reproduces_the_reference_fit(cdnow_sample_summary):
    s = cdnow_sample_summary
    fit = clv.fit_mbgnbd(s.x, s["t_x"], s["T"])
    # Batislam et al.'s model as fitted by BTYDplus and lifetimes on the same sample.
    expected = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}
    for name, value in expected.items():
        assert fit.params[name] == pytest.approx(value, abs=0.002), name
    assert fit.log_likelihood == pytest.approx(-9582.14, abs=0.05)


def test_mbgnbd_gradient_matches_finite_differences(cdnow_sample_summary):
    s = cdnow_sample_summary
    objective = clv._mbgnbd_objective(*clv.compress_statistics(s.x, s["t_x"], s["T"]))
    at = np.log([0.4, 5.0, 1.2, 2.0])
    error = optimize.check_grad(lambda p: objective(p)[0], lambda p: objective(p)[1], at)
    assert error < 1e-3 * np.linalg.norm(objective(at)[1])


def test_one_time_buyers_can_be_gone_under_mbgnbd_but_not_bgnbd(cdnow_sample_summary):
    s = cdnow_sample_summary
    bg = clv.fit_bgnbd(s.x, s["t_x"], s["T"]).params
    mbg = clv.fit_mbgnbd(s.x, s["t_x"], s["T"]).params
    x, t_x = np.zeros(3), np.zeros(3)
    T = np.array([1.0, 10.0, 38.0])
    assert clv.bgnbd_probability_alive(bg, x, t_x, T).tolist() == [1.0, 1.0, 1.0]
    alive = clv.probability_alive("mbgnbd", mbg, x, t_x, T)
    assert np.all(alive < 1) and np.all(np.diff(alive) < 0)  # longer silence, less alive
    # Expected purchases and CLV use the same P(alive): a silent one-time buyer is worth less.
    ahead = clv.expected_purchases("mbgnbd", mbg, 39, x, t_x, T)
    value = clv.compute_clv(mbg, np.full(3, 10.0), x, t_x, T, model="mbgnbd")
    assert np.all(np.diff(ahead) < 0) and np.all(np.diff(value) < 0)


def test_first_order_value_shrinks_toward_the_population(cdnow_sample_summary):
    s = cdnow_sample_summary
    fit = valuemodels.fit_spend_model("first", s)
    assert 0 < fit.params["first_slope"] < 1
    one_time = pd.DataFrame(
        {"x": [0, 0], "repeat_avg": [np.nan, np.nan], "first_amount": [3.0, 300.0]}
    )
    small, large = valuemodels.expected_order_value("first", fit.params, one_time)
    population = fit.extra["mean_spend"]
    assert 3.0 < small < population < large < 300.0
    # The paper's convention gives both the population mean, whatever they bought.
    repeat = valuemodels.fit_spend_model("repeat", s)
    same = valuemodels.expected_order_value("repeat", repeat.params, one_time)
    assert same[0] == pytest.approx(same[1])


def test_holdout_comparison_reports_deciles_and_chooses(cdnow_sample_summary):
    result = valuemodels.compare_value_models(cdnow_sample_summary, 39.0)
    assert set(result["count_models"]) == {"bgnbd", "mbgnbd", "paretonbd"}
    assert set(result["spend_models"]) == {"repeat", "all", "first"}
    bg = result["count_models"]["bgnbd"]
    assert len(bg["deciles"]) == 10 and bg["actual_total"] == 1882
    assert bg["mean_p_alive_one_time_buyers"] == 1.0
    assert result["count_models"]["mbgnbd"]["mean_p_alive_one_time_buyers"] < 0.5
    errors = {k: v["choice_error"] for k, v in result["count_models"].items()}
    assert result["count_model"] == min(errors, key=errors.get)
    spend_errors = {k: v["choice_error"] for k, v in result["spend_models"].items()}
    assert result["spend_model"] == min(spend_errors, key=spend_errors.get)
    # Pinned: on this holdout BG/NBD is best calibrated and the first order helps.
    assert (result["count_model"], result["spend_model"]) == ("bgnbd", "first")


def test_calibration_error_is_zero_only_when_deciles_agree():
    table = valuemodels.calibrate_by_decile(np.arange(100.0), np.arange(100.0))
    assert valuemodels.calibration_error(table) == 0
    off = valuemodels.calibrate_by_decile(np.arange(100.0), np.arange(100.0) * 1.1)
    assert valuemodels.calibration_error(off) == pytest.approx(0.1 / 1.1)


def test_a_recent_regular_buyer_gets_no_silence_reason():
    features = pd.DataFrame(
        {
            "gap_ratio": [0.2, 2.5, 1.1],
            "frequency": [12, 5, 5],
            "spend_trend": [1.0, 1.0, 1.0],
            "p_alive": [0.99, 0.9, 0.9],
            "recency_days": [6, 75, 33],
        }
    )
    en, zh = churn.explain_churn_risk(features)
    assert en[0] == "" and zh[0] == ""
    assert en[1].startswith("no purchase for 2.5× the usual gap")
    assert en[2] == "no purchase for 33 days"


def _shop(seed: int = 3, n: int = 600) -> pd.DataFrame:
    """Return purchases where half the customers buy once and some of those leave at once."""
    rng = np.random.default_rng(seed)
    rows = []
    start = pd.Timestamp("2025-01-01")
    for c in range(n):
        first = start + pd.Timedelta(days=int(rng.integers(0, 300)))
        level = float(rng.lognormal(4, 0.8))
        rows.append((c, first, level))
        if rng.random() < 0.5:
            continue  # gone after the first purchase
        day = first
        while True:
            day += pd.Timedelta(days=int(rng.exponential(40)) + 1)
            if day > pd.Timestamp("2025-12-31") or rng.random() < 0.08:
                break
            rows.append((c, day, level * float(rng.lognormal(0, 0.3))))
    return pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])


def test_score_customers_records_and_uses_the_chosen_models():
    tx = _shop()
    scores = score_customers(tx, "2025-12-31")
    info = scores.attrs["models"]["value_models"]
    assert info["requested"] == {"count_model": "auto", "spend_model": "auto"}
    assert info["used"]["count_model"] == info["comparison"]["count_model"]
    assert info["used"]["spend_model"] == info["comparison"]["spend_model"]
    assert info["holdout"] == {"calibration_end": "2025-10-02", "holdout_end": "2025-12-31"}
    fixed = score_customers(tx, "2025-12-31", count_model="mbgnbd", spend_model="first")
    one_time = fixed["frequency"] == 1
    assert (fixed.loc[one_time, "p_alive"] < 1).all()
    # One cheap order, one dear order: their expected order values follow them, shrunk.
    spend = fixed.loc[one_time].set_index("monetary")["expected_spend"].sort_index()
    assert spend.iloc[0] < spend.iloc[-1]
    with pytest.raises(AnalyticsInputError, match="unknown value model 'nbd'"):
        score_customers(tx, "2025-12-31", count_model="nbd")
