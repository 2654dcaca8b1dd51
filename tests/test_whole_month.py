"""One whole audit month as each person lives it, through the bot as Teams reaches it.

A small roster holds every role: a director, a strategic manager, two service managers, an
advanced practitioner, a PDAP, social workers and occupational therapists, two moderators,
someone on leave, someone who never opened the bot until late in the month and someone who
blocked it. The bot runs in process (`create_app`) with its outbox sender, its clock passed
in and moved through the month's days; the monthly jobs run each working morning as the
scheduler runs them; people open the bot, type and press their cards through
`/api/messages`. Teams is a fake Bot Connector that enforces Teams' rate limits and injects
429s (with and without Retry-After) and 5xx answers.

From the first working day through digests, reminders, submissions, month end, the
moderation sample, claims, moderations, the end of the moderation window and the report,
each person gets the messages the README's cycle table promises them, each exactly once and
in the order they were queued, and nothing else: the person on leave is asked for nothing,
the one who had not opened the bot gets everything once they do, the one who blocked it
nothing (each message recorded as undeliverable, and their manager told). Along the way
people double-click Submit, type mid-audit, stop and resume, and two moderators claim the
same audit. Run for a self-audit month and a peer month (whose moderation runs into the
next month's dispatch), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import col, select

from bot.app import create_app
from bot.settings import load_settings
from messages.requests import request_audit
from practice.calendar import AuditMonth, audits_in_month, days_before_due
from practice.framework import Framework
from practice.working_days import is_working_day
from scheduler.jobs import Cycle
from scheduler.runner import JOBS
from storage.csv_import import import_cases, import_staff
from storage.database import Database
from storage.models import (
    AuditRequest,
    AuditStatus,
    Moderation,
    ModerationSample,
    OutboxMessage,
    OutboxStatus,
    Staff,
)
from tests.fake_connector import FakeConnector, FaultPlan
from tests.harness import actions, inputs
from tests.teams_chat import ChatMessage, Person, Teams, settle_outbox

LONDON = ZoneInfo("Europe/London")
# Replies within a turn and card updates draw faults too: they survive Teams' throttling
# (issue 12, section 3), tried again within the turn or sent a little later by the outbox.
FAULTS_ON_REPLIES = True
# What a turn that failed says (bot.adapter.on_turn_error).
APOLOGY = "Sorry, something went wrong"
# How long someone takes over a card, as Teams' per-chat limits count it.
THINKING_SECONDS = 3.0
# The README's cycle table: digests 10 and 3 working days before the due date, reminders 5
# days before and on it.
DIGEST_DAYS_BEFORE = (10, 3)
REMINDER_DAYS_BEFORE = (5, 0)
NOTICES = (
    "audit_request", "digest", "reminder", "outcome", "moderation_sample",
    "moderation_outcome", "moderation_closed",
)  # fmt: skip
SUMMARIES = {
    "audit_request": "New audit: ",
    "digest": "Your team's audits",
    "reminder": "Audits due soon",
    "outcome": "Completed audit: ",
    "moderation_sample": "Audits to moderate",
    "moderation_outcome": "Your audit was moderated: ",
    "moderation_closed": "Moderation closing",
}


def _aad(n: int) -> str:
    return f"10000000-0000-0000-0000-0000000000{n:02d}"


@dataclass(frozen=True)
class Member:
    """Someone on the month's roster."""

    person: Person
    role: str
    team: str
    supervisor: Person | None = None


LEADERSHIP, MENDIP, SEDGEMOOR = "ASC Leadership", "Mendip ASC Team", "Sedgemoor ASC Team"
SOUTH, TAUNTON_OT, DEVELOPMENT = (
    "South Somerset ASC Team",
    "Taunton OT Team",
    "Practice Development",
)
DANA = Person("dana@example.com", "Dana Reid", _aad(1))
LYNNE = Person("lynne@example.com", "Lynne Robbins", _aad(2))
MEGAN = Person("megan@example.com", "Megan Bowen", _aad(3))
JORDAN = Person("jordan@example.com", "Jordan Price", _aad(4))  # opens the bot late
ARI = Person("ari@example.com", "Ari Park", _aad(5))
ISAIAH = Person("isaiah@example.com", "Isaiah Langer", _aad(6))
PATTI = Person("patti@example.com", "Patti Fernandez", _aad(7))
NIA = Person("nia@example.com", "Nia Hughes", _aad(8))
ALEX = Person("alex@example.com", "Alex Wilber", _aad(9))
SAM = Person("sam@example.com", "Sam Green", _aad(10))
PRIYA = Person("priya@example.com", "Priya Shah", _aad(11))  # on leave
ADELE = Person("adele@example.com", "Adele Vance", _aad(12))
TOM = Person("tom@example.com", "Tom Hale", _aad(13))  # blocked the bot
ROSTER = (
    Member(DANA, "DIR", LEADERSHIP),
    Member(LYNNE, "SM", LEADERSHIP, DANA),
    Member(MEGAN, "SVM", MENDIP, LYNNE),
    Member(JORDAN, "SVM", SEDGEMOOR, LYNNE),
    Member(ARI, "AP", MENDIP, MEGAN),
    Member(ISAIAH, "PDAP", DEVELOPMENT, LYNNE),
    Member(PATTI, "MOD", DEVELOPMENT, LYNNE),
    Member(NIA, "MOD", DEVELOPMENT, LYNNE),
    Member(ALEX, "SW", MENDIP, MEGAN),
    Member(SAM, "SW", SEDGEMOOR, JORDAN),
    Member(PRIYA, "SW", SOUTH, JORDAN),
    Member(ADELE, "OT", TAUNTON_OT, MEGAN),
    Member(TOM, "OT", SEDGEMOOR, JORDAN),
)
EVERYONE = tuple(m.person for m in ROSTER)
MODERATORS = (PATTI, NIA)
# Who completes how many of their audits, and when (working days after the requests went
# out, or the day after the first digest, or after the first reminder).
SCHEDULE: dict[str, tuple[tuple[str, Person, int], ...]] = {
    "self": (
        ("day 1", ALEX, 1), ("day 1", ADELE, 1), ("day 1", SAM, 1),
        ("day 2", DANA, 1), ("day 2", MEGAN, 2),
        ("day 3", LYNNE, 1), ("day 3", ISAIAH, 2),
        ("after the first digest", ARI, 1),
        ("after the first reminder", LYNNE, 1),
    ),
    "peer": (
        ("day 1", ALEX, 1), ("day 1", ADELE, 1), ("day 1", SAM, 1),
        ("day 2", DANA, 1), ("day 2", MEGAN, 1),
        ("after the first reminder", ISAIAH, 1),
    ),
}  # fmt: skip
MONTHS = {"self": (2026, 11), "peer": (2026, 10)}
# How some people use their cards (on their first audit).
HABITS = {
    ADELE.email: "double-clicks Submit",
    ALEX.email: "types mid-audit",
    DANA.email: "stops and resumes",
}


def staff_csv(requests_on: date) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["email", "name", "role", "team", "supervisor_email", "aad_object_id",
                     "on_leave_until"])  # fmt: skip
    for member in ROSTER:
        leave = (requests_on + timedelta(days=19)).isoformat() if member.person is PRIYA else ""
        supervisor = member.supervisor.email if member.supervisor else ""
        writer.writerow([member.person.email, member.person.name, member.role, member.team,
                         supervisor, member.person.aad_object_id, leave])  # fmt: skip
    return out.getvalue()


def cases_csv(requests_on: date) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["case_reference", "team", "allocated_worker_email", "status", "closed_on"])
    reference = 5_200_000
    for member in ROSTER:
        if member.role not in ("SW", "OT"):
            continue
        # Enough for two months of case audits: six open, one closed lately, one long ago.
        for index in range(8):
            reference += 11
            closed = {6: 20, 7: 400}.get(index)
            writer.writerow([
                reference, member.team, member.person.email, "closed" if closed else "open",
                (requests_on - timedelta(days=closed)).isoformat() if closed else "",
            ])  # fmt: skip
    return out.getvalue()


class MonthClock:
    """The bot's clock, set to each day of the month the test lives through."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def set(self, day: date, at: clock_time) -> None:
        """Move on to a time of a day (a retry waited out may have gone past it already)."""
        moment = datetime.combine(day, at, tzinfo=LONDON).astimezone(UTC)
        assert moment.date() >= self.now.date(), "the month only goes forward"
        self.now = max(self.now, moment)

    @property
    def today(self) -> date:
        return self.now.astimezone(LONDON).date()


class ThinkingTime:
    """Teams' clock for its rate limits: real time, plus the time people spend on cards."""

    def __init__(self) -> None:
        self.thought = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.thought


@dataclass
class Month:
    """The month under test: the bot, Teams, the clock, and what each person is owed."""

    audit_month: AuditMonth
    database: Database
    framework: Framework
    teams: Teams
    connector: FakeConnector
    clock: MonthClock
    thinking: ThinkingTime
    cycle: Cycle
    expected: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    submitted: list[int] = field(default_factory=list)

    # -- time passing ------------------------------------------------------------------------

    async def morning(self, day: date) -> dict[str, Any]:
        """Run the day's jobs at the job time, as the scheduler does, and let the sender work."""
        self.clock.set(day, clock_time(8, 30))
        done: dict[str, Any] = {}
        if is_working_day(day):
            for name, job in JOBS.items():
                done[name] = await job(self.cycle, day)
        await self.settle()
        return done

    async def settle(self) -> None:
        """Let the outbox sender deliver all it can, moving the clock on to retries' times."""
        await settle_outbox(self.database, self.clock)

    def think(self) -> None:
        self.thinking.thought += THINKING_SECONDS

    # -- people -------------------------------------------------------------------------

    async def open_bot(self, person: Person) -> list[ChatMessage]:
        self.think()
        replies = await self.teams.install(person)
        await self.settle()
        return replies

    async def say(self, person: Person, text: str) -> list[ChatMessage]:
        self.think()
        return await self.teams.say(person, text)

    async def send(
        self, person: Person, message: ChatMessage, value: dict[str, Any]
    ) -> list[ChatMessage]:
        self.think()
        return await self.teams.send(person, message, value)

    async def complete(self, person: Person, count: int) -> None:
        """Do the person's next `count` audits through their cards, from the request card."""
        async with self.database.session() as session:
            staff = await _staff(session, person)
            audits = list(
                await session.exec(
                    select(AuditRequest)
                    .where(
                        AuditRequest.auditor_id == staff.id,
                        AuditRequest.status != AuditStatus.SUBMITTED,
                    )
                    .order_by(col(AuditRequest.id))
                )
            )
        assert len(audits) >= count, f"{person.name} has {len(audits)} audits to do, not {count}"
        for audit in audits[:count]:
            assert audit.id is not None
            await self._do_audit(person, audit.id)

    async def _do_audit(self, person: Person, audit_id: int) -> None:
        habit = HABITS.get(person.email, "")
        pressed = self._card_with(person, {"pqf": "audit.open", "audit_id": audit_id})
        data: dict[str, Any] = {"pqf": "audit.open", "audit_id": audit_id}
        for press in range(24):
            value = {**data, **self._answers(pressed, data)}
            if habit == "double-clicks Submit" and data.get("nav") == "submit":
                before = len(self.teams.chat(person))
                await asyncio.gather(*(self.send(person, pressed, value) for _ in "12"))
                said = [m.text for m in self.teams.since(person, before) if m.text]
                assert len(said) == 2, said  # the submit, and one plain word on the repeat
                assert "is submitted" in said[0]
                assert said[1].endswith(": nothing more is needed.")
                await self._submitted(audit_id)
                return
            replies = await self.send(person, pressed, value)
            said_now = " ".join(m.text for m in replies)
            assert APOLOGY not in said_now, said_now
            if "is submitted" in said_now:
                await self._submitted(audit_id)
                return
            if press == 2 and habit == "types mid-audit":
                hint = await self.say(person, "what goes in the evidence box?")
                assert [m.card for m in hint] == [None]  # a one-line hint, not the help card
                assert "answer on its latest card" in hint[0].text
            if press == 3 and habit == "stops and resumes":
                stopped = await self.say(person, "cancel")
                assert [m.text for m in stopped] == [
                    "Stopped. Your answers so far are saved: type **resume** to carry on."
                ]
                await self.say(person, "resume")
            pressed = self._live_card(person, audit_id)
            data = next(
                a["data"] for a in actions(pressed.card or {})
                if a["data"].get("nav") in ("next", "submit")
            )  # fmt: skip
        raise AssertionError(f"audit {audit_id} was not submitted in 24 presses")

    def _answers(self, message: ChatMessage, data: dict[str, Any]) -> dict[str, Any]:
        """Fill in a step's card as an auditor would."""
        fields = inputs(message.card or {})
        step = data.get("pqf")
        if step == "audit.case" and "case_choice" in fields:
            return {"case_choice": fields["case_choice"]["choices"][0]["value"]}
        if step == "audit.criterion":
            return {"rating": "meets", "evidence": "The plan records what matters to them."}
        if step == "audit.feedback":
            return {"contacted": "person", "what_they_said": "They felt listened to."}
        if step == "audit.involvement":
            return {"how": "joint_teams"}
        return {}

    def _card_with(self, person: Person, wanted: dict[str, Any]) -> ChatMessage:
        for message in reversed(self.teams.chat(person)):
            for found in actions(message.card or {}):
                if all(found["data"].get(k) == v for k, v in wanted.items()):
                    return message
        raise AssertionError(f"no card in {person.name}'s chat sends {wanted}")

    def _live_card(self, person: Person, audit_id: int) -> ChatMessage:
        """Return the audit's newest card with a button to go on: its live step."""
        for message in reversed(self.teams.chat(person)):
            for found in actions(message.card or {}):
                data = found["data"]
                if data.get("audit_id") == audit_id and data.get("nav") in ("next", "submit"):
                    return message
        raise AssertionError(f"{person.name} has no live card of audit {audit_id}")

    async def moderate(self, moderator: Person, message: ChatMessage, audit_id: int) -> None:
        """Moderate a claimed audit from its moderation card: agree, bar one rating."""
        async with self.database.session() as session:
            audit = await session.get(AuditRequest, audit_id)
            assert audit is not None
        standard = self.framework.standard(audit.standard)
        assert standard is not None
        views = {f"view_{c.id}": "agree" for c in standard.criteria}
        first = standard.criteria[0].id
        views[f"view_{first}"] = "exceeds"
        views[f"reason_{first}"] = "The plan was shared in the person's own words."
        data = next(
            a["data"] for a in actions(message.card or {}) if a["title"] == "Submit moderation"
        )
        replies = await self.send(moderator, message, {**data, **views, "comment": "Thorough."})
        assert "The moderation is recorded" in " ".join(m.text for m in replies)
        auditor = await self._auditor_of(audit_id)
        expect(self, auditor.email, "moderation_outcome", str(audit_id))

    async def _auditor_of(self, audit_id: int) -> Staff:
        async with self.database.session() as session:
            audit = await session.get(AuditRequest, audit_id)
            assert audit is not None
            staff = await session.get(Staff, audit.auditor_id)
            assert staff is not None
            return staff

    async def _submitted(self, audit_id: int) -> None:
        """Expect the completed audit to go to the audited worker and their supervisor."""
        self.submitted.append(audit_id)
        async with self.database.session() as session:
            audit = await session.get(AuditRequest, audit_id)
            assert audit is not None
            assert audit.status == AuditStatus.SUBMITTED
            worker = await session.get(Staff, audit.subject_worker_id or 0)
            supervisor = await session.get(Staff, worker.supervisor_id or 0) if worker else None
        for person in (worker, supervisor):
            if person is not None and person.id != audit.auditor_id and person.active:
                expect(self, person.email, "outcome", str(audit_id))

    # -- what people see ------------------------------------------------------------------

    async def notices_delivered(self) -> dict[str, list[tuple[str, str]]]:
        """Return each person's notices as delivered to their chat, in the order they came."""
        rows = await _outbox(self.database)
        by_activity = {r.sent_activity_id: r for r in rows if r.sent_activity_id}
        found: dict[str, list[tuple[str, str]]] = {}
        for person in EVERYONE:
            seen: list[tuple[str, str]] = []
            last_id = 0
            for message in self.teams.chat(person):
                if not message.proactive:
                    continue
                row = by_activity.get(message.id)
                if row is None:
                    seen.append(("not from the outbox", message.notification or message.text))
                    continue
                if row.purpose not in NOTICES:
                    continue  # an answer in a conversation that was delivered later
                assert row.id is not None
                assert row.id > last_id, f"{person.name}'s messages came out of order"
                last_id = row.id
                assert message.notification.startswith(SUMMARIES[row.purpose]), row.purpose
                seen.append(notice(row))
            found[person.email] = seen
        return found


def notice(row: OutboxMessage) -> tuple[str, str]:
    """Return what a notice is: its purpose, and its audit, day or month."""
    if row.purpose in ("digest", "reminder"):
        return row.purpose, row.idempotency_key.split(":")[1]  # one a day
    if row.audit_id is not None:
        return row.purpose, str(row.audit_id)
    return row.purpose, row.period


def expect(month: Month, email: str, purpose: str, key: str) -> None:
    assert (purpose, key) not in month.expected[email], f"{email} is owed {purpose} {key} twice"
    month.expected[email].append((purpose, key))


async def _staff(session: Any, person: Person) -> Staff:
    staff = (await session.exec(select(Staff).where(Staff.email == person.email))).one()
    assert isinstance(staff, Staff)
    return staff


async def _outbox(database: Database) -> list[OutboxMessage]:
    async with database.session() as session:
        return list(await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))))


async def _unfinished_auditors(database: Database, month: str) -> set[str]:
    async with database.session() as session:
        rows = await session.exec(
            select(Staff.email)
            .join(AuditRequest, col(AuditRequest.auditor_id) == Staff.id)
            .where(
                AuditRequest.month == month,
                AuditRequest.status != AuditStatus.SUBMITTED,
                col(AuditRequest.voluntary).is_(False),
                col(Staff.active).is_(True),
            )
        )
        return set(rows)


def managers() -> list[Person]:
    """Return everyone with someone to supervise (the README: each manager gets a digest)."""
    return [m.person for m in ROSTER if any(o.supervisor is m.person for o in ROSTER)]


@pytest.fixture(params=["self", "peer"])
async def month(
    request: pytest.FixtureRequest, database_url: str, framework: Framework
) -> AsyncIterator[Month]:
    year, number = MONTHS[request.param]
    audit_month = next(a for a in audits_in_month(framework, year, number) if not a.additional)
    assert audit_month.practitioner_kind == request.param
    database = Database(database_url)
    async with database.session() as session:
        assert (await import_staff(session=session, framework=framework,
                                   text=staff_csv(audit_month.requests_on))).ok  # fmt: skip
        assert (await import_cases(session=session, text=cases_csv(audit_month.requests_on))).ok
    thinking = ThinkingTime()
    faults = FaultPlan(
        seed=12, throttle_with_retry_after=0.05, retry_after="1", throttle=0.05,
        server_error=0.05, replies=FAULTS_ON_REPLIES, updates=FAULTS_ON_REPLIES,
    )  # fmt: skip
    connector = await FakeConnector(enforce_limits=True, faults=faults, clock=thinking).start()
    clock = MonthClock(
        datetime.combine(audit_month.requests_on - timedelta(days=3), clock_time(10), LONDON)
    )
    settings = load_settings(
        env_file=None, DATABASE_URL=database_url, PQF_ENVIRONMENT="development",
        PQF_RUN_SCHEDULER="false", PQF_RUN_SENDER="true", PQF_INSTANCE_NAME="month-test",
        # The test's people answer cards far faster than anyone could.
        PQF_USER_RATE_LIMIT="1000/1",
    )  # fmt: skip
    # The bot counts Teams' limits on Teams' clock, people's thinking time included.
    client = TestClient(
        TestServer(create_app(settings, framework=framework, clock=clock, rate_clock=thinking))
    )
    await client.start_server()
    cycle = Cycle(database=database, framework=framework, zone=LONDON, instance="scheduler")
    try:
        yield Month(audit_month, database, framework, Teams(client, connector), connector,
                    clock, thinking, cycle)  # fmt: skip
    finally:
        await client.close()
        await connector.close()
        await database.dispose()


async def test_every_role_gets_its_months_messages_exactly_once(
    month: Month, caplog: pytest.LogCaptureFixture
) -> None:
    audit_month = month.audit_month
    kind = audit_month.practitioner_kind or "self"
    working = [
        audit_month.requests_on + timedelta(days=n)
        for n in range((audit_month.due_on - audit_month.requests_on).days + 1)
        if is_working_day(audit_month.requests_on + timedelta(days=n))
    ]
    digest_days = sorted(days_before_due(audit_month.due_on, DIGEST_DAYS_BEFORE))
    reminder_days = sorted(days_before_due(audit_month.due_on, REMINDER_DAYS_BEFORE))
    when = {
        "day 1": working[1], "day 2": working[2], "day 3": working[3],
        "after the first digest": working[working.index(digest_days[0]) + 1],
        "after the first reminder": working[working.index(reminder_days[0]) + 1],
    }  # fmt: skip
    jordan_opens = when["after the first reminder"]

    # Before the month the administrator asks Megan for one of her audits by hand: the
    # dispatch asks her for the rest of her quota only.
    async with month.database.session() as session:
        await request_audit(
            session=session, framework=month.framework, auditor_email=MEGAN.email,
            standard_number=audit_month.standard, month=audit_month.month,
            today=audit_month.requests_on - timedelta(days=3),
        )  # fmt: skip

    # Before the month: everyone but Jordan has opened the bot; Tom then blocks it.
    for person in EVERYONE:
        if person is not JORDAN:
            welcome = await month.open_bot(person)
            assert [f"Hello {person.name.split()[0]}" in m.words for m in welcome] == [True]
    month.connector.blocked.add(TOM.conversation_id)

    month_end = _after(audit_month.due_on, 1)  # the moderation sample is drawn
    moderation_closed = _after(audit_month.moderation_until, 1)
    days = sorted({*working, *when.values(), month_end, moderation_closed})
    moderated: list[int] = []
    for day in days:
        done = await month.morning(day)
        await _owed_for_the_morning(month, day, done)
        # People at work, after the morning's jobs.
        month.clock.set(day, clock_time(10))
        if day == jordan_opens:
            assert month.teams.chat(JORDAN) == []  # nothing reached him before
            await month.open_bot(JORDAN)
        for at, person, count in SCHEDULE[kind]:
            if when[at] == day:
                await month.complete(person, count)
        if day == month_end:
            await _month_end(month, done)
            moderated = await _moderation(month)
        if day == moderation_closed:
            await _moderation_closes(month, moderated)
        await month.settle()

    # The report, at the end of the moderation window, for a director and a moderator.
    await _reports(month, moderated)

    # Each person got what they are owed, once, and nothing else.
    delivered = await month.notices_delivered()
    rows = await _outbox(month.database)
    async with month.database.session() as session:
        tom = await _staff(session, TOM)
    for person in EVERYONE:
        owed = month.expected.get(person.email, [])
        if person is TOM:
            # Blocked: nothing reached him; each message is recorded as undeliverable.
            assert delivered[person.email] == []
            mine = [r for r in rows if r.purpose in NOTICES and r.recipient_id == tom.id]
            assert sorted(notice(r) for r in mine) == sorted(owed)
            assert {(r.status, r.last_error) for r in mine} == {
                (OutboxStatus.UNDELIVERABLE, "HTTP 403")
            }
            continue
        got = sorted(delivered[person.email])
        assert got == sorted(owed), f"{person.name}: got {got}, owed {sorted(owed)}"
        assert len(got) == len(set(got)), f"{person.name} got a message twice"
    # On leave on the first working day: asked for nothing that month, reminded of nothing.
    # (Audits of her cases still reach her, as the audited worker, for when she is back.)
    async with month.database.session() as session:
        priya = await _staff(session, PRIYA)
        asked = list(
            await session.exec(
                select(AuditRequest).where(
                    AuditRequest.auditor_id == priya.id,
                    AuditRequest.month == month.audit_month.month,
                )
            )
        )
    assert asked == []
    assert "reminder" not in {purpose for purpose, _ in delivered[PRIYA.email]}
    assert {r.status for r in rows if r.purpose in NOTICES} <= {
        OutboxStatus.SENT,
        OutboxStatus.UNDELIVERABLE,
    }
    # No turn ended in an apology, and Teams' limits and faults were met along the way.
    for person in EVERYONE:
        assert not [m.text for m in month.teams.chat(person) if APOLOGY in m.text]
    # Nothing was sent twice behind the scenes either (a lapsed claim sent again).
    doubled = [r.getMessage() for r in caplog.records if "another sender" in r.getMessage()]
    assert doubled == []
    # Jordan's digests named Tom as having blocked the bot, and Priya as on leave; Lynne's
    # first named Jordan as not having opened the bot yet.
    digests = [m.words for m in month.teams.chat(JORDAN) if m.notification == SUMMARIES["digest"]]
    assert digests
    assert all(_listed(words, "Blocked the audit bot", TOM) for words in digests)
    assert _listed(digests[0], "On leave", PRIYA)
    lynnes = [m.words for m in month.teams.chat(LYNNE) if m.notification == SUMMARIES["digest"]]
    assert _listed(lynnes[0], "Not opened the audit bot yet", JORDAN)
    faults = month.connector.faults_answered()
    assert faults["429+retry-after"], faults
    assert faults["429"], faults
    assert faults["502"] + faults["503"] + faults["504"], faults


def _listed(words: str, heading: str, person: Person) -> bool:
    """Return whether a digest lists the person under this heading (first under it)."""
    return f"{heading}\n{person.name}: " in words


def _after(day: date, working_days: int) -> date:
    """Return the day `working_days` working days after `day`."""
    moment, left = day, working_days
    while left:
        moment += timedelta(days=1)
        left -= is_working_day(moment)
    return moment


async def _owed_for_the_morning(month: Month, day: date, done: dict[str, Any]) -> None:
    """Expect what the README's cycle table promises for a morning's jobs.

    The month's next month may begin inside its moderation window (October's moderation
    runs into November): its requests and digests are owed as well.
    """
    if done.get("dispatch") is not None and done["dispatch"].ran:
        await _expect_requests(month, done["dispatch"].month)
    for audit in audits_in_month(month.framework, day.year, day.month):
        if audit.additional:
            continue
        if day in days_before_due(audit.due_on, DIGEST_DAYS_BEFORE):
            for manager in managers():
                expect(month, manager.email, "digest", day.isoformat())
        if day in days_before_due(audit.due_on, REMINDER_DAYS_BEFORE):
            for email in await _unfinished_auditors(month.database, audit.month):
                expect(month, email, "reminder", day.isoformat())


async def _expect_requests(month: Month, audit_month: str) -> None:
    """Expect each request the dispatch made, and check it asked each role its quota."""
    quotas = {r.code: r.monthly_audits for r in month.framework.roles}
    async with month.database.session() as session:
        requests = list(
            await session.exec(
                select(AuditRequest, Staff)
                .join(Staff, col(Staff.id) == AuditRequest.auditor_id)
                .where(AuditRequest.month == audit_month)
            )
        )
    asked = Counter(staff.email for _audit, staff in requests)
    on_leave = audit_month == month.audit_month.month
    for member in ROSTER:
        away = on_leave and member.person is PRIYA
        quota = 0 if member.role == "MOD" or away else quotas[member.role]
        assert asked[member.person.email] == quota, member.person.name
    for audit, staff in requests:
        expect(month, staff.email, "audit_request", str(audit.id))
        if audit.kind == "peer":
            # Peers are in another team (in this roster each role has someone elsewhere).
            assert audit.subject_worker_id != audit.auditor_id


async def _month_end(month: Month, done: dict[str, Any]) -> None:
    """Unfinished audits are overdue; the sample went to the moderators."""
    async with month.database.session() as session:
        audits = list(
            await session.exec(
                select(AuditRequest).where(AuditRequest.month == month.audit_month.month)
            )
        )
        sampled = list(await session.exec(select(ModerationSample)))
    late = [a for a in audits if a.status != AuditStatus.SUBMITTED]
    assert late
    assert all(a.overdue_at is not None for a in late)
    assert all(a.overdue_at is None for a in audits if a.status == AuditStatus.SUBMITTED)
    completed = len(month.submitted)
    assert len(sampled) == min(completed, max(4, -(-completed // 10)))  # 10%, at least 2 each
    assert {s.audit_id for s in sampled} <= set(month.submitted)
    for moderator in MODERATORS:
        expect(month, moderator.email, "moderation_sample", month.audit_month.month)


async def _moderation(month: Month) -> list[int]:
    """Patti claims two and moderates one; Nia is too late for one, claims another, moderates it.

    Return the audits moderated.
    """
    month.clock.set(month.clock.today, clock_time(11))
    card = month._card_with(PATTI, {"pqf": "moderation.claim"})
    claims = [a["data"] for a in actions(card.card or {}) if a["title"] == "Claim"]
    assert len(claims) >= 4
    first, second = claims[0]["audit_id"], claims[1]["audit_id"]
    claimed = await month.send(PATTI, card, claims[0])
    assert [m.text for m in claimed if m.text] == ["You have claimed this audit for moderation."]
    await month.moderate(PATTI, claimed[-1], first)
    # The sample card she pressed now offers Claim only for what is unclaimed.
    shown = next(m for m in month.teams.chat(PATTI) if m.id == card.id)
    assert ("Claim", first) not in {
        (a["title"], a["data"]["audit_id"]) for a in actions(shown.card or {})
    }
    await month.send(PATTI, shown, next(
        a["data"] for a in actions(shown.card or {}) if a["data"]["audit_id"] == second
    ))  # fmt: skip

    nias = month._card_with(NIA, {"pqf": "moderation.claim"})
    late = await month.send(NIA, nias, {"pqf": "moderation.claim", "audit_id": second})
    assert [m.text for m in late if m.text] == [
        "Patti Fernandez has already claimed that audit. Type **moderation** to see the rest "
        "of the sample."
    ]
    refreshed = next(m for m in month.teams.chat(NIA) if m.id == nias.id)
    third = next(a["data"] for a in actions(refreshed.card or {}) if a["title"] == "Claim")
    claimed = await month.send(NIA, refreshed, third)
    await month.moderate(NIA, claimed[-1], third["audit_id"])
    await month.settle()
    return [first, third["audit_id"]]


async def _moderation_closes(month: Month, moderated: list[int]) -> None:
    async with month.database.session() as session:
        sampled = {s.audit_id for s in await session.exec(select(ModerationSample))}
        done = {
            m.audit_id for m in await session.exec(select(Moderation)) if m.submitted_at is not None
        }
    assert done == set(moderated)
    assert sampled - done
    for moderator in MODERATORS:
        expect(month, moderator.email, "moderation_closed", month.audit_month.month)


async def _reports(month: Month, moderated: list[int]) -> None:
    month.clock.set(month.clock.today, clock_time(15))
    director = await month.say(DANA, "report")
    assert f"Audits completed\n{len(month.submitted)}" in director[-1].words
    moderator = await month.say(PATTI, "report")
    async with month.database.session() as session:
        sampled = len(list(await session.exec(select(ModerationSample))))
    words = moderator[-1].words
    assert "those drawn for moderation" in words
    assert f"Audits completed\n{sampled}" in words
    assert moderated
