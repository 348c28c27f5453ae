"""Template filters printing figures in the one number format of kequn.dashboard.numbers."""

from __future__ import annotations

from typing import Any

from django import template

from kequn.dashboard import numbers

register = template.Library()


@register.filter
def count(value: Any) -> str:
    """Print a count with thousands separators: 28,986."""
    return numbers.format_number(value, numbers.COUNT)


@register.filter
def money(value: Any) -> str:
    """Print an amount with two decimals and thousands separators: 16,556,413.00."""
    return numbers.format_number(value, numbers.MONEY)


@register.filter
def percent(value: Any) -> str:
    """Print a percentage with one decimal and a percent sign: 97.3%."""
    return numbers.format_number(value, numbers.PERCENT)


@register.filter
def figure(value: Any, kind: str = numbers.COUNT) -> str:
    """Print a figure of the given kind (count, money or percent) in full."""
    return numbers.format_number(value, kind)


@register.filter
def compact(value: Any, kind: str = numbers.COUNT) -> str:
    """Print a figure short enough for a card: 1,655.6万 or 16.6M."""
    return numbers.format_compact(value, kind)


@register.filter
def change(value: Any) -> str:
    """Print a change in percent with its sign: +12.5%."""
    return numbers.format_change(value)


@register.filter
def whole_percent(value: Any) -> str:
    """Print a percentage rounded to a whole number, for small table cells: 14%."""
    return numbers.format_number(value, numbers.PERCENT, places=0)
