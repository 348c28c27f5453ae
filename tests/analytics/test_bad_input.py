"""Bad input: refunds, one-day customers, future dates, missing columns, too little data."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

from kequn.analytics import (
    AnalyticsInputError,
    normalize_transactions,
    read_transactions,
    score_customers,
    summarize_customers,
)
from kequn.analytics.cli import main


def _write(tmp_path, text, name="tx.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_refunds_net_within_the_day_and_never_count_as_purchases():
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "a", "b", "b"],
            "date": [
                "2024-01-01",
                "2024-01-01",
                "2024-02-01",
                "2024-02-01",
                "2024-03-01",
                "2024-01-05",
                "2024-01-09",
            ],
            "amount": [50.0, -20.0, 30.0, -30.0, -10.0, 0.0, 12.0],
        }
    )
    s = summarize_customers(tx, "2024-03-31").set_index("customer_id")
    # a: Jan 1 nets to 30 (purchase); Feb 1 nets to 0 via a refund (not a purchase);
    # Mar 1 is a refund-only day (not a purchase, but reduces net spend).
    assert s.loc["a", "frequency"] == 1
    assert s.loc["a", "monetary_total"] == pytest.approx(30.0)
    assert s.loc["a", "monetary_net"] == pytest.approx(20.0)
    assert s.loc["a", "refunds"] == pytest.approx(-10.0)
    # b: a free item (0 with no refund row) still counts as a purchase day.
    assert s.loc["b", "frequency"] == 2


def test_one_day_customers_have_zero_repeat_purchases():
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a"],
            "ts": ["2024-01-01 09:00", "2024-01-01 18:00", "2024-01-01 23:59"],
            "amount": [5.0, 6.0, 7.0],
        }
    )
    s = summarize_customers(tx, "2024-02-01")
    assert s.loc[0, "x"] == 0 and s.loc[0, "t_x"] == 0 and s.loc[0, "frequency"] == 1
    assert s.loc[0, "monetary_total"] == pytest.approx(18.0)


def test_future_timestamps_are_refused():
    tx = pd.DataFrame(
        {"customer_id": ["a", "b"], "ts": ["2024-01-01", "2031-05-01"], "amount": [1.0, 2.0]}
    )
    with pytest.raises(AnalyticsInputError, match=r"after now .*customer b at 2031-05-01"):
        score_customers(tx, datetime(2024, 6, 1))  # noqa: DTZ001 -- analytics takes naive times


def test_missing_column_is_named():
    with pytest.raises(AnalyticsInputError, match="missing required column 'amount'"):
        normalize_transactions(pd.DataFrame({"customer_id": ["a"], "ts": ["2024-01-01"]}))


def test_bad_cells_name_file_row_and_column(tmp_path):
    path = _write(tmp_path, "customer_id,date,amount\na,2024-01-01,5\nb,2024-13-45,6\n")
    with pytest.raises(
        AnalyticsInputError, match=r"tx\.csv, row 3, column 'date': not a date/time"
    ):
        read_transactions(path)
    path = _write(tmp_path, "customer_id,date,amount\na,2024-01-01,5\nb,2024-01-02,abc\n", "n.csv")
    with pytest.raises(AnalyticsInputError, match=r"row 3, column 'amount': not a number: 'abc'"):
        read_transactions(path)
    path = _write(tmp_path, "customer_id,date,amount\n,2024-01-01,5\n", "e.csv")
    with pytest.raises(AnalyticsInputError, match="row 2, column 'customer_id': empty customer id"):
        read_transactions(path)


def test_parquet_and_aliases(tmp_path):
    df = pd.DataFrame(
        {
            "Customer": ["x", "x", "y"],
            "order_date": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-01-03"]),
            "Revenue": [1.0, 2.0, 3.0],
        }
    )
    path = tmp_path / "tx.parquet"
    df.to_parquet(path)
    tx = read_transactions(path)
    assert tx.column_names[:3] == ["customer_id", "ts", "amount"]
    assert summarize_customers(tx, date(2024, 3, 1))["frequency"].tolist() == [2, 1]


def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys):
    missing = _write(tmp_path, "customer_id,date\na,2024-01-01\n")
    assert main([str(missing), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.count("\n") == 0
        and "missing required column 'amount'" in err
        and "Traceback" not in err
    )
    future = _write(tmp_path, "customer_id,date,amount\na,2024-01-01,5\na,2030-01-01,5\n", "f.csv")
    assert main([str(future), "--out", str(tmp_path / "o"), "--quiet", "--now", "2025-01-01"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "dated after now" in err
    assert main([str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "file not found" in capsys.readouterr().err
    assert (
        main(
            [
                str(future),
                "--out",
                str(tmp_path / "o"),
                "--quiet",
                "--calibration-end",
                "2024-13-01",
            ]
        )
        == 2
    )


def test_too_little_data_gives_rfm_only(tmp_path, capsys):
    path = _write(
        tmp_path,
        "customer_id,date,amount\na,2024-01-01,5\nb,2024-01-02,6\na,2024-02-01,-5\nc,2024-02-03,7\n",
    )
    out = tmp_path / "out"
    assert main([str(path), "--out", str(out), "--quiet", "--now", "2024-06-01"]) == 0
    customers = pd.read_csv(out / "customers.csv")
    assert set(customers["customer_id"]) == {"a", "b", "c"}
    assert customers["r_score"].notna().all()
    import json

    models = json.loads((out / "models.json").read_text(encoding="utf-8"))
    assert any("too few" in n for n in models["notes"])
    assert "bgnbd" not in models
    assert (out / "report.html").read_text(encoding="utf-8").count("<svg") >= 1
