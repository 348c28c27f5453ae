"""The CDNOW data the analytics tests need is there, or those tests fail (never skip)."""

from __future__ import annotations

import pytest

from tests.analytics import conftest


def test_missing_cdnow_file_fails_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(conftest, "DATA_DIR", tmp_path)
    with pytest.raises(pytest.fail.Exception) as failed:
        conftest._data_file("cdnow_master.txt")
    message = str(failed.value)
    assert "cdnow_master.txt" in message and "../shared/data" in message
    assert "\n" not in message


def test_cdnow_files_are_present():
    for name in ("cdnow_master.txt", "cdnow_sample.txt"):
        assert conftest._data_file(name).stat().st_size > 100_000
