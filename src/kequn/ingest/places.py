"""Place names for importers: the canonical table lives in kequn.customers.places."""

from __future__ import annotations

from kequn.customers.places import (
    find_city,
    find_province,
    get_province_of_city,
    normalize_city,
    normalize_province,
)

__all__ = [
    "find_city",
    "find_province",
    "get_province_of_city",
    "normalize_city",
    "normalize_province",
]
