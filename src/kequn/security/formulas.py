"""Neutralise spreadsheet formulas in exported cells (CSV / formula injection, OWASP).

A customer named `=HYPERLINK("http://evil","click")` must reach Excel or LibreOffice as text,
not as a formula. Every CSV and XLSX export passes its cells through `escape_formula`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

# Characters a spreadsheet may read as the start of a formula (OWASP's list, plus the
# full-width forms some spreadsheet programs also accept).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")
# A plain number such as +8613800138000 or -12.5 cannot run anything; leave it readable.
PLAIN_NUMBER = re.compile(r"[+-]?[0-9][0-9 .,]*")


def escape_formula(value: Any) -> Any:
    """Return a text cell that could start a formula prefixed with a quote; others unchanged."""
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    if PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value


def escape_row(values: Iterable[Any]) -> list[Any]:
    """Return a row of cells with every formula-like text neutralised."""
    return [escape_formula(value) for value in values]
