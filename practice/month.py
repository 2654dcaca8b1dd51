"""A calendar month ("2023-09"): parsed, checked, compared, stepped, labelled and bounded here.

Months are stored and passed around as "YYYY-MM" text (the database's `month` column, the
framework file, links); `Month` is how code reads one. A range of months that someone asks
for (the Teams `report` command, `pqf-bot report`, a signed report link) is checked with
`check_range`, so no request can make the bot walk thousands of years of months.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
# The earliest month any report may cover: the framework's audits are all later than this,
# and a typing slip such as 0023-09 then gets a clear answer instead of an empty report.
EARLIEST = "2000-01"
# A range may reach this many months past the current one (requests are timetabled ahead).
MONTHS_AHEAD = 12
# The longest range a report covers, in months, unless the retention period is longer.
TEN_YEARS = 120

_PATTERN = re.compile(r"([0-9]{4})-([0-9]{2})")


class MonthError(ValueError):
    """Text that is not a month, or a range of months that is not allowed."""


@dataclass(frozen=True, order=True, slots=True)
class Month:
    """One calendar month of one year."""

    year: int
    number: int  # 1 (January) to 12

    def __post_init__(self) -> None:
        if not 1 <= self.number <= 12 or not 1 <= self.year <= 9999:
            raise MonthError(f"{self.year:04d}-{self.number:02d} is not a month")

    @classmethod
    def parse(cls, text: str) -> Month:
        """Return the month written 'YYYY-MM', or raise MonthError."""
        match = _PATTERN.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise MonthError(f"{str(text)[:20]!r} is not a month like 2024-09")
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def of(cls, day: date) -> Month:
        """Return the month a day falls in."""
        return cls(day.year, day.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.number:02d}"

    @property
    def label(self) -> str:
        """Return 'September 2023'."""
        return f"{MONTH_NAMES[self.number - 1]} {self.year:04d}"

    @property
    def short_label(self) -> str:
        """Return 'Sept 2023', 'Jan 2024': the Board's own abbreviations."""
        name = MONTH_NAMES[self.number - 1]
        return f"{'Sept' if name == 'September' else name[:3]} {self.year:04d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.number, 1)

    @property
    def last_day(self) -> date:
        return date(self.year, self.number, calendar.monthrange(self.year, self.number)[1])

    def plus(self, months: int) -> Month:
        """Return the month this many months later (earlier when negative)."""
        index = self.year * 12 + self.number - 1 + months
        return Month(index // 12, index % 12 + 1)

    def months_to(self, later: Month) -> int:
        """Return how many months `later` is after this one (negative if before)."""
        return (later.year - self.year) * 12 + later.number - self.number

    def through(self, last: Month) -> Iterator[Month]:
        """Yield every month from this one to `last` inclusive."""
        for step in range(self.months_to(last) + 1):
            yield self.plus(step)


def month_label(month: str) -> str:
    """Return 'September 2023' for '2023-09'."""
    return Month.parse(month).label


def short_month(month: str) -> str:
    """Return 'Sept 2023' for '2023-09'."""
    return Month.parse(month).short_label


def longest_range(retention_months: int) -> int:
    """Return how many months a report may cover: ten years, or the retention period if longer."""
    return max(TEN_YEARS, retention_months)


def check_range(first: Month, last: Month, *, today: date, longest: int = TEN_YEARS) -> None:
    """Raise MonthError, saying why, unless first..last is a range a report may cover."""
    latest = Month.of(today).plus(MONTHS_AHEAD)
    earliest = Month.parse(EARLIEST)
    if last < first:
        raise MonthError("the second month comes before the first")
    for month in (first, last):
        if month < earliest:
            raise MonthError(f"{month} is before {earliest}, the earliest month a report covers")
        if month > latest:
            raise MonthError(f"{month} is too far ahead: reports go up to {latest}")
    count = first.months_to(last) + 1
    if count > longest:
        raise MonthError(
            f"a report covers at most {longest} months ({longest // 12} years); "
            f"{first} to {last} is {count} months"
        )
