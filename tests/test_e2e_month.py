"""A whole audit month end to end: the real bot process with its outbox sender, two Agents
Playgrounds (an auditor's Teams and a moderator's Teams), and the monthly jobs run by the
CLI for the month's key days."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlmodel import select

from admin.demo_data import cases_csv, playground_config_yaml, staff_csv
from practice.calendar import AuditMonth, audits_in_month
from practice.framework import Framework
from practice.month import Month as CalendarMonth
from practice.working_days import first_working_day
from storage.csv_import import import_cases, import_staff
from storage.database import Database
from storage.migrate import upgrade
from storage.models import AuditRequest, AuditStatus, OutboxMessage, Staff
from tests.conftest import skip_or_fail
from tests.playground_client import PlaygroundChat
from tests.processes import BotProcess, PlaygroundProcess, playground_command

pytestmark = pytest.mark.browser
LONDON = ZoneInfo("Europe/London")


def current_audit_month(framework: Framework) -> AuditMonth:
    """Return the audit month now or next, so moderation is still open today in real time."""
    today = datetime.now(UTC).astimezone(LONDON).date()
    month = CalendarMonth.of(today)
    for _ in range(3):
        timetabled = [
            a for a in audits_in_month(framework, month.year, month.number) if not a.additional
        ]
        if timetabled:
            return timetabled[0]
        month = month.plus(1)
    raise AssertionError("no audit month within three months")


def run_jobs(database_url: str, day: date, cwd: Path) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-m", "admin", "run-jobs", "--today", day.isoformat()],
        env={**os.environ, "DATABASE_URL": database_url, "PQF_ENVIRONMENT": "development"},
        cwd=cwd, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return json.loads(completed.stdout)  # type: ignore[no-any-return]


class Month:
    """The running processes and what the test needs of them."""

    def __init__(self, tmp_path: Path, database_url: str, bot: BotProcess,
                 auditor: PlaygroundProcess, moderator: PlaygroundProcess) -> None:  # fmt: skip
        self.tmp_path = tmp_path
        self.database_url = database_url
        self.bot = bot
        self.auditor = auditor
        self.moderator = moderator


@pytest.fixture
async def month(tmp_path: Path, framework: Framework) -> AsyncIterator[Month]:
    if playground_command() is None:
        skip_or_fail(
            "PQF_REQUIRE_BROWSER", "Node.js and `npm ci` are needed for the Agents Playground"
        )
    database_url = f"sqlite:///{tmp_path}/pqf.db"
    await asyncio.to_thread(upgrade, database_url)
    database = Database(database_url)
    async with database.session() as session:
        assert (await import_staff(session=session, framework=framework, text=staff_csv())).ok
        assert (await import_cases(session=session, text=cases_csv(date.today()))).ok
    await database.dispose()
    (tmp_path / "megan").mkdir()
    (tmp_path / "patti").mkdir()
    megan_config = tmp_path / "megan" / ".m365agentsplayground.yml"
    megan_config.write_text(playground_config_yaml("meganb@example.com"), encoding="utf-8")
    patti_config = tmp_path / "patti" / ".m365agentsplayground.yml"
    patti_config.write_text(playground_config_yaml("pattif@example.com"), encoding="utf-8")
    bot = await asyncio.to_thread(BotProcess(database_url, tmp_path / "bot.log").start)
    started: list[PlaygroundProcess] = []
    try:
        for config in (megan_config, patti_config):
            process = PlaygroundProcess(bot.url, config, config.parent / "playground.log")
            started.append(await asyncio.to_thread(process.start))
        yield Month(tmp_path, database_url, bot, started[0], started[1])
    finally:
        for process in started:
            process.stop()
        bot.stop()


async def complete_case_audit(chat: PlaygroundChat, request_id: str, audit_id: int) -> None:
    mark = await chat.submit(request_id, {"pqf": "audit.open", "audit_id": audit_id})
    card_id, card = await chat.next_card("Step 1: the case", mark)
    mark = await chat.submit(card_id, card["actions"][0]["data"])
    while True:
        card_id, card = await chat.next_card("", mark)
        text = json.dumps(card)
        data = card["actions"][0]["data"]
        # The summary lists every step by name, so it is recognised first.
        if "Check your answers" in text:
            mark = await chat.submit(card_id, data)
            await chat.next_text("is submitted", mark)
            return
        if "Involving the worker" in text:
            mark = await chat.submit(card_id, {**data, "how": "joint_in_person"})
        elif "Feedback call" in text:
            mark = await chat.submit(
                card_id, {**data, "contacted": "person", "what_they_said": "Helpful"}
            )
        elif "Criterion" in text:
            mark = await chat.submit(
                card_id, {**data, "rating": "exceeds", "evidence": "Clear plans"}
            )


async def test_a_whole_month(month: Month, framework: Framework) -> None:
    audit_month = current_audit_month(framework)
    following = CalendarMonth(audit_month.year, audit_month.calendar_month).plus(1)
    after_due = first_working_day(following.year, following.number)
    async with aiohttp.ClientSession() as session:
        megan = await PlaygroundChat(session, month.auditor.url).connect()
        patti = await PlaygroundChat(session, month.moderator.url).connect()
        try:
            await megan.next_card("Hello Megan", await megan.install())
            await patti.next_card("Hello Patti", await patti.install())

            # 1. The first working day: requests go out, through the outbox sender.
            mark = len(megan.frames)
            day_one = await asyncio.to_thread(
                run_jobs, month.database_url, audit_month.requests_on, month.tmp_path
            )
            assert day_one["dispatch"]["ran"] is True
            requests = await megan.new_cards("Your case audit", mark, count=2, within=30)
            (first_id, first), (second_id, second) = requests
            assert first_id != second_id

            # 2. Megan completes one of her two audits.
            audit_id = first["actions"][0]["data"]["audit_id"]
            await complete_case_audit(megan, first_id, audit_id)

            # 3. The due date: the reminder lists only the unfinished audit.
            mark = len(megan.frames)
            due = await asyncio.to_thread(
                run_jobs, month.database_url, audit_month.due_on, month.tmp_path
            )
            assert due["reminders"]["ran"] is True
            _, reminder = await megan.next_card("Reminder: audits due", mark, within=30)
            other_id = second["actions"][0]["data"]["audit_id"]
            starts = [a["data"]["audit_id"] for a in _actions(reminder)]
            assert starts == [other_id]
            assert audit_id not in starts

            # 4. Month end: late audits marked overdue; the sample goes to the moderator.
            mark = len(patti.frames)
            end = await asyncio.to_thread(run_jobs, month.database_url, after_due, month.tmp_path)
            assert end["close"][audit_month.month]["overdue"] >= 1
            sample_id, sample = await patti.next_card("Audits to moderate", mark, within=30)
            claim = next(a for a in _actions(sample) if a["data"].get("audit_id") == audit_id)

            # 5. The moderator claims Megan's audit and moderates it.
            mark = await patti.submit(sample_id, claim["data"])
            moderation_id, moderation = await patti.next_card("Moderate the case audit", mark)
            views = {
                element["id"]: "agree"
                for element in _elements(moderation)
                if str(element.get("id", "")).startswith("view_")
            }
            first_view = sorted(views)[0]
            views[first_view] = "meets"
            views["reason_" + first_view.removeprefix("view_")] = (
                "The plan was not shared with the family."
            )
            data = next(
                a["data"] for a in moderation["actions"] if a["title"] == "Submit moderation"
            )
            megan_mark = len(megan.frames)
            mark = await patti.submit(
                moderation_id, {**data, **views, "comment": "Well evidenced."}
            )
            await patti.next_text("moderation is recorded", mark)

            # 6. The auditor receives the moderation.
            _, outcome = await megan.next_card("Agreed on", megan_mark, within=30)
            assert "Moderator: Meets (auditor: Exceeds)" in json.dumps(outcome)
        finally:
            await megan.close()
            await patti.close()

    database = Database(month.database_url)
    async with database.session() as session:
        done = await session.get(AuditRequest, audit_id)
        assert done is not None
        assert done.status == AuditStatus.SUBMITTED
        late = await session.get(AuditRequest, other_id)
        assert late is not None
        assert late.overdue_at is not None
        # The completed audit was shared with the audited worker and their supervisor.
        shared = list(
            await session.exec(select(OutboxMessage).where(OutboxMessage.purpose == "outcome"))
        )
        subject = await session.get(Staff, done.subject_worker_id)
        assert subject is not None
        assert subject.id in {m.recipient_id for m in shared}
        # Nothing was delivered twice: one request card per audit, one reminder for Megan.
        reminders = list(
            await session.exec(select(OutboxMessage).where(OutboxMessage.purpose == "reminder"))
        )
        megan_id = (
            await session.exec(select(Staff.id).where(Staff.email == "meganb@example.com"))
        ).one()
        assert len([m for m in reminders if m.recipient_id == megan_id]) == 1
    await database.dispose()


def _elements(card: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            found.append(value)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(card.get("body", []))
    return found


def _actions(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        action
        for element in _elements(card)
        if element.get("type") == "ActionSet"
        for action in element["actions"]
    ]
