"""The sales benchmarks run at their smoke size and pass their agreement checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sales_board", "sales_forecast"])
def test_sales_benchmark_smoke_run(name, tmp_path):
    env = {**os.environ, "KEQUN_DATA_DIR": str(tmp_path / "data")}
    env.pop("KEQUN_DATABASE_URL", None)
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{name}.py"), "--smoke"],
        env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    report = f"{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    assert out.returncode == 0, report
    assert "SMOKE run" in out.stdout and "\nPASS: " in out.stdout, report
