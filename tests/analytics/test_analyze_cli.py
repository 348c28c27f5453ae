"""`kequn analyze` without a holdout: Pareto/NBD fitted in a second process, same answer."""

from __future__ import annotations

import json
import multiprocessing

import numpy as np
import pandas as pd
import pytest

from kequn.analytics import clv
from kequn.analytics.cli import main
from kequn.analytics.engine import summarize_customers
from kequn.analytics.errors import InsufficientDataError
from kequn.analytics.io import read_transactions
from kequn.analytics.scores import score_customers
from kequn.analytics.side import SideWork


def test_pareto_fit_in_a_second_process_is_the_in_process_fit(cdnow_sample_path, tmp_path):
    out = tmp_path / "report"
    assert main([str(cdnow_sample_path), "--out", str(out), "--quiet"]) == 0
    models = json.loads((out / "models.json").read_text(encoding="utf-8"))
    # The whole file is the calibration period: the same summary fitted here, in process.
    tx = read_transactions(cdnow_sample_path)
    cal = summarize_customers(tx, models["calibration_end"])
    here = clv.fit_paretonbd(cal["x"], cal["t_x"], cal["T"])
    there = models["paretonbd"]
    assert there["log_likelihood"] == pytest.approx(here.log_likelihood, rel=1e-12)
    for name, value in here.params.items():
        assert there["params"][name] == pytest.approx(value, rel=1e-9)
    seconds = models["stage_seconds"]["Pareto/NBD fit (alongside, in a second process)"]
    assert seconds > 0
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "paretonbd" in page and f"{there['params']['r']:.4g}" in page
    customers = pd.read_csv(out / "customers.csv", dtype={"customer_id": str})
    assert len(customers) == models["calibration"]["customers"]


def _cdnow_arrays(cdnow_sample_summary):
    return tuple(cdnow_sample_summary[c].to_numpy(float) for c in ("x", "t_x", "T"))


def test_side_work_without_fork_runs_in_process(cdnow_sample_summary, monkeypatch):
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    args = _cdnow_arrays(cdnow_sample_summary)
    with SideWork() as side:
        assert side.process is None
        side.submit(clv.fit_paretonbd, *args)
        fit, seconds = side.result()
    assert fit.params == clv.fit_paretonbd(*args).params and seconds > 0


def test_side_work_serves_calls_in_turn_and_passes_on_errors(cdnow_sample_summary):
    few = np.array([0.0, 1.0, 2.0])
    args = _cdnow_arrays(cdnow_sample_summary)
    with SideWork() as side:
        process = side.process
        assert process is not None and process.is_alive()
        side.submit(clv.fit_paretonbd, few, few, few + 1)
        with pytest.raises(InsufficientDataError, match="too few"):
            side.result()
        side.submit(clv.fit_bgnbd, *args)
        assert side.result()[0].params == clv.fit_bgnbd(*args).params
    assert not process.is_alive()


def test_a_failed_run_does_not_wait_for_the_side_work(cdnow_sample_summary):
    with pytest.raises(KeyError), SideWork() as side:
        process = side.process
        side.submit(clv.fit_paretonbd, *_cdnow_arrays(cdnow_sample_summary))
        raise KeyError("the run failed while the fit was going on")
    assert not process.is_alive()


def test_a_large_file_trains_on_a_sample_and_scores_everyone(
    cdnow_sample_path, tmp_path, monkeypatch
):
    from kequn.analytics import churn

    # As if the file's 2,357 customers were a large base: training draws 500 of them.
    monkeypatch.setattr(churn, "TRAINING_CUSTOMERS", 500)
    out = tmp_path / "report"
    assert main([str(cdnow_sample_path), "--out", str(out), "--quiet"]) == 0
    models = json.loads((out / "models.json").read_text(encoding="utf-8"))
    # One row per sampled customer who had bought by each of the monthly snapshots.
    assert 100 < models["scores"]["churn"]["n_train"] <= 500 * churn.TRAINING_SNAPSHOTS
    customers = pd.read_csv(out / "customers.csv", dtype={"customer_id": str})
    assert len(customers) == models["calibration"]["customers"] == 2357
    assert customers["churn_risk"].notna().all() and customers["clv"].notna().all()
    # The purchase model is fitted on every customer, not on the sample.
    assert models["scores"]["bgnbd"]["params"] == pytest.approx(models["bgnbd"]["params"])


def test_scores_with_a_side_process_are_the_scores_without(cdnow_sample_path):
    tx = read_transactions(cdnow_sample_path)
    alone = score_customers(tx, "1998-06-30")
    with SideWork() as side:
        beside = score_customers(tx, "1998-06-30", side=side)
    pd.testing.assert_frame_equal(beside, alone)
    # The side work was done: the churn model trained there (the models judged here).
    assert "comparison" in alone.attrs["models"]["value_models"]
    assert alone.attrs["models"]["churn"]["n_train"] > 100
    for part in ("value_models", "churn"):
        _assert_same(beside.attrs["models"][part], alone.attrs["models"][part])


def _assert_same(got, want, path=""):
    """Assert nested results equal; floats to 1e-12 (a mean summed in another order), NaN = NaN."""
    if isinstance(want, dict):
        assert set(got) == set(want), path
        for key in want:
            _assert_same(got[key], want[key], f"{path}/{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _assert_same(g, w, f"{path}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-12, nan_ok=True), path
    else:
        assert got == want, path


def test_plain_cells_read_as_the_checked_path_reads_them(tmp_path, monkeypatch):
    """The quick casts for plain numbers and ISO times must give what the checks give."""
    import kequn.analytics.io as io

    plain = tmp_path / "plain.csv"
    plain.write_text(
        "customer_id,timestamp,amount\n"
        "007,2024-05-31 14:00:00,12.5\n"
        "8,2024-06-01,-3\n"
        "9,2024-06-02T08:30:00.250,.5\n"
        "9,2024-06-03 08:30,1e3\n",
        encoding="utf-8",
    )
    mixed = tmp_path / "mixed.csv"  # a zone, a currency sign, separators: the checked path
    mixed.write_text(
        'customer_id,timestamp,amount\n7,2024-05-31T14:00:00Z,"¥1,234.5"\n8,20240601,2\n',
        encoding="utf-8",
    )
    quick = {p: io.read_transactions(p) for p in (plain, mixed)}
    monkeypatch.setattr(io, "_cast_plain_numbers", lambda col: None)
    monkeypatch.setattr(io, "_cast_plain_timestamps", lambda text: None)
    for path, table in quick.items():
        assert table.equals(io.read_transactions(path)), path.name
    assert quick[plain]["customer_id"].to_pylist()[0] == "007"
    assert quick[mixed]["amount"].to_pylist() == [1234.5, 2.0]
