"""Bounds on the values of a segment rule, so every valid rule compiles to SQL that runs.

A number must be finite and of a size money or counts can have (NaN and Infinity were
written into SQL as bare `nan`/`inf`); a window of days fits in a century; dates lie in
DATE_YEARS (year 1 or 9999 overflowed the time-zone conversion); texts hold no NUL or
lone surrogate and are not longer than a field can be.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

from kequn.security.inputs import (
    DATE_YEARS,
    BadInputError,
    clean_json,
    describe_bad_text,
    describe_year_range,
    is_in_years,
)

MAX_NUMBER = 10**15  # above any amount, count or score; still exact in a double
MAX_DAYS = 36_500  # a hundred years
MAX_TEXT = 200  # the longest text column a rule compares (name)
MAX_ITEMS = 1_000  # values in one "in" list


def check_number(path: str, name: str, value: Any) -> str | None:
    """Return why a rule number cannot be used, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path}: field '{name}' needs a finite number, got {value!r}"
    if abs(value) > MAX_NUMBER:
        return f"{path}: field '{name}' compares numbers up to {MAX_NUMBER:.0e}, got {value!r}"
    return None


def check_days(path: str, what: str, value: Any) -> str | None:
    """Return why a number of days cannot be used, or None (the type is checked before)."""
    if value > MAX_DAYS:
        return f"{path}: {what} must be at most {MAX_DAYS} days (100 years), got {value}"
    return None


def check_date(path: str, name: str, text: str) -> str | None:
    """Return why a rule date cannot be used, or None (the format is checked before)."""
    if not is_in_years(date.fromisoformat(text), DATE_YEARS):
        return (
            f"{path}: field '{name}' needs a date {describe_year_range(DATE_YEARS)}, got {text!r}"
        )
    return None


def check_text(path: str, name: str, text: str) -> str | None:
    """Return why a rule text cannot be used, or None."""
    if problem := describe_bad_text(text):
        return f"{path}: a value of field '{name}' {problem}"
    if len(text) > MAX_TEXT:
        return f"{path}: a value of field '{name}' is longer than {MAX_TEXT} characters"
    return None


def check_items(path: str, items: list[Any]) -> str | None:
    """Return why a list of values is too long, or None."""
    if len(items) > MAX_ITEMS:
        return f"{path}: at most {MAX_ITEMS} values in one list, got {len(items)}"
    return None


def check_id(path: str, name: str, value: int) -> str | None:
    """Return why an id (segment, tag) cannot be a row, or None."""
    if not 1 <= value <= 2**63 - 1:
        return f"{path}: field '{name}' needs an id between 1 and 2^63-1, got {value}"
    return None


def check_json(rule: Any, root: str) -> str | None:
    """Return where a rule nests too deep or holds a NUL or lone surrogate, or None."""
    try:
        clean_json(rule, root)
    except BadInputError as exc:
        return str(exc)
    return None
