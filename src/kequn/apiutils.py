"""Shared pieces of the REST API: cursor paging and permission checks."""

from __future__ import annotations

import base64
from typing import Annotated, Generic, TypeVar

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Schema
from ninja.errors import HttpError
from pydantic import Field

from kequn.security.services import require_perm

T = TypeVar("T")
MAX_LIMIT = 500
# An id in a path or filter: a larger number cannot be a row (64-bit keys) and would make
# SQLite raise OverflowError, so it is refused as a validation error instead.
ObjectId = Annotated[int, Field(ge=1, le=2**63 - 1)]


class Page(Schema, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(last_id: int) -> str:
    """Return the opaque cursor that continues after the given id."""
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """Return the id a cursor points after; a malformed cursor is a 400."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind != "id":
            raise ValueError
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise HttpError(400, "invalid cursor: pass the next_cursor of a previous page") from None


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
    require_perm(getattr(request, "auth", None) or request.user, perm)
