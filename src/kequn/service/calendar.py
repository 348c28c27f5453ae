"""Business time: working hours per weekday, public holidays and make-up workdays (调休).

A calendar says, for each date, whether it is a working day and which hours count:
an operator's own entry for the date wins, then China's official schedule from the
``chinese-calendar`` package (holidays *and* the weekend days that are worked instead), or
another country's public holidays from ``holidays``; otherwise the weekday's hours apply.
A make-up workday (a Sunday worked for a holiday) uses the hours of the first weekday that
has any. SLA deadlines are business minutes added on this calendar, so a ticket opened on
30 September 2025 at 17:00 with eight working hours is due after the National Day week.

This module holds no Django model: the ``BusinessCalendar`` row builds a ``WorkCalendar``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Looking further than this for working time means the calendar has (almost) none.
MAX_DAYS = 3 * 366

Interval = tuple[int, int]  # minutes after midnight, [start, end)


class CalendarError(ValueError):
    """A calendar that cannot be used; the message names the day and the fix."""


def parse_clock(text: str, *, where: str) -> int:
    """Return minutes after midnight of "HH:MM" (24:00 allowed as the end of a day)."""
    try:
        hours, minutes = (int(part) for part in str(text).strip().split(":"))
    except ValueError:
        raise CalendarError(
            _("%(where)s: %(text)r is not a time; write HH:MM, e.g. 09:00")
            % {"where": where, "text": text}
        ) from None
    if not (0 <= hours <= 24 and 0 <= minutes < 60) or (hours == 24 and minutes):
        raise CalendarError(
            _("%(where)s: %(text)r is not a time of day (00:00 to 24:00)")
            % {"where": where, "text": text}
        )
    return hours * 60 + minutes


def format_clock(minutes: int) -> str:
    """Return "HH:MM" for minutes after midnight."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_intervals(spans: Iterable[Iterable[str]], *, where: str) -> tuple[Interval, ...]:
    """Return sorted (start, end) minute intervals; refuse empty, reversed or overlapping ones."""
    intervals = []
    for span in spans:
        parts = list(span)
        if len(parts) != 2:
            raise CalendarError(
                _("%(where)s: %(parts)r must be a pair [start, end], e.g. 09:00-12:00")
                % {"where": where, "parts": parts}
            )
        start, end = (parse_clock(p, where=where) for p in parts)
        if end <= start:
            raise CalendarError(
                _(
                    "%(where)s: %(start)s-%(end)s ends before it starts; "
                    "split hours past midnight over two days"
                )
                % {"where": where, "start": parts[0], "end": parts[1]}
            )
        intervals.append((start, end))
    intervals.sort()
    for (s1, e1), (s2, e2) in pairwise(intervals):
        if s2 < e1:
            raise CalendarError(
                _("%(where)s: %(first)s overlaps %(second)s; make the hours of a day not overlap")
                % {
                    "where": where,
                    "first": f"{format_clock(s1)}-{format_clock(e1)}",
                    "second": f"{format_clock(s2)}-{format_clock(e2)}",
                }
            )
    return tuple(intervals)


def parse_week(hours: Mapping[str, Iterable[Iterable[str]]]) -> dict[int, tuple[Interval, ...]]:
    """Return the week's hours by weekday number (0 = Monday) from {"mon": [["09:00","18:00"]]}."""
    unknown = set(hours) - set(WEEKDAYS)
    if unknown:
        raise CalendarError(
            _("working hours: unknown day %(days)s; use %(allowed)s")
            % {"days": ", ".join(sorted(unknown)), "allowed": ", ".join(WEEKDAYS)}
        )
    week = {i: parse_intervals(hours.get(day, ()), where=day) for i, day in enumerate(WEEKDAYS)}
    if not any(week.values()):
        raise CalendarError(_("working hours: no day has any; give at least one day its hours"))
    return week


@lru_cache(maxsize=4096)
def china_day(day: dt.date) -> bool | None:
    """Return whether China works on this date by the official schedule, None if not yet known."""
    import chinese_calendar  # noqa: PLC0415 -- loaded only by calendars that use it

    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:  # a year the installed package does not cover yet
        return None


@lru_cache(maxsize=64)
def country_holidays(country: str, year: int) -> frozenset[dt.date]:
    """Return a country's public holidays of one year (the ``holidays`` package)."""
    import holidays  # noqa: PLC0415 -- loaded only by calendars that use it

    try:
        return frozenset(holidays.country_holidays(country, years=year))
    except NotImplementedError:
        raise CalendarError(
            _(
                "country %(country)r is not known to the holidays package; use an ISO code such as CN"
            )
            % {"country": country}
        ) from None


@dataclass
class WorkCalendar:
    """Working hours, a country's holidays and the operator's own days, in one time zone."""

    week: dict[int, tuple[Interval, ...]]
    time_zone: str = "Asia/Shanghai"
    country: str = "CN"
    # The operator's entries by date: None = closed, else that day's hours.
    overrides: dict[dt.date, tuple[Interval, ...]] = field(default_factory=dict)
    _days: dict[dt.date, tuple[Interval, ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.tz = ZoneInfo(self.time_zone)
        self.workday_hours = next(h for _, h in sorted(self.week.items()) if h)

    def is_workday(self, day: dt.date) -> bool:
        """Return whether any hours of this date count."""
        return bool(self.hours_of(day))

    def hours_of(self, day: dt.date) -> tuple[Interval, ...]:
        """Return the working intervals of one date (empty on a day off)."""
        cached = self._days.get(day)
        if cached is None:
            cached = self._days[day] = self._compute_hours(day)
        return cached

    def _compute_hours(self, day: dt.date) -> tuple[Interval, ...]:
        if day in self.overrides:
            return self.overrides[day]
        weekly = self.week[day.weekday()]
        if self.country.upper() == "CN":
            works = china_day(day)
            if works is not None:
                if not works:
                    return ()
                # A weekend day worked in exchange for a holiday (调休) has a workday's hours.
                return weekly or self.workday_hours
        if self.country and day in country_holidays(self.country.upper(), day.year):
            return ()
        return weekly

    def add_minutes(self, start: dt.datetime, minutes: float) -> dt.datetime:
        """Return the moment `minutes` working minutes after `start` (aware datetimes)."""
        local = start.astimezone(self.tz)
        day = local.date()
        now = local.hour * 60 + local.minute + local.second / 60 + local.microsecond / 60e6
        left = float(minutes)
        for _day in range(MAX_DAYS):
            for begin, end in self.hours_of(day):
                if now >= end:
                    continue
                since = max(float(begin), now)
                if left <= end - since:
                    return self._at(day, since + left)
                left -= end - since
            day += dt.timedelta(days=1)
            now = 0.0
        raise CalendarError(
            _(
                "no working time within %(days)d days of %(start)s; check the hours "
                "and the closed days of the calendar"
            )
            % {"days": MAX_DAYS, "start": f"{start:%Y-%m-%d}"}
        )

    def minutes_between(self, start: dt.datetime, end: dt.datetime) -> float:
        """Return the working minutes from `start` to `end` (0 when end is not later)."""
        if end <= start:
            return 0.0
        a, b = start.astimezone(self.tz), end.astimezone(self.tz)
        total = 0.0
        day = a.date()
        if (b.date() - day).days > MAX_DAYS * 3:
            raise CalendarError(
                _("%(start)s to %(end)s is too long a span to count")
                % {"start": f"{start:%Y-%m-%d}", "end": f"{end:%Y-%m-%d}"}
            )
        while day <= b.date():
            lo = a.hour * 60 + a.minute + a.second / 60 if day == a.date() else 0
            hi = b.hour * 60 + b.minute + b.second / 60 if day == b.date() else 24 * 60
            for begin, stop in self.hours_of(day):
                total += max(0.0, min(stop, hi) - max(begin, lo))
            day += dt.timedelta(days=1)
        return total

    def _at(self, day: dt.date, minute: float) -> dt.datetime:
        whole = int(minute)
        seconds = round((minute - whole) * 60)
        naive = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=whole, seconds=seconds)
        return naive.replace(tzinfo=self.tz)
