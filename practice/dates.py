"""A day written out in words, as every card, message and report shows it.

Written from our own names of days and months, not strftime's `%A` and `%B`, so the words do
not change with the server's locale.
"""

from __future__ import annotations

from datetime import date

from practice.month import MONTH_NAMES

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def long_date(day: date) -> str:
    """Return 'Friday 28 November 2025'."""
    return f"{DAY_NAMES[day.weekday()]} {short_date(day)}"


def short_date(day: date) -> str:
    """Return '28 November 2025'."""
    return f"{day.day} {MONTH_NAMES[day.month - 1]} {day.year}"
