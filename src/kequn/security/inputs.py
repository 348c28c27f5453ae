"""Limits on what comes in from outside: control characters, NULs, lone surrogates, nesting, dates.

Every door (API, /v1/* events, imports, back office) uses the same rules, so a value that
one door refuses is not stored through another:

- C0 control characters other than tab and newline, DEL and the C1 controls are removed
  (nobody types them; they break Excel exports and are invisible on screen). A carriage
  return is removed too, so Windows line ends become plain newlines.
- NUL characters and lone surrogates are refused: PostgreSQL cannot store a NUL, and a
  lone surrogate cannot be written as UTF-8 at all.
- JSON nests at most MAX_JSON_DEPTH levels.
- Dates lie in DATE_YEARS, date-times in DATETIME_YEARS: outside them the database or the
  time-zone conversion overflows, and no customer bought anything in year 1 or 9999.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from django.db import models

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
MAX_JSON_DEPTH = 32
# Dates of birth, rule dates; date-times of orders, events, requests and filters. Local
# mean time before 1901 gives Asia/Shanghai an offset of +08:05:43, which is not RFC 3339.
DATE_YEARS = (1900, 2100)
DATETIME_YEARS = (1970, 2100)
MAX_UTC_OFFSET = timedelta(hours=14)


class BadInputError(ValueError):
    """A value that cannot be stored; the message says where and what to do."""


def strip_control(text: str) -> str:
    """Return the text without control characters (tab and newline are kept)."""
    if text.isprintable():
        return text
    return _CONTROL.sub("", text)


def describe_bad_text(text: str) -> str | None:
    """Return what makes the text unstorable (a NUL, a lone surrogate), or None."""
    if "\x00" in text:
        return "contains a NUL character (\\u0000): remove it and send again"
    if _SURROGATE.search(text):
        return "contains a lone UTF-16 surrogate (\\ud800-\\udfff): send valid Unicode text"
    return None


def clean_json(value: Any, where: str = "body", *, strip: bool = True) -> Any:
    """Return parsed JSON with control characters removed from every text (keys too).

    Raise BadInputError naming the place of a NUL, a lone surrogate or nesting deeper than
    MAX_JSON_DEPTH. Iterative, so a deeply nested value cannot exhaust the Python stack.
    With strip=False the texts are only checked (the API validates lengths on what was
    sent; the models clean control characters when they are saved).
    """
    clean = strip_control if strip else str
    root: list[Any] = [value]
    # (container, key in it, value, path, depth)
    stack: list[tuple[Any, Any, Any, str, int]] = [(root, 0, value, where, 0)]
    while stack:
        parent, key, item, path, depth = stack.pop()
        if isinstance(item, str):
            if problem := describe_bad_text(item):
                raise BadInputError(f"{path} {problem}")
            parent[key] = clean(item)
        elif isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise BadInputError(
                    f"{path} nests deeper than {MAX_JSON_DEPTH} levels: flatten the JSON"
                )
            if isinstance(item, list):
                copy: Any = list(item)
                parent[key] = copy
                for index, child in enumerate(copy):
                    stack.append((copy, index, child, f"{path}[{index}]", depth + 1))
            else:
                copy = {}
                for name, child in item.items():
                    text = str(name)
                    if problem := describe_bad_text(text):
                        raise BadInputError(f"{path} has a key that {problem}")
                    copy[clean(text)] = child
                parent[key] = copy
                for name, child in list(copy.items()):
                    stack.append((copy, name, child, f"{path}.{name}", depth + 1))
    return root[0]


def describe_year_range(years: tuple[int, int]) -> str:
    """Return the allowed range as text, e.g. 'between 1970-01-01 and 2100-12-31'."""
    return f"between {years[0]}-01-01 and {years[1]}-12-31"


def is_in_years(value: date, years: tuple[int, int]) -> bool:
    """Return whether a date or date-time falls within the given years (inclusive)."""
    if isinstance(value, datetime):
        # Real zones lie within ±14:00; PostgreSQL refuses offsets past ±15:59 with an error.
        offset = value.utcoffset()
        if offset is not None and abs(offset) > MAX_UTC_OFFSET:
            return False
    return years[0] <= value.year <= years[1]


# Apps whose text columns hold what people and files typed; the audit trail and keys are
# stored exactly as written (the audit hash chain covers them).
CLEANED_APPS = frozenset(
    {"customers", "commerce", "events", "ingest", "segments", "recommend", "privacy", "dashboard"}
)


def strip_control_before_save(sender: type, instance: Any, raw: bool = False, **kwargs) -> None:
    """Remove control characters from every text field of a model about to be saved.

    Connected to pre_save, so the back office, services and jobs all store clean text;
    bulk imports clean their cells in the readers. Loading a fixture or backup (raw) keeps
    the data as it was.
    """
    if raw or sender._meta.app_label not in CLEANED_APPS:
        return
    for field in sender._meta.concrete_fields:
        if isinstance(field, models.CharField | models.TextField):
            value = getattr(instance, field.attname, None)
            if isinstance(value, str) and not value.isprintable():
                setattr(instance, field.attname, strip_control(value))
