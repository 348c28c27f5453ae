"""Shared fixtures: the CDNOW reference files from the repo's sibling ``shared/data``."""

from __future__ import annotations

from pathlib import Path

import pytest

# /work/main/tests/analytics/conftest.py -> parents[2] is the repo root; data sits beside it.
DATA_DIR = (Path(__file__).resolve().parents[2] / "../shared/data").resolve()


def _data_file(name: str) -> Path:
    """Return a CDNOW file; fail (never skip) when it is missing, so CI cannot pass without it."""
    path = DATA_DIR / name
    if not path.exists():
        pytest.fail(
            f"reference data {path} not found: put the CDNOW files (cdnow_master.txt, "
            "cdnow_sample.txt) in ../shared/data beside the repository",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def cdnow_sample_path() -> Path:
    return _data_file("cdnow_sample.txt")


@pytest.fixture(scope="session")
def cdnow_master_path() -> Path:
    return _data_file("cdnow_master.txt")


@pytest.fixture(scope="session")
def cdnow_sample_summary(cdnow_sample_path):
    from kequn.analytics.engine import summarize_customers
    from kequn.analytics.io import read_transactions

    return summarize_customers(read_transactions(cdnow_sample_path), "1997-09-30", "1998-06-30")
