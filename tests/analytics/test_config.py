"""Operators set the segment grid, lifecycle thresholds and horizons in a settings file."""

from __future__ import annotations

import pandas as pd
import pytest

from kequn.analytics import read_transactions, score_customers
from kequn.analytics.cli import main
from kequn.analytics.config import AnalyticsConfig, read_analytics_config
from kequn.analytics.errors import AnalyticsInputError

TWO_SEGMENTS = """
churn_horizon_days = 60
clv_months = 24

[lifecycle]
at_risk_gap_multiple = 1.5
churned_gap_multiple = 10.0

[[segments]]
name = "stars"
r = [4, 5]
f = [3, 5]
label_en = "Stars"
label_zh = "明星客户"

[[segments]]
name = "everyone_else"
"""


@pytest.fixture(scope="module")
def sample_tx(cdnow_sample_path):
    return read_transactions(cdnow_sample_path)


def test_no_file_means_the_defaults():
    config = read_analytics_config(None)
    assert config == AnalyticsConfig()
    assert config.churn_horizon_days == 90 and "champions" in config.segment_rules


def test_settings_change_segments_stages_and_horizons(sample_tx, tmp_path):
    path = tmp_path / "analytics.toml"
    path.write_text(TWO_SEGMENTS, encoding="utf-8")
    config = read_analytics_config(path)
    assert config.churn_horizon_days == 60 and config.clv_months == 24
    assert config.segment_rules == {"stars": {"r": (4, 5), "f": (3, 5)}, "everyone_else": {}}

    default = score_customers(sample_tx, "1998-06-30")
    custom = score_customers(sample_tx, "1998-06-30", **config.score_options())
    assert set(custom["segment"]) == {"stars", "everyone_else"}
    stars = custom["segment"] == "stars"
    assert (custom.loc[stars, "r_score"] >= 4).all() and (custom.loc[stars, "f_score"] >= 3).all()
    assert set(custom.loc[stars, "segment_zh"]) == {"明星客户"}
    # Silent for 1.5 usual gaps is already "at risk"; "churned" needs 10 gaps (or low P(alive)).
    counts = {
        name: frame["lifecycle_stage"].value_counts()
        for name, frame in (("default", default), ("custom", custom))
    }
    assert counts["custom"]["at_risk"] > counts["default"]["at_risk"]
    assert counts["custom"].get("churned", 0) < counts["default"]["churned"]
    # Expected purchases over 60 days instead of 90; CLV over 24 months instead of 12.
    assert custom["expected_purchases"].sum() < default["expected_purchases"].sum()
    assert custom["clv"].sum() > default["clv"].sum()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("horizon = 30", "unknown setting 'horizon'"),
        ("churn_horizon_days = 0", "churn_horizon_days must be between 1 and 3650"),
        ("clv_months = 'twelve'", "clv_months must be a whole number"),
        ("[lifecycle]\nchurned_gap_multiple = 1.0", "at_risk_gap_multiple must be below"),
        ("[lifecycle]\nat_risk_days = 3", "unknown lifecycle threshold 'at_risk_days'"),
        ("[[segments]]\nname = 'a'\nr = [5, 4]", "segments[0].r must be two scores from 1 to 5"),
        ("[[segments]]\nname = 'a'\n[[segments]]\nname = 'a'", "segment 'a' is listed twice"),
        ("segments = [", "not valid TOML"),
    ],
)
def test_mistakes_are_one_line_naming_file_and_key(tmp_path, text, message):
    path = tmp_path / "analytics.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AnalyticsInputError) as caught:
        read_analytics_config(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_store_keeps_only_the_standard_segment_names(tmp_path):
    path = tmp_path / "analytics.json"
    path.write_text('{"segments": [{"name": "stars", "r": [4, 5]}]}', encoding="utf-8")
    assert "stars" in read_analytics_config(path).segment_rules
    with pytest.raises(AnalyticsInputError, match="unknown segment 'stars'; the store keeps"):
        read_analytics_config(path, known_segments_only=True)


def test_analyze_takes_the_settings_file(cdnow_sample_path, tmp_path, capsys):
    good = tmp_path / "analytics.toml"
    good.write_text(TWO_SEGMENTS, encoding="utf-8")
    out = tmp_path / "report"
    assert main([str(cdnow_sample_path), "--out", str(out), "--config", str(good), "--quiet"]) == 0
    customers = pd.read_csv(out / "customers.csv")
    assert set(customers["segment"]) == {"stars", "everyone_else"}

    capsys.readouterr()
    bad = tmp_path / "bad.toml"
    bad.write_text("clv_months = -1", encoding="utf-8")
    assert main([str(cdnow_sample_path), "--out", str(out), "--config", str(bad), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"kequn analyze: error: {bad}: clv_months must be between 1 and 120, not -1"]
