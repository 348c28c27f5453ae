"""Cohort retention, repeat rate and order value on a table small enough to count by hand."""

from datetime import date

import pandas as pd
import pytest

from kequn.analytics import compute_cohort_activity, compute_cohorts
from kequn.analytics.errors import AnalyticsInputError


@pytest.fixture
def transactions() -> pd.DataFrame:
    rows = [
        # customer 1: January cohort, buys again in February and April (two rows on one day)
        (1, "2024-01-05", 100.0, "web"),
        (1, "2024-02-10", 50.0, "web"),
        (1, "2024-04-01", 20.0, "web"),
        (1, "2024-04-01", 10.0, "web"),
        # customer 2: January cohort, never again; a refund-only day is not a purchase
        (2, "2024-01-20", 80.0, "store"),
        (2, "2024-03-03", -80.0, "store"),
        # customer 3: February cohort, again in March
        (3, "2024-02-02", 40.0, "web"),
        (3, "2024-03-15", 60.0, "web"),
        # after the cut-off: ignored
        (3, "2024-06-01", 999.0, "web"),
    ]
    df = pd.DataFrame(rows, columns=["customer_id", "ts", "amount", "channel"])
    df["ts"] = pd.to_datetime(df["ts"])
    df["quantity"] = 1.0
    return df


def test_retention_repeat_rate_and_order_value(transactions):
    tables = compute_cohorts(transactions, date(2024, 4, 30))
    retention = tables.retention.set_index("cohort")
    # January: 2 customers; 1 of them active at ages 1 (Feb) and 3 (Apr), none at age 2.
    assert retention.loc["2024-01", 0] == 1.0
    assert retention.loc["2024-01", 1] == 0.5
    assert retention.loc["2024-01", 2] == 0.0
    assert retention.loc["2024-01", 3] == 0.5
    # February: customer 3, active again in March.
    assert retention.loc["2024-02", 1] == 1.0
    repeat = tables.repeat_rate.set_index("cohort")
    assert repeat.loc["2024-01", "repeat_customers"] == 1
    assert repeat.loc["2024-01", "repeat_rate"] == 0.5
    assert repeat.loc["2024-02", "repeat_rate"] == 1.0
    aov = tables.order_value.set_index("month")
    # April: one purchase day of 30 (two rows on one day are one purchase).
    assert aov.loc["2024-04", "purchase_days"] == 1
    assert aov.loc["2024-04", "average_order_value"] == 30.0
    assert "2024-06" not in aov.index


def test_activity_alone_matches_the_full_computation(transactions):
    full = compute_cohorts(transactions, date(2024, 4, 30), by="channel").activity
    alone = compute_cohort_activity(transactions, date(2024, 4, 30), by="channel")
    pd.testing.assert_frame_equal(alone, full)
    web = alone[(alone["channel"] == "web") & (alone["cohort"] == "2024-01")]
    assert web.set_index("age")["customers"].to_dict() == {0: 1, 1: 1, 3: 1}


def test_unknown_split_column_is_named(transactions):
    with pytest.raises(AnalyticsInputError, match="region"):
        compute_cohort_activity(transactions, date(2024, 4, 30), by="region")


def test_days_netted_once_give_the_same_tables(transactions):
    """kequn analyze passes the days it netted already; the tables must not change."""
    from kequn.analytics.engine import prepare_daily

    until = date(2024, 4, 30)
    from_rows = compute_cohorts(transactions, until)
    from_days = compute_cohorts(prepare_daily(transactions), until)
    for name in ("activity", "retention", "repeat_rate", "order_value"):
        pd.testing.assert_frame_equal(getattr(from_days, name), getattr(from_rows, name))
    with pytest.raises(AnalyticsInputError, match="channel"):
        compute_cohorts(prepare_daily(transactions), until, by="channel")
