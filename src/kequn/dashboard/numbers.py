"""One number format per language for pages, Excel and PDF: counts, money, percentages.

Every figure is rounded here, half up on its decimal value, so the page and the PDF print
the same digits (Python's float formatting rounds half to even on the binary value, Django's
floatformat half up on the decimal one: 97.25 showed as 97.3 % on screen and 97.2 % in the PDF).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.utils.translation import get_language

COUNT, MONEY, PERCENT = "count", "money", "percent"
DASH = "—"
# Compact units: Chinese counts in 万 (10^4) and 亿 (10^8), English in K, M and B.
ZH_UNITS = ((Decimal(100_000_000), "亿"), (Decimal(10_000), "万"))
EN_UNITS = ((Decimal(1_000_000_000), "B"), (Decimal(1_000_000), "M"), (Decimal(1_000), "K"))
# Values below this many units are short enough to print in full.
COMPACT_FROM = {"zh": Decimal(100_000), "en": Decimal(100_000)}
DECIMALS = {COUNT: 0, MONEY: 2, PERCENT: 1}


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def round_half_up(value: Any, places: int) -> Decimal | None:
    """Round a number half up to the given decimal places (None for no number)."""
    number = _decimal(value)
    if number is None:
        return None
    return number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _language() -> str:
    return "zh" if (get_language() or "").lower().startswith("zh") else "en"


def _grouped(number: Decimal, places: int) -> str:
    # Both languages group thousands with a comma and use a decimal point (GB/T 15835 style
    # as printed by Chinese retail software, and English).
    return f"{number:,.{places}f}"


def format_number(value: Any, kind: str = COUNT, places: int | None = None) -> str:
    """Format a count, money amount or percentage in full, e.g. 28,986 · 16,556,413.00 · 97.3%."""
    places = DECIMALS.get(kind, 0) if places is None else places
    number = round_half_up(value, places)
    if number is None:
        return DASH
    text = _grouped(number, places)
    return f"{text}%" if kind == PERCENT else text


def format_compact(value: Any, kind: str = COUNT) -> str:
    """Format a figure short enough for a card: 1,655.6万 in Chinese, 16.6M in English."""
    number = _decimal(value)
    if number is None:
        return DASH
    if kind == PERCENT:
        return format_number(number, PERCENT)
    language = _language()
    if abs(number) < COMPACT_FROM[language]:
        return format_number(number, kind)
    for size, unit in ZH_UNITS if language == "zh" else EN_UNITS:
        if abs(number) >= size:
            return f"{_grouped(round_half_up(number / size, 1), 1)}{unit}"
    return format_number(number, kind)


def format_change(value: Any) -> str:
    """Format a change in percent with its sign, e.g. +12.5% or -3.0%."""
    number = round_half_up(value, 1)
    if number is None:
        return DASH
    return f"{'+' if number > 0 else ''}{_grouped(number, 1)}%"


def get_excel_format(kind: str) -> str:
    """Return the Excel number format of a kind of figure (percentages stored as fractions)."""
    return {COUNT: "#,##0", MONEY: "#,##0.00", PERCENT: "0.0%"}.get(kind, "General")


def to_excel(value: Any, kind: str) -> float | int | None:
    """Return the value Excel stores for a figure: rounded like the page, percent as a fraction."""
    number = round_half_up(value, DECIMALS.get(kind, 2))
    if number is None:
        return None
    if kind == COUNT:
        return int(number)
    if kind == PERCENT:
        return float(number / 100)
    return float(number)
