"""Shared pieces of the REST API: cursor paging and permission checks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Schema
from ninja.errors import HttpError
from pydantic import AfterValidator, Field, WithJsonSchema

from kequn.security.inputs import DATETIME_YEARS, describe_year_range, is_in_years
from kequn.security.services import require_perm

T = TypeVar("T")
MAX_LIMIT = 500
# An id in a path or filter: a larger number cannot be a row (64-bit keys) and would make
# SQLite raise OverflowError, so it is refused as a validation error instead.
ObjectId = Annotated[int, Field(ge=1, le=2**63 - 1)]


def _check_datetime(value: datetime) -> datetime:
    if not is_in_years(value, DATETIME_YEARS):
        raise ValueError(
            f"the date must be {describe_year_range(DATETIME_YEARS)}, its UTC offset within ±14:00"
        )
    return value


# A date-time in a filter or body: year 1 or 9999 overflows the conversion to UTC, and no
# order, event or request is that old or that far ahead. The pattern tells API clients.
BoundedDateTime = Annotated[
    datetime,
    AfterValidator(_check_datetime),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": r"^(19[7-9][0-9]|20[0-9][0-9]|2100)-",
            "description": f"ISO 8601 date-time {describe_year_range(DATETIME_YEARS)}",
        }
    ),
]


class Page(Schema, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(last_id: int) -> str:
    """Return the cursor that continues after the given id (the id itself, as text)."""
    return str(last_id)


# The cursor is the last id of the previous page, published with this pattern.
CURSOR_PATTERN = r"^[0-9]{1,19}$"


def decode_cursor(cursor: str) -> int:
    """Return the id a cursor points after; a malformed cursor is a 400."""
    if cursor.isascii() and cursor.isdigit() and len(cursor) <= 19:
        return int(cursor)
    raise HttpError(400, "invalid cursor: pass the next_cursor of a previous page")


def describe_paging(schema: dict) -> None:
    """Publish the bounds of every list's limit and cursor in the OpenAPI schema."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            names = {parameter.get("name") for parameter in operation.get("parameters", [])}
            if "cursor" not in names:
                continue  # only the paged lists go through paginate()
            for parameter in operation.get("parameters", []):
                if parameter.get("in") != "query":
                    continue
                if parameter.get("name") == "limit":
                    parameter["schema"].update({"minimum": 1, "maximum": MAX_LIMIT})
                elif parameter.get("name") == "cursor":
                    parameter["schema"] = {
                        "type": "string",
                        "pattern": CURSOR_PATTERN,
                        "description": "next_cursor of the previous page",
                    }


def paginate(queryset: QuerySet, cursor: str | None, limit: int) -> dict:
    """Return one page, newest id first, with the cursor of the next page."""
    if limit < 1 or limit > MAX_LIMIT:
        raise HttpError(400, f"limit must be between 1 and {MAX_LIMIT}")
    queryset = queryset.order_by("-id")
    if cursor:
        queryset = queryset.filter(id__lt=decode_cursor(cursor))
    rows = list(queryset[: limit + 1])
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return {"items": rows[:limit], "next_cursor": next_cursor}


def check_perm(request: HttpRequest, perm: str) -> None:
    """Raise a 403 unless the authenticated user holds the permission."""
    # The token's user, else the session's (an AnonymousUser holds no permission).
    user: Any = getattr(request, "auth", None) or request.user
    require_perm(user, perm)


# No key of a JSON object may hold a NUL (the parser refuses it, as PostgreSQL cannot store it).
NO_NUL_KEYS = {"pattern": "^[^\\u0000]*$"}


def describe_object_keys(node: object) -> None:
    """Say in every object schema of the OpenAPI document that keys hold no NUL character."""
    if isinstance(node, dict):
        if node.get("type") == "object" or "properties" in node:
            node.setdefault("propertyNames", NO_NUL_KEYS)
        for value in node.values():
            describe_object_keys(value)
    elif isinstance(node, list):
        for value in node:
            describe_object_keys(value)
