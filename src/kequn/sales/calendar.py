"""Each rep's tasks and planned meetings as an iCalendar (.ics) feed at a signed, secret URL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.core import signing
from django.utils import timezone
from django.utils.crypto import salted_hmac

from kequn.sales.models import Activity, Task

SALT = "kequn.sales.calendar"


def mark_password(user: Any) -> str:
    """Return a URL-safe fingerprint of the user's password hash (never a part of the hash)."""
    return salted_hmac(SALT, user.password).hexdigest()[:16]


def make_feed_token(user: Any) -> str:
    """Return the secret token of a user's feed (changes when their password changes)."""
    return signing.Signer(salt=SALT).sign(f"{user.pk}.{mark_password(user)}")


def read_feed_token(token: str) -> tuple[int, str] | None:
    """Return (user id, password mark) from a token, or None when it was tampered with."""
    try:
        value = signing.Signer(salt=SALT).unsign(token)
    except signing.BadSignature:
        return None
    user_id, _sep, tail = value.partition(".")
    return (int(user_id), tail) if user_id.isdigit() else None


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _fold(line: str) -> list[str]:
    """Split a content line into 75-octet pieces as RFC 5545 asks (continuations start with space)."""
    pieces, current = [], ""
    for char in line:
        if len((current + char).encode()) > 74:
            pieces.append(current)
            current = " " + char
        else:
            current += char
    return [*pieces, current]


def build_feed(user: Any, host: str = "kequn", now: datetime | None = None) -> str:
    """Return the user's open tasks and their meetings and visits of the coming weeks."""
    now = now or timezone.now()
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Kequn//Sales//EN", "CALSCALE:GREGORIAN"]
    tasks = Task.objects.filter(owner_id=user.pk, done_at__isnull=True).order_by("due_at")[:2000]
    for task in tasks:
        lines += [
            "BEGIN:VEVENT",
            f"UID:task-{task.pk}@{host}",
            f"DTSTAMP:{_stamp(now)}",
            f"DTSTART:{_stamp(task.due_at)}",
            f"DTEND:{_stamp(task.due_at + timedelta(minutes=30))}",
            f"SUMMARY:{_escape(task.title)}",
        ]
        if task.notes:
            lines.append(f"DESCRIPTION:{_escape(task.notes)}")
        if task.remind_at:
            minutes = max(int((task.due_at - task.remind_at).total_seconds() // 60), 0)
            lines += ["BEGIN:VALARM", "ACTION:DISPLAY", f"TRIGGER:-PT{minutes}M",
                      f"DESCRIPTION:{_escape(task.title)}", "END:VALARM"]  # fmt: skip
        lines.append("END:VEVENT")
    planned = Activity.objects.filter(
        owner_id=user.pk,
        kind__in=[Activity.Kind.MEETING, Activity.Kind.VISIT],
        occurred_at__gte=now - timedelta(days=30),
    ).order_by("occurred_at")[:2000]
    for activity in planned:
        minutes = activity.duration_minutes or 60
        lines += [
            "BEGIN:VEVENT",
            f"UID:activity-{activity.pk}@{host}",
            f"DTSTAMP:{_stamp(now)}",
            f"DTSTART:{_stamp(activity.occurred_at)}",
            f"DTEND:{_stamp(activity.occurred_at + timedelta(minutes=minutes))}",
            f"SUMMARY:{_escape(activity.subject)}",
        ]
        if activity.location:
            lines.append(f"LOCATION:{_escape(activity.location)}")
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return "\r\n".join(piece for line in lines for piece in _fold(line)) + "\r\n"
