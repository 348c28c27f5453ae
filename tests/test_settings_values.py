"""Number settings: read in their range, refused with one line naming the setting."""

from __future__ import annotations

import pytest

from kequn.conf import ConfigError, read_number, read_whole_number


@pytest.mark.pure
@pytest.mark.parametrize(
    ("text", "expected"), [(None, 7), ("", 7), (" 3 ", 3), ("1", 1), ("64", 64)]
)
def test_whole_numbers_in_range(monkeypatch, text, expected):
    if text is None:
        monkeypatch.delenv("KEQUN_SERVE_WORKERS", raising=False)
    else:
        monkeypatch.setenv("KEQUN_SERVE_WORKERS", text)
    assert read_whole_number("KEQUN_SERVE_WORKERS", 7) == expected


@pytest.mark.pure
@pytest.mark.parametrize("text", ["0", "65", "2.5", "two", "1e3"])
def test_whole_numbers_refused(monkeypatch, text):
    monkeypatch.setenv("KEQUN_SERVE_WORKERS", text)
    with pytest.raises(
        ConfigError, match=r"^KEQUN_SERVE_WORKERS='.*' must be a whole number from 1 to 64$"
    ):
        read_whole_number("KEQUN_SERVE_WORKERS", 2)


@pytest.mark.pure
@pytest.mark.parametrize(
    ("text", "expected"), [("", 20.0), ("0", 0.0), ("2.5", 2.5), ("1e3", 1000.0)]
)
def test_numbers_in_range(monkeypatch, text, expected):
    monkeypatch.setenv("KEQUN_SMS_RATE", text)
    assert read_number("KEQUN_SMS_RATE", 20.0, low=0, high=1_000_000) == expected


@pytest.mark.pure
@pytest.mark.parametrize("text", ["-1", "nan", "inf", "fast", "2000000"])
def test_numbers_refused(monkeypatch, text):
    monkeypatch.setenv("KEQUN_SMS_RATE", text)
    with pytest.raises(ConfigError, match=r"must be a number from 0 to 1000000$"):
        read_number("KEQUN_SMS_RATE", 20.0, low=0, high=1_000_000)
