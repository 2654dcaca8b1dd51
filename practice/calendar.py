"""The audit calendar: which standard each month, and the dates that drive the monthly cycle.

For every audited month of an audit year (September to July, none in December or August):

- requests go out on the month's **first working day**;
- audits are due by its **last working day**;
- moderation of a sample of the month's completed audits runs in "the first two weeks of
  the following month", which this bot takes to mean **up to and including the tenth working
  day of the following month** (two working weeks, so a bank holiday does not shorten it).

Working days are England working days (see `practice.working_days`). Audits the Practice
Quality Board added for a month (`additional_audits` in the framework file) appear beside
that month's timetabled standard, with the same dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from practice.framework import Framework
from practice.month import Month
from practice.working_days import add_working_days, first_working_day, last_working_day

MODERATION_WORKING_DAYS = 10
AUDIT_YEAR_FIRST_MONTH = 9


@dataclass(frozen=True)
class AuditMonth:
    """One audit of the calendar: a month, a standard and its dates."""

    month: str  # "2023-09"
    standard: int
    practitioner_kind: str | None  # "self" or "peer"; None for an additional audit
    requests_on: date
    due_on: date
    moderation_until: date
    additional: bool = False
    title: str = ""
    roles: tuple[str, ...] = ()

    @property
    def year(self) -> int:
        return Month.parse(self.month).year

    @property
    def calendar_month(self) -> int:
        return Month.parse(self.month).number

    def as_dict(self) -> dict[str, object]:
        """Return the entry in the documented `pqf-bot calendar --json` shape."""
        data: dict[str, object] = {
            "month": self.month,
            "standard": self.standard,
            "practitioner_kind": self.practitioner_kind,
            "requests_on": self.requests_on.isoformat(),
            "due_on": self.due_on.isoformat(),
            "moderation_until": self.moderation_until.isoformat(),
        }
        if self.additional:
            data.update(additional=True, title=self.title, roles=list(self.roles))
        return data


def moderation_until(year: int, month: int) -> date:
    """Return the last day of moderation for a month's audits."""
    following = Month(year, month).plus(1)
    start = first_working_day(following.year, following.number)
    return add_working_days(start, MODERATION_WORKING_DAYS - 1)


def audits_in_month(framework: Framework, year: int, month: int) -> list[AuditMonth]:
    """Return the timetabled audit (if any) and any additional audits of one calendar month."""
    key = str(Month(year, month))
    requests_on = first_working_day(year, month)
    due_on = last_working_day(year, month)
    until = moderation_until(year, month)
    found: list[AuditMonth] = []
    entry = framework.timetable_for_month(month)
    if entry is not None:
        found.append(
            AuditMonth(key, entry.standard, entry.practitioner_kind, requests_on, due_on, until)
        )
    for extra in framework.additional_audits:
        if extra.month == key:
            found.append(
                AuditMonth(key, extra.standard, None, requests_on, due_on, until,
                           additional=True, title=extra.title, roles=extra.roles)
            )  # fmt: skip
    return found


def audit_year(framework: Framework, year: int) -> list[AuditMonth]:
    """Return every audit of the audit year starting in September of `year`."""
    months = [(year, m) for m in range(AUDIT_YEAR_FIRST_MONTH, 13)] + [
        (year + 1, m) for m in range(1, AUDIT_YEAR_FIRST_MONTH)
    ]
    return [audit for y, m in months for audit in audits_in_month(framework, y, m)]


def audit_year_of(day: date) -> int:
    """Return the audit year (its September's calendar year) that a day falls in."""
    return day.year if day.month >= AUDIT_YEAR_FIRST_MONTH else day.year - 1


def is_additional(framework: Framework, month: Month, standard: int) -> bool:
    """Return whether a requested audit of this standard is one of the month's additional ones."""
    # A month without a timetabled standard has no "addition" to be apart from.
    entry = framework.timetable_for_month(month.number)
    return entry is not None and entry.standard != standard


def timetabled_audit(framework: Framework, year: int, month: int) -> AuditMonth | None:
    """Return the month's timetabled (not additional) audit, or None."""
    return next((a for a in audits_in_month(framework, year, month) if not a.additional), None)


def days_before_due(due_on: date, working_days: tuple[int, ...]) -> set[date]:
    """Return the dates that many working days before the due date (0 is the due date)."""
    return {add_working_days(due_on, -days) for days in working_days}
