"""Neutralise spreadsheet formulas in exported cells (CSV / formula injection, OWASP).

A customer named `=HYPERLINK("http://evil","click")` must reach Excel or LibreOffice as text,
not as a formula. Every CSV and XLSX export passes its cells through `escape_formula`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from kequn.security.inputs import strip_control

# Characters a spreadsheet may read as the start of a formula (OWASP's list, plus the
# full-width forms some spreadsheet programs also accept).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")
# A plain number such as +8613800138000 or -12.5 cannot run anything; leave it readable.
PLAIN_NUMBER = re.compile(r"[+-]?[0-9][0-9 .,]*")


def escape_formula(value: Any) -> Any:
    """Return a text cell that could start a formula prefixed with a quote; others unchanged.

    Control characters are removed first: Excel files cannot hold them (openpyxl raises
    IllegalCharacterError), and text stored before they were cleaned on the way in may.
    """
    if not isinstance(value, str):
        return value
    value = strip_control(value)
    if not value.startswith(FORMULA_STARTS):
        return value
    if PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value


def escape_row(values: Iterable[Any]) -> list[Any]:
    """Return a row of cells with every formula-like text neutralised."""
    return [escape_formula(value) for value in values]


# Excel refuses these in sheet names and allows at most 31 characters.
_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\\x00-\x1f\x7f-\x9f]")
SHEET_TITLE_LENGTH = 31


def make_sheet_title(title: str, taken: Iterable[str] = (), default: str = "Sheet") -> str:
    """Return a valid, unused Excel sheet name for a title: `Q1/Q2 [x]: *?` → `Q1Q2 x`."""
    clean = _SHEET_FORBIDDEN.sub("", str(title)).strip().strip("'")[:SHEET_TITLE_LENGTH]
    clean = clean.strip() or default
    # Excel compares sheet names without regard to case.
    used = {name.lower() for name in taken} | {"history"}  # reserved by Excel
    name, n = clean, 2
    while name.lower() in used:
        suffix = f" ({n})"
        name, n = clean[: SHEET_TITLE_LENGTH - len(suffix)] + suffix, n + 1
    return name
