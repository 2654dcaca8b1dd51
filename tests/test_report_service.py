"""Make reports: the same figures in a worker, the event loop never waits, one path for all."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, date, datetime
from functools import partial
from zoneinfo import ZoneInfo

import pytest

from bot.pages import report_page_html
from practice.framework import Framework
from practice.report import Report, ReportScope
from reports.service import (
    Asker,
    ReportMaker,
    ReportRequest,
    ReportService,
    ReportSummary,
    report_and_names,
    summarise,
)
from storage import access_log, roster
from storage.audit_import import import_audits
from storage.csv_import import import_staff
from storage.database import Database
from tests.conftest import ROOT

LONDON = ZoneInfo("Europe/London")
AS_OF = date(2024, 3, 1)
HISTORY = ROOT / "examples" / "history"
REQUEST = ReportRequest("2023-09", "2024-02", ReportScope(), AS_OF)


@pytest.fixture
async def history(sqlite_url: str, framework: Framework) -> AsyncIterator[Database]:
    database = Database(sqlite_url)
    async with database.session() as session:
        staff = (HISTORY / "staff.csv").read_text(encoding="utf-8")
        assert (await import_staff(session=session, framework=framework, text=staff)).ok
        audits = (HISTORY / "audits-2023-09.csv").read_text(encoding="utf-8")
        assert (await import_audits(session=session, framework=framework, text=audits)).ok
    yield database
    await database.dispose()


def slow_summary(seconds: float, report: Report, names: dict[int, str]) -> ReportSummary:
    """Stand for a long report: hold the process that makes it for `seconds`."""
    time.sleep(seconds)
    return summarise(report, names)


async def _longest_pause(work: asyncio.Future[object]) -> float:
    """Return the longest the event loop went without running a task while `work` ran."""
    longest, last = 0.0, time.perf_counter()
    while not work.done():
        await asyncio.sleep(0.005)
        now = time.perf_counter()
        longest, last = max(longest, now - last), now
    return longest


async def test_a_worker_makes_the_same_report_as_the_bot_itself(
    history: Database, framework: Framework
) -> None:
    here = ReportMaker(database=history, framework=framework, zone=LONDON)
    away = ReportMaker(database=history, framework=framework, zone=LONDON, workers=1)
    try:
        page = partial(report_page_html, AS_OF)
        assert await away.make(REQUEST, summarise) == await here.make(REQUEST, summarise)
        assert await away.make(REQUEST, page) == await here.make(REQUEST, page)
        summary = await away.make(REQUEST, summarise)
        assert summary.completed > 0
        assert summary.period == "September 2023 to February 2024"
    finally:
        away.close()


async def test_a_long_report_does_not_stop_the_event_loop(
    history: Database, framework: Framework
) -> None:
    away = ReportMaker(database=history, framework=framework, zone=LONDON, workers=1)
    here = ReportMaker(database=history, framework=framework, zone=LONDON)
    try:
        await away.make(REQUEST, summarise)  # the worker has started
        work = asyncio.ensure_future(away.make(REQUEST, partial(slow_summary, 1.0)))
        assert await _longest_pause(work) < 0.5
        assert (await work).completed > 0
        # Made in the bot's own process, the same report stops everything until it is done.
        work = asyncio.ensure_future(here.make(REQUEST, partial(slow_summary, 1.0)))
        assert await _longest_pause(work) >= 1.0
    finally:
        away.close()


def die(report: Report, names: dict[int, str]) -> ReportSummary:
    """Stand for a worker killed while making a report (out of memory, say)."""
    os._exit(1)


async def test_reports_go_on_after_a_worker_dies(history: Database, framework: Framework) -> None:
    away = ReportMaker(database=history, framework=framework, zone=LONDON, workers=1)
    try:
        with pytest.raises(BrokenProcessPool):
            await away.make(REQUEST, die)
        assert (await away.make(REQUEST, summarise)).completed > 0
    finally:
        away.close()


def _clock() -> datetime:
    return datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


async def test_staff_get_their_roles_scope_and_the_latest_month_and_are_logged(
    history: Database, framework: Framework
) -> None:
    service = ReportService(database=history, framework=framework, zone=LONDON, clock=_clock)
    async with history.session() as session:
        director = await roster.staff_by_email(session=session, email="staff001@somerset.example")
    assert director is not None
    made = await service.report(
        Asker(director, action="report_card", via="teams"), summarise, as_of=service.today()
    )
    assert made is not None
    assert (made.first_month, made.last_month, made.as_of) == ("2023-09", "2023-09", AS_OF)
    assert made.scope.label == "All teams"
    assert made.made.completed > 0
    async with history.session() as session:
        logged = await access_log.entries(session=session)
    assert [(e.staff_id, e.action, e.target, e.via) for e in logged] == [
        (director.id, "report_card", "2023-09 to 2023-09", "teams")
    ]


async def test_the_command_line_names_its_scope_and_someone_gone_gets_nothing(
    history: Database, framework: Framework
) -> None:
    service = ReportService(database=history, framework=framework, zone=LONDON, clock=_clock)
    scope = ReportScope("team T", teams=frozenset({"T"}))
    made = await service.report(
        Asker(None, action="cli_report", via="cli"), report_and_names, as_of=AS_OF,
        months=("2023-09", "2024-02"), scope=scope,
    )  # fmt: skip
    assert made is not None
    report, _names = made.made
    assert report.scope == "team T"
    async with history.session() as session:
        gone = await roster.staff_by_email(session=session, email="staff002@somerset.example")
        assert gone is not None
        gone.active = False
    refused = await service.report(
        Asker(gone, action="report_page", via="link"), summarise, as_of=AS_OF
    )
    assert refused is None
    async with history.session() as session:
        logged = await access_log.entries(session=session)
    assert [(e.staff_id, e.action, e.target, e.via) for e in logged] == [
        (None, "cli_report", "2023-09 to 2024-02, team T", "cli")
    ]
