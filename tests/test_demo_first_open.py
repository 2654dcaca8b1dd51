"""What each demo user sees on first opening the bot after `make run`, against the README.

`make run` loads the demo data (`pqf-bot demo-data`), then starts the bot, whose scheduler
catches up with the day's jobs when it starts after the job time on a working day (in an
audit month, that is the month's dispatch). Each demo user with a playground login then
opens the bot: the welcome, and the audit requests the README's demo-users table says they
get, each once.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from datetime import time as clock_time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer

from admin.demo_data import DEMO_AUDITORS, PEOPLE, load_demo_data
from bot.app import create_app
from bot.settings import load_settings
from practice.calendar import audits_in_month, days_before_due
from practice.framework import Framework
from practice.working_days import is_working_day
from scheduler.jobs import Cycle
from scheduler.runner import JOBS
from storage.database import Database
from storage.models import AuditRequest
from tests.conftest import ROOT
from tests.fake_connector import FakeConnector
from tests.harness import actions
from tests.teams_chat import ChatMessage, Person, Teams, settle_outbox

LONDON = ZoneInfo("Europe/London")
NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
# The demo users who supervise someone: they get the managers' digests.
MANAGERS = {p.supervisor for p in PEOPLE if p.supervisor}


@dataclass(frozen=True)
class Promise:
    """What the README's demo table says a demo user gets."""

    email: str
    words: str
    requests: int
    kinds: frozenset[str]  # the kinds of audit they are asked for


def readme_demo_table(readme: Path = ROOT / "README.md") -> dict[str, Promise]:
    """Read the demo-users table: each user's email and what they get, as counts and kinds."""
    promises: dict[str, Promise] = {}
    for line in readme.read_text(encoding="utf-8").splitlines():
        row = re.match(r"\| `([^`]+@example\.com)` [^|]+\| [^|]+\| ([^|]+) \|$", line)
        if row is None:
            continue
        email, words = row[1], row[2].strip()
        if words.startswith("nothing"):
            promise = Promise(email, words, 0, frozenset())
        elif "self- or peer audit" in words:
            promise = Promise(email, words, 1, frozenset({"self", "peer"}))
        else:
            count = re.match(r"(\w+) case audits?\b", words)
            assert count is not None, f"cannot read {words!r}"
            assert count[1] in NUMBERS, f"cannot read {words!r}"
            promise = Promise(email, words, NUMBERS[count[1]], frozenset({"sampled"}))
        promises[email] = promise
    return promises


def test_the_readme_names_every_demo_user_with_a_playground_login() -> None:
    table = readme_demo_table()
    assert set(table) == {p.email for p in PEOPLE if p.playground_id}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Demo:
    database: Database
    framework: Framework
    teams: Teams
    clock: Clock


@pytest.fixture
async def demo(
    request: pytest.FixtureRequest, database_url: str, framework: Framework
) -> AsyncIterator[Demo]:
    started: datetime = request.param
    database = Database(database_url)
    today = started.astimezone(LONDON).date()
    # pqf-bot demo-data, run by make run before the bot starts.
    async with database.session() as session:
        await load_demo_data(session=session, framework=framework, today=today)
    connector = await FakeConnector(enforce_limits=True).start()
    clock = Clock(started)
    settings = load_settings(
        env_file=None, DATABASE_URL=database_url, PQF_ENVIRONMENT="development",
        PQF_RUN_SCHEDULER="false", PQF_RUN_SENDER="true",
    )  # fmt: skip
    client = TestClient(TestServer(create_app(settings, framework=framework, clock=clock)))
    await client.start_server()
    # The scheduler's catch-up at start-up: started after the job time on a working day,
    # each of the day's jobs runs at once (scheduler.runner.CycleScheduler.start).
    if started.astimezone(LONDON).time() >= clock_time(8, 30) and is_working_day(today):
        cycle = Cycle(database=database, framework=framework, zone=LONDON, instance="serve")
        for job in JOBS.values():
            await job(cycle, today)
    try:
        yield Demo(database, framework, Teams(client, connector), clock)
    finally:
        await client.close()
        await connector.close()
        await database.dispose()


@pytest.mark.parametrize(
    "demo",
    [
        # make run on a Tuesday morning of a self-audit month: the catch-up dispatch runs.
        datetime(2026, 11, 10, 10, 0, tzinfo=UTC),
        # ...of a peer month, at 09:00 London time (BST).
        datetime(2026, 10, 12, 8, 0, tzinfo=UTC),
        # ...in December (no audits timetabled): demo-data asks for standard 3 itself.
        datetime(2026, 12, 7, 10, 0, tzinfo=UTC),
        # ...before the job time: the dispatch waits until 08:30.
        datetime(2026, 11, 10, 7, 0, tzinfo=UTC),
        # ...on a reminder day (5 working days before the due date): the reminders come too.
        datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
        # ...on a digest day (3 working days before): managers get their team's digest too.
        datetime(2026, 11, 25, 10, 0, tzinfo=UTC),
    ],
    indirect=True,
    ids=["self-month", "peer-month", "december", "early", "reminder-day", "digest-day"],
)
async def test_each_demo_user_first_sees_what_the_readme_says(demo: Demo) -> None:
    table = readme_demo_table()
    users = [Person(p.email, p.name, p.aad_object_id) for p in PEOPLE if p.playground_id]
    welcomes = {user.email: await demo.teams.install(user) for user in users}
    await settle_outbox(demo.database, demo.clock)
    for user in users:
        promise = table[user.email]
        chat = demo.teams.chat(user)
        welcome, after = chat[0], chat[1:]
        assert [welcome.id] == [m.id for m in welcomes[user.email]]
        assert f"Hello {user.name.split()[0]}" in welcome.words
        owed = promise.requests
        to_do = f"You have {owed} audit{'s' if owed != 1 else ''} to do"
        assert (to_do in welcome.words) == bool(owed), (user.email, welcome.words)
        requests = [m for m in after if m.notification.startswith("New audit: ")]
        # Besides the requests, only what the monthly cycle sends that day, if anything.
        others = [m.notification for m in after if m not in requests]
        assert set(others) <= _cycle_notices(demo, user.email), (user.email, others)
        assert len(others) == len(set(others))
        audits = await _audits_of(demo.database, requests)
        assert len(audits) == owed, (user.email, promise.words, len(audits))
        assert len(set(audits)) == len(audits), f"{user.email} was asked twice for an audit"
        assert {kind for _audit_id, kind in audits} <= promise.kinds, promise.words


def _cycle_notices(demo: Demo, email: str) -> set[str]:
    """Return the notices the README's cycle table sends this demo user on the day, if any."""
    today = demo.clock().astimezone(LONDON).date()
    if demo.clock().astimezone(LONDON).time() < clock_time(8, 30):
        return set()
    found = set()
    for audit in audits_in_month(demo.framework, today.year, today.month):
        if today in days_before_due(audit.due_on, (5, 0)) and email in DEMO_AUDITORS:
            found.add("Audits due soon")
        if today in days_before_due(audit.due_on, (10, 3)) and email in MANAGERS:
            found.add("Your team's audits")
    return found


async def _audits_of(database: Database, requests: list[ChatMessage]) -> list[tuple[int, str]]:
    """Return each request card's audit and its kind."""
    found = []
    async with database.session() as session:
        for message in requests:
            audit_id = next(
                a["data"]["audit_id"]
                for a in actions(message.card or {})
                if a["data"].get("pqf") == "audit.open"
            )
            audit = await session.get(AuditRequest, audit_id)
            assert audit is not None
            found.append((audit_id, audit.kind))
    return found


def test_the_table_reads_as_counts_and_kinds() -> None:
    promises = readme_demo_table()
    assert promises["meganb@example.com"].requests == 2
    assert promises["meganb@example.com"].kinds == {"sampled"}
    assert promises["pattif@example.com"].requests == 0
    assert promises["alexw@example.com"].requests == 1
    assert promises["alexw@example.com"].kinds == {"self", "peer"}
