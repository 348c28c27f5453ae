"""Business time on China's calendar: holidays, 调休 make-up workdays, lunch breaks, overlaps."""

from __future__ import annotations

import datetime as dt

import pytest

from kequn.service.calendar import CalendarError, WorkCalendar, parse_week
from tests.service.helpers import OFFICE, at

CN = WorkCalendar(week=parse_week(OFFICE), country="CN")


def test_makeup_sunday_2025_01_26_is_a_workday_with_office_hours():
    assert dt.date(2025, 1, 26).weekday() == 6
    assert CN.is_workday(dt.date(2025, 1, 26))
    assert CN.hours_of(dt.date(2025, 1, 26)) == ((540, 720), (780, 1080))
    # An ordinary Sunday is not.
    assert not CN.is_workday(dt.date(2025, 1, 19))


def test_national_day_week_2025_is_closed_and_the_makeup_saturday_open():
    for day in range(1, 9):
        assert not CN.is_workday(dt.date(2025, 10, day)), day
    assert CN.is_workday(dt.date(2025, 9, 28))  # Sunday worked before the holiday
    assert CN.is_workday(dt.date(2025, 10, 11))  # Saturday worked after it


def test_deadline_jumps_over_the_national_day_holiday():
    # 30 Sep 2025 17:00, 8 working hours: 1 h that day, 7 h on Thu 9 Oct (lunch skipped).
    due = CN.add_minutes(at(2025, 9, 30, 17, 0), 8 * 60)
    assert due == at(2025, 10, 9, 17, 0)


def test_deadline_counts_the_makeup_sunday():
    # Friday 24 Jan 2025 17:00 + 2 h: 1 h Friday, then Sunday 26 Jan (a workday) 09:00-10:00.
    assert CN.add_minutes(at(2025, 1, 24, 17, 0), 120) == at(2025, 1, 26, 10, 0)


def test_lunch_break_and_evening_are_skipped():
    assert CN.add_minutes(at(2025, 3, 3, 11, 30), 60) == at(2025, 3, 3, 13, 30)
    assert CN.add_minutes(at(2025, 3, 3, 20, 0), 30) == at(2025, 3, 4, 9, 30)
    # Counting the same span back gives the same minutes.
    assert CN.minutes_between(at(2025, 3, 3, 11, 30), at(2025, 3, 3, 13, 30)) == 60


def test_minutes_between_skips_the_holiday_week():
    assert CN.minutes_between(at(2025, 9, 30, 17, 0), at(2025, 10, 9, 17, 0)) == 8 * 60


def test_other_countries_use_the_holidays_package():
    us = WorkCalendar(week=parse_week(OFFICE), country="US", time_zone="America/New_York")
    assert not us.is_workday(dt.date(2025, 7, 4))  # Independence Day, a Friday
    assert us.is_workday(dt.date(2025, 7, 3))


def test_operator_entries_override_the_package():
    cal = WorkCalendar(
        week=parse_week(OFFICE), country="CN", overrides={dt.date(2025, 3, 5): ((600, 660),)}
    )
    assert cal.hours_of(dt.date(2025, 3, 5)) == ((600, 660),)


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        (
            {"tue": [["09:00", "12:00"], ["11:00", "18:00"]]},
            "tue: 09:00-12:00 overlaps 11:00-18:00",
        ),
        ({"mon": [["18:00", "09:00"]]}, "ends before it starts"),
        ({"mon": [["9h", "18:00"]]}, "is not a time"),
        ({"monday": [["09:00", "18:00"]]}, "unknown day monday"),
        ({}, "no day has any"),
    ],
)
def test_bad_hours_get_a_clear_error(hours, message):
    with pytest.raises(CalendarError, match=message):
        parse_week(hours)


def test_a_calendar_with_no_working_time_ends_with_an_error():
    cal = WorkCalendar(week=parse_week({"mon": [["09:00", "10:00"]]}), country="")
    cal.overrides = {dt.date(2025, 1, 6) + dt.timedelta(days=7 * i): () for i in range(200)}
    with pytest.raises(CalendarError, match="no working time"):
        cal.add_minutes(at(2025, 1, 1, 9), 61 * 60)
