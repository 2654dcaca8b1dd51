"""England working days: weekdays that are not England bank holidays."""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from functools import cache

import holidays


@cache
def _england_bank_holidays(year: int) -> frozenset[date]:
    # Without subdiv="ENG" the calendar lacks Easter Monday and the August bank holiday.
    return frozenset(holidays.country_holidays("GB", subdiv="ENG", years=year).keys())


def is_working_day(day: date) -> bool:
    """Return whether the day is a weekday and not an England bank holiday."""
    return day.weekday() < 5 and day not in _england_bank_holidays(day.year)


def first_working_day(year: int, month: int) -> date:
    """Return the first working day of a month."""
    day = date(year, month, 1)
    while not is_working_day(day):
        day += timedelta(days=1)
    return day


def last_working_day(year: int, month: int) -> date:
    """Return the last working day of a month."""
    day = date(year, month, calendar.monthrange(year, month)[1])
    while not is_working_day(day):
        day -= timedelta(days=1)
    return day


def add_working_days(day: date, count: int) -> date:
    """Return the date `count` working days after (or, if negative, before) `day`."""
    step = timedelta(days=1 if count >= 0 else -1)
    remaining = abs(count)
    while remaining:
        day += step
        if is_working_day(day):
            remaining -= 1
    return day
