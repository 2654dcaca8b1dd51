"""Months: read, stepped, labelled, and the ranges a report may cover, wherever they come in."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from admin.cli import main
from bot.commands import ReportMonthsError, ReportRangeError, report_months
from bot.links import InvalidLinkError, LinkClaims, sign, verify
from practice.framework import Framework
from practice.month import Month, MonthError, check_range, longest_range, month_label, short_month
from practice.report import AuditFacts, build_report

TODAY = date(2026, 11, 30)
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
SECRET = "a-secret-long-enough-for-hmac-signing"


def test_a_month_is_read_strictly() -> None:
    assert Month.parse("2023-09") == Month(2023, 9)
    assert str(Month(2023, 9)) == "2023-09"
    for bad in ("2023-9", "2023-13", "2023-00", "23-09", "2023-09-01", " 2023-09", "٢٠٢٣-٠٩", ""):
        with pytest.raises(MonthError):
            Month.parse(bad)
    with pytest.raises(MonthError, match="is not a month"):
        Month.parse(202309)  # type: ignore[arg-type]


def test_months_step_compare_and_label() -> None:
    september = Month(2023, 9)
    assert september.plus(4) == Month(2024, 1)
    assert september.plus(-9) == Month(2022, 12)
    assert september.plus(-12) == Month(2022, 9)
    assert september.months_to(Month(2024, 2)) == 5
    assert Month(2023, 12) < Month(2024, 1) < Month(2024, 2)
    assert [str(m) for m in Month(2023, 11).through(Month(2024, 2))] == [
        "2023-11", "2023-12", "2024-01", "2024-02",
    ]  # fmt: skip
    assert list(Month(2024, 2).through(Month(2023, 11))) == []
    assert (september.label, september.short_label) == ("September 2023", "Sept 2023")
    assert month_label("2024-01") == "January 2024"
    assert short_month("2024-06") == "Jun 2024"
    assert Month(2024, 2).last_day == date(2024, 2, 29)
    assert Month(2023, 12).last_day == date(2023, 12, 31)
    assert Month.of(date(2026, 11, 30)).first_day == date(2026, 11, 1)


def test_a_report_covers_at_most_ten_years_of_sensible_months() -> None:
    check_range(Month(2016, 9), Month(2026, 8), today=TODAY)  # exactly 120 months
    with pytest.raises(MonthError, match="at most 120 months"):
        check_range(Month(2016, 8), Month(2026, 8), today=TODAY)
    with pytest.raises(MonthError, match="before 2000-01"):
        check_range(Month(1, 1), Month(2000, 1), today=TODAY)
    with pytest.raises(MonthError, match="too far ahead: reports go up to 2027-11"):
        check_range(Month(2026, 1), Month(2027, 12), today=TODAY)
    with pytest.raises(MonthError, match="comes before"):
        check_range(Month(2024, 2), Month(2023, 9), today=TODAY)
    # A retention period longer than ten years lengthens the longest report to match.
    assert longest_range(24) == 120
    assert longest_range(180) == 180
    check_range(Month(2012, 1), Month(2026, 11), today=TODAY, longest=180)


def test_the_teams_command_refuses_a_period_beyond_the_limit() -> None:
    assert report_months("report", today=TODAY) is None
    assert report_months("report 2023-09 to 2024-02", today=TODAY) == (
        Month(2023, 9),
        Month(2024, 2),
    )
    with pytest.raises(ReportRangeError, match="before 2000-01"):
        report_months("report 0001-01 to 9999-12", today=TODAY)
    with pytest.raises(ReportRangeError, match="at most 120 months"):
        report_months("report 2010-01 to 2026-11", today=TODAY)
    with pytest.raises(ReportRangeError, match="comes before"):
        report_months("report 2024-02 to 2023-09", today=TODAY)
    with pytest.raises(ReportMonthsError, match="2023-13 is not a month") as unread:
        report_months("report 2023-13", today=TODAY)
    assert not isinstance(unread.value, ReportRangeError)


def test_a_report_link_with_months_beyond_the_limit_is_refused() -> None:
    expires = NOW + timedelta(minutes=15)
    good = LinkClaims("report", 7, expires, "2023-09", "2024-02")
    assert verify(sign(good, SECRET), SECRET, NOW) == good
    for first, last in (("0001-01", "9999-12"), ("2024-02", "2023-09"), ("2023-9", "2023-10")):
        token = sign(LinkClaims("report", 7, expires, first, last), SECRET)
        with pytest.raises(InvalidLinkError, match="cannot be read"):
            verify(token, SECRET, NOW)
    for_retention = sign(LinkClaims("report", 7, expires, "2012-01", "2026-11"), SECRET)
    with pytest.raises(InvalidLinkError):
        verify(for_retention, SECRET, NOW)
    assert verify(for_retention, SECRET, NOW, longest=180).first_month == "2012-01"


def test_the_command_line_refuses_a_period_beyond_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/pqf.db")
    assert main(["migrate"]) == 0
    capsys.readouterr()
    started = time.perf_counter()
    status = main(
        ["report", "--month", "0001-01", "--to", "9999-12", "--format", "json",
         "--out", str(tmp_path / "r.json")]
    )  # fmt: skip
    assert status == 1
    assert "before 2000-01, the earliest month a report covers" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()
    assert time.perf_counter() - started < 5


def test_the_report_figures_take_no_longer_for_a_longer_period(framework: Framework) -> None:
    audit = AuditFacts(
        audit_id=1, month="2023-09", standard=1, kind="self", status="submitted",
        due_on=date(2023, 9, 29), submitted_on=date(2023, 9, 20), auditor_id=1,
        auditor_role="SW", team="Mendip", subject_id=1, ratings={"1.1": "meets"},
    )  # fmt: skip
    started = time.perf_counter()
    # Walking every month of 0001-01 to 9999-12 for each criterion took minutes.
    report = build_report(framework, first_month="0001-01", last_month="9999-12", audits=[audit])
    assert time.perf_counter() - started < 1
    assert [p.month for p in report.trend["1.1"]] == ["2023-09"]
