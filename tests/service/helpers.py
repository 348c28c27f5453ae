"""Shared set-up of the service tests: a China calendar, a policy, a customer."""

from __future__ import annotations

import base64
import datetime as dt
import re
import zlib
from zoneinfo import ZoneInfo

from kequn.security.actors import system_actor
from kequn.service.models import BusinessCalendar, SlaPolicy

BY = system_actor("tests")
CST = ZoneInfo("Asia/Shanghai")
OFFICE = {
    day: [["09:00", "12:00"], ["13:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")
}


def at(*args: int) -> dt.datetime:
    """Return a Beijing-time moment."""
    return dt.datetime(*args, tzinfo=CST)


def make_calendar(name: str = "China office", **fields) -> BusinessCalendar:
    return BusinessCalendar.objects.create(name=name, hours=fields.pop("hours", OFFICE), **fields)


def make_policy(calendar: BusinessCalendar | None = None, **fields) -> SlaPolicy:
    defaults = {
        "name": fields.pop("name", "standard"),
        "calendar": calendar or make_calendar(),
        "first_response_minutes": 60,
        "next_response_minutes": 120,
        "resolution_minutes": 8 * 60,
        "warn_minutes": 30,
    }
    defaults.update(fields)
    return SlaPolicy.objects.create(**defaults)


def pdf_text(content: bytes) -> str:
    """Return a PDF's page streams, inflated, as text (enough to find the figures)."""
    chunks = []
    for raw in re.findall(rb"stream\r?\n(.*?)endstream", content, re.S):
        data = raw.strip()
        if data.endswith(b"~>"):  # reportlab writes ASCII85 streams
            data = base64.a85decode(data[:-2].replace(b"\n", b""))
        try:
            chunks.append(zlib.decompress(data).decode("latin-1"))
        except zlib.error:
            chunks.append(data.decode("latin-1"))
    return "\n".join(chunks)
