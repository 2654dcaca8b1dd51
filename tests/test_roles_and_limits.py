"""Who may do what: every role against every command and card action, a person taken off
the roster losing access at once, and the per-person message limit."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest

from admin.demo_data import PEOPLE, _made_up_aad, cases_csv, staff_csv
from bot.limits import MessageRateLimit, OneTurnAtATime, RepeatedPresses
from messages.requests import request_audit
from practice.framework import Framework
from storage.csv_import import import_cases, import_staff
from storage.database import Database
from storage.models import AuditRequest, ModerationSample
from tests.harness import BotHarness, User, all_text, inputs
from tests.test_moderation_and_outcomes import complete

DECEMBER = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
AP_ROW = (
    "ari.park@example.com,Ari Park,AP,Mendip Adult Social Care Team,meganb@example.com,"
    f"{_made_up_aad('ari.park@example.com')},yes"
)


def person(email: str) -> User:
    found = next(p for p in PEOPLE if p.email == email) if email != "ari.park@example.com" else None
    if found is None:
        return User(_made_up_aad(email), "user-ari", "Ari Park")
    return User(found.aad_object_id, found.playground_id or f"user-{found.email}", found.name)


@dataclass(frozen=True)
class Role:
    """One member of staff per role, and what that role may do."""

    code: str
    email: str
    report_scope: str
    sees_sams_audit: bool  # an audit by a worker in another team, drawn for moderation

    @property
    def user(self) -> User:
        return person(self.email)

    @property
    def moderates(self) -> bool:
        return self.code == "MOD"


OWN = "Your audits and audits of your work"
OWN_AND_SAMPLE = "Your audits, audits of your work and those drawn for moderation"
ROLES = (
    Role("DIR", "dana.reid@example.com", "All teams", True),
    Role("SM", "lynner@example.com", "All teams", True),
    Role("PDAP", "isaiahl@example.com", "All teams", True),
    Role("SVM", "meganb@example.com",
         "Mendip Adult Social Care Team, Taunton Occupational Therapy Team", False),
    Role("AP", "ari.park@example.com", OWN, False),
    Role("SW", "alexw@example.com", OWN, False),
    Role("OT", "adelev@example.com", OWN, False),
    Role("ASCP", "ruth.evans@example.com", OWN, False),
    Role("OTA", "kim.lowe@example.com", OWN, False),
    Role("MOD", "pattif@example.com", OWN_AND_SAMPLE, True),
)  # fmt: skip


def test_every_role_of_the_framework_is_in_the_matrix(framework: Framework) -> None:
    assert {r.code for r in framework.roles} == {r.code for r in ROLES}


@dataclass
class World:
    harness: BotHarness
    sams_audit: int


@pytest.fixture
async def world(sqlite_database: Database, framework: Framework) -> World:
    """The demo roster (and an AP), and Sam's completed self-audit drawn for moderation."""
    async with sqlite_database.session() as session:
        roster = staff_csv() + AP_ROW + "\n"
        assert (await import_staff(session=session, framework=framework, text=roster)).ok
        assert (await import_cases(session=session, text=cases_csv(date(2026, 11, 2)))).ok
        requested = await request_audit(
            session=session, framework=framework, auditor_email="sam.green@example.com",
            standard_number=3, month="2026-11", today=date(2026, 11, 23),
        )  # fmt: skip
    audit_id = requested.audit.id
    assert audit_id is not None
    await complete(sqlite_database, framework, audit_id)
    async with sqlite_database.session() as session:
        session.add(ModerationSample(audit_id=audit_id, month="2026-11"))
    harness = BotHarness(database=sqlite_database, framework=framework, clock=lambda: DECEMBER)
    return World(harness, audit_id)


@pytest.mark.parametrize("role", ROLES, ids=[r.code for r in ROLES])
async def test_each_role_against_each_command(role: Role, world: World) -> None:
    harness, user = world.harness, role.user

    help_card = (await harness.say(user, "help")).card
    assert "How to use the audit bot" in all_text(help_card)
    assert ("moderation" in all_text(help_card).lower()) is role.moderates

    listing = await harness.say(user, "my audits")
    assert "can't find you" not in listing.text
    assert listing.cards or "no audits" in listing.text.lower()

    new = (await harness.say(user, "new audit")).card
    assert "standard" in all_text(new).lower()
    assert "can't find you" not in (await harness.say(user, "resume")).text
    assert "nothing to cancel" in (await harness.say(user, "cancel")).text

    moderation = await harness.say(user, "moderation")
    if role.moderates:
        assert "Audits to moderate" in all_text(moderation.card)
    else:
        assert moderation.cards == []
        assert "Moderation is done by moderators" in moderation.text

    report = (await harness.say(user, "report 2026-11")).card
    assert f"Covering: {role.report_scope}." in all_text(report)

    # Card actions on an audit that is not theirs: Sam's, drawn for moderation.
    download = await harness.submit(
        user, None, {"pqf": "audit.download", "audit_id": world.sams_audit}
    )
    if role.sees_sams_audit:
        assert "Download" in all_text(download.card)
    else:
        assert download.cards == []
        assert "not one you may see" in download.text

    claim = await harness.submit(
        user, None, {"pqf": "moderation.claim", "audit_id": world.sams_audit}
    )
    if role.moderates:
        assert "You have claimed this audit" in claim.text
    else:
        assert claim.cards == []
        assert "Only moderators" in claim.text

    # Nobody, whatever their role, may answer someone else's audit.
    opened = await harness.submit(user, None, {"pqf": "audit.open", "audit_id": world.sams_audit})
    assert "I can't find that audit among yours, so nothing was changed" in opened.text
    assert opened.cards == []
    answer = await harness.submit(user, None, {
        "pqf": "audit.criterion", "audit_id": world.sams_audit, "seq": 0,
        "step": "criterion:3.1", "nav": "next", "rating": "below", "evidence": "overwritten",
    })  # fmt: skip
    assert answer.cards == []
    async with harness.database.session() as session:
        audit = await session.get(AuditRequest, world.sams_audit)
        assert audit is not None
        assert audit.status == "submitted"


# -- taken off the roster -----------------------------------------------------------------


async def test_someone_taken_off_the_roster_loses_access_at_once(
    world: World, framework: Framework
) -> None:
    harness = world.harness
    alex = person("alexw@example.com")
    async with harness.database.session() as session:
        requested = await request_audit(
            session=session, framework=framework, auditor_email="alexw@example.com",
            standard_number=3, month="2026-11", today=date(2026, 11, 23),
        )  # fmt: skip
    audit_id = requested.audit.id
    turn = await harness.submit(alex, None, {"pqf": "audit.open", "audit_id": audit_id})
    choice = inputs(turn.card)["case_choice"]["choices"][0]["value"]
    turn = await harness.press(alex, turn, "Use this case", case_choice=choice)
    assert "Criterion 1 of" in all_text(turn.card)
    async with harness.database.session() as session:
        before = (await session.get(AuditRequest, audit_id)).model_dump()  # type: ignore[union-attr]

    # The roster is re-imported with Alex marked as left.
    roster = staff_csv().replace(
        f"Mendip Adult Social Care Team,meganb@example.com,{alex.aad_object_id},yes",
        f"Mendip Adult Social Care Team,meganb@example.com,{alex.aad_object_id},no",
    )
    assert roster != staff_csv()
    async with harness.database.session() as session:
        assert (await import_staff(session=session, framework=framework, text=roster)).ok

    # The very next card press, command or link is refused, and nothing changes.
    pressed = await harness.press(alex, turn, "Next", rating="meets", evidence="Late answer")
    assert "can't find you on the Adult Social Care audit roster" in pressed.text
    assert pressed.cards == []
    assert pressed.updated == []
    for command in ("my audits", "resume", "report", "new audit"):
        refused = await harness.say(alex, command)
        assert "can't find you" in refused.text
        assert refused.cards == []
    async with harness.database.session() as session:
        after = (await session.get(AuditRequest, audit_id)).model_dump()  # type: ignore[union-attr]
    assert after == before  # (signed links refuse them too: see test_report_access)


# -- the message limit ------------------------------------------------------------------------


async def test_too_many_messages_are_refused_politely_and_counted(
    world: World, framework: Framework
) -> None:
    now = itertools.count()
    ticks = {"t": 0.0}
    limited: list[int] = []
    harness = BotHarness(
        database=world.harness.database, framework=framework, clock=lambda: DECEMBER,
        rate_limit=MessageRateLimit(3, 10, clock=lambda: ticks["t"]),
    )  # fmt: skip
    harness.bot._on_rate_limited = lambda: limited.append(next(now))
    alex, adele = person("alexw@example.com"), person("adelev@example.com")

    answered = [await harness.say(alex, "help") for _ in range(3)]
    assert all(t.cards for t in answered)
    slow_down = await harness.say(alex, "help")
    assert slow_down.cards == []
    assert "faster than I can keep up with" in slow_down.text
    assert "nothing you saved is lost" in slow_down.text
    quiet = await harness.say(alex, "help")  # told once per window, then dropped silently
    assert quiet.sent == []
    assert len(limited) == 2
    assert (await harness.say(adele, "help")).cards  # others are not held up

    ticks["t"] = 10.5  # the window has passed
    assert (await harness.say(alex, "help")).cards


def test_a_burst_of_one_press_is_answered_twice_at_most_then_forgotten() -> None:
    ticks = {"t": 100.0}
    presses = RepeatedPresses(seconds=10, clock=lambda: ticks["t"])
    assert [presses.allow("submit") for _ in range(4)] == [True, True, False, False]
    assert presses.allow("another card")
    ticks["t"] += 10.5  # the burst is over: the same press is handled again
    assert presses.allow("submit")


async def test_one_chats_turns_run_one_after_another() -> None:
    gate = OneTurnAtATime()
    order: list[str] = []

    async def turn(chat: str, name: str, hold: asyncio.Event | None) -> None:
        async with gate.turn(chat):
            order.append(f"{name} starts")
            if hold is not None:
                await hold.wait()
            order.append(f"{name} ends")

    held = asyncio.Event()
    first = asyncio.create_task(turn("a", "first", held))
    second = asyncio.create_task(turn("a", "second", None))
    elsewhere = asyncio.create_task(turn("b", "other chat", None))
    await elsewhere
    assert order == ["first starts", "other chat starts", "other chat ends"]
    held.set()
    await asyncio.gather(first, second)
    assert order[3:] == ["first ends", "second starts", "second ends"]
    assert gate._chats == {}  # nothing kept once the chats are quiet
