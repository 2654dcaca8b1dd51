"""England working days, including the bank holidays a plain UK calendar misses."""

from __future__ import annotations

from datetime import date

import pytest

from practice.working_days import (
    add_working_days,
    first_working_day,
    is_working_day,
    last_working_day,
)


@pytest.mark.parametrize(
    ("year", "month", "first", "last"),
    [
        (2023, 9, date(2023, 9, 1), date(2023, 9, 29)),
        (2024, 1, date(2024, 1, 2), date(2024, 1, 31)),  # New Year's Day off
        (2024, 3, date(2024, 3, 1), date(2024, 3, 28)),  # Good Friday 29 March
        (2024, 4, date(2024, 4, 2), date(2024, 4, 30)),  # Easter Monday 1 April
        (2024, 5, date(2024, 5, 1), date(2024, 5, 31)),  # bank holidays 6 and 27 May
        (2025, 8, date(2025, 8, 1), date(2025, 8, 29)),  # August bank holiday 25 August
        (2026, 11, date(2026, 11, 2), date(2026, 11, 30)),
    ],
)
def test_first_and_last_working_days(year: int, month: int, first: date, last: date) -> None:
    assert first_working_day(year, month) == first
    assert last_working_day(year, month) == last


def test_england_bank_holidays_are_not_working_days() -> None:
    assert not is_working_day(date(2024, 4, 1))  # Easter Monday: England, not Scotland
    assert not is_working_day(date(2024, 8, 26))  # summer bank holiday in England
    assert is_working_day(date(2024, 8, 5))  # Scotland's summer holiday is a working day here
    assert not is_working_day(date(2024, 12, 25))
    assert not is_working_day(date(2024, 6, 1))  # a Saturday


def test_add_working_days_skips_weekends_and_holidays() -> None:
    assert add_working_days(date(2024, 3, 27), 2) == date(2024, 4, 2)
    assert add_working_days(date(2024, 4, 2), -2) == date(2024, 3, 27)
    assert add_working_days(date(2024, 3, 27), 0) == date(2024, 3, 27)
