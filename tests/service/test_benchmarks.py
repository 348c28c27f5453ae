"""The service benchmarks run at a small size (--smoke) and pass their own checks."""

from __future__ import annotations

import pytest

from tests.test_benchmarks_smoke import ON_POSTGRES, run_benchmark


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("service_sla_check", ["--database", "postgresql" if ON_POSTGRES else "sqlite"]),
        *([("service_ticket_list", [])] if ON_POSTGRES else []),
        ("survey_answer", []),
        ("feedback_text_eval", []),
    ],
)
def test_service_benchmark_smoke_run_passes_its_checks(name, args, tmp_path):
    out = run_benchmark(name, args, tmp_path)
    report = f"{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    assert out.returncode == 0, report
    assert "SMOKE run" in out.stdout and "conditions:" in out.stdout, report
    assert "\nPASS: " in out.stdout, report
