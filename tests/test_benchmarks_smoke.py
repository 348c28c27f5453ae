"""Every benchmark runs at a small size (--smoke) and passes its own checks, so none rots.

Each script runs on the database this suite runs on: the SQLite run covers the SQLite side
and the scripts that bring their own scratch database, the PostgreSQL run the PostgreSQL
side and the PostgreSQL-only scripts. Speed targets are not judged at this size; the checks
of the outputs are (events stored = sent, the audit chain, counts that agree ...).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
ON_POSTGRES = os.environ.get("KEQUN_DATABASE_URL", "").startswith("postgres")
PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"

if ON_POSTGRES:
    RUNS = {
        "ingest_customers": ["--db", "postgresql"],
        "audit_append": ["--database", "postgresql"],
        "analytics_refresh": ["--database", "postgresql"],
        "demo_generate": ["--database-url", PG_SERVER],
        "events_batch": [],
        "loyalty_expiry": ["--database", "postgresql"],
        "loyalty_import": ["--database", "postgresql"],
        "loyalty_redeem": [],
        "segments_evaluate": [],
    }
else:
    RUNS = {
        "ingest_customers": ["--db", "sqlite"],
        "audit_append": ["--database", "sqlite"],
        "analytics_refresh": ["--database", "sqlite"],
        "demo_generate": [],
        "dashboard_render": [],
        "email_send": [],
        "engage_send": [],
        "journey_dates": [],
        "journey_latency": [],
        "list_export": [],
        "loyalty_expiry": [],
        "loyalty_import": [],
        "ratelimit_overhead": [],
        "recommend_train": [],
    }


def run_benchmark(name: str, args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """Run one benchmark script in smoke mode with scratch names of its own."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    env = {
        **os.environ,
        "KEQUN_DATA_DIR": str(tmp_path / "data"),
        "KEQUN_BENCH_TAG": f"smoke_{worker}_{os.getpid()}",
    }
    env.pop("KEQUN_DATABASE_URL", None)  # each script picks its own scratch database
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{name}.py"), "--smoke", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RUNS))
def test_benchmark_smoke_run_passes_its_checks(name, tmp_path):
    out = run_benchmark(name, RUNS[name], tmp_path)
    report = f"{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    assert out.returncode == 0, report
    assert "SMOKE run" in out.stdout and "conditions:" in out.stdout, report
    assert "\nPASS: " in out.stdout, report


@pytest.mark.slow
def test_benchmark_exits_non_zero_when_a_check_fails(tmp_path):
    # An unreachable Redis is a failed check: exit status 1 and the reason, not a skipped line.
    out = run_benchmark("ratelimit_overhead", ["--redis", "redis://127.0.0.1:9/0"], tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "FAIL: 1 of" in out.stdout
    assert "redis: the cache backend is unreachable" in out.stderr


if ON_POSTGRES:
    del test_benchmark_exits_non_zero_when_a_check_fails  # the SQLite run covers it
