"""A day in words: the same for every card and report, whatever the server's locale."""

from __future__ import annotations

from datetime import date, timedelta

from practice.dates import long_date, short_date


def test_a_day_is_written_in_words() -> None:
    assert long_date(date(2025, 11, 28)) == "Friday 28 November 2025"
    assert short_date(date(2025, 11, 28)) == "28 November 2025"
    assert short_date(date(2026, 1, 5)) == "5 January 2026"


def test_every_day_reads_as_strftime_does_in_english() -> None:
    day = date(2024, 1, 1)
    while day < date(2028, 1, 1):
        assert long_date(day) == f"{day:%A} {day.day} {day:%B %Y}"
        assert short_date(day) == f"{day.day} {day:%B %Y}"
        day += timedelta(days=1)
