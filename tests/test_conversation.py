"""The conversation as people have it in Teams: double clicks, bursts of presses, `cancel`,
typing mid-audit, all through `/api/messages` of the app in process, with real concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient, TestServer

from admin.demo_data import cases_csv, staff_csv
from bot.app import create_app
from bot.settings import load_settings
from messages.requests import request_audit
from practice.framework import Framework
from storage import audits as audit_store
from storage.csv_import import import_cases, import_staff
from storage.database import Database
from storage.models import AuditStatus
from tests.conftest import NOW, TODAY
from tests.fake_connector import FakeConnector
from tests.harness import actions
from tests.teams_chat import ChatMessage, Person, Teams

ALEX = Person("alexw@example.com", "Alex Wilber", "00000000-0000-0000-0000-0000000000020")


@dataclass
class Bot:
    """The app in process, a fake Connector, the database and Teams as people use it."""

    database: Database
    framework: Framework
    teams: Teams
    connector: FakeConnector


@pytest.fixture
async def bot(sqlite_url: str, framework: Framework) -> AsyncIterator[Bot]:
    database = Database(sqlite_url)
    async with database.session() as session:
        assert (await import_staff(session=session, framework=framework, text=staff_csv())).ok
        assert (await import_cases(session=session, text=cases_csv(TODAY))).ok
    connector = await FakeConnector().start()
    settings = load_settings(
        env_file=None, DATABASE_URL=sqlite_url, PQF_ENVIRONMENT="development",
        PQF_RUN_SCHEDULER="false", PQF_RUN_SENDER="false",
    )  # fmt: skip
    client = TestClient(TestServer(create_app(settings, framework=framework, clock=lambda: NOW)))
    await client.start_server()
    try:
        yield Bot(database, framework, Teams(client, connector), connector)
    finally:
        await client.close()
        await connector.close()
        await database.dispose()


async def self_audit(bot: Bot, email: str = "alexw@example.com", *, answered: bool = True) -> int:
    """Ask for a self-audit of standard 3 with its case confirmed and, if `answered`, every
    answer but the submit."""
    async with bot.database.session() as session:
        requested = await request_audit(
            session=session, framework=bot.framework, auditor_email=email, standard_number=3,
            month="2026-11", today=TODAY,
        )  # fmt: skip
        audit = requested.audit
        assert audit.id is not None
        detail = await audit_store.audit_detail(session=session, audit_id=audit.id)
        assert detail is not None
        case = next(iter(await _own_cases(session, detail.auditor.id or 0)))
        await audit_store.confirm_case(
            session=session, audit=audit, case=case, subject=detail.auditor
        )
        if not answered:
            return audit.id
        standard = bot.framework.standard(3)
        assert standard is not None
        for criterion in standard.criteria:
            await audit_store.save_rating(
                session=session, audit_id=audit.id, criterion_id=criterion.id, rating="meets",
                evidence=f"Evidence for {criterion.id}",
            )  # fmt: skip
        await audit_store.save_feedback_call(
            session=session, audit_id=audit.id, contacted=["person"], what_they_said="Fine",
            no_contact_reason="", suitable_for_report=False, complete=True,
        )  # fmt: skip
        return audit.id


async def _own_cases(session: object, worker_id: int) -> list[object]:
    from sqlmodel import select

    from storage.models import CaseRecord

    rows = await session.exec(  # type: ignore[attr-defined]
        select(CaseRecord).where(CaseRecord.allocated_worker_id == worker_id)
    )
    return list(rows)


def texts(messages: list[ChatMessage]) -> list[str]:
    return [m.text for m in messages if m.text]


async def test_a_double_click_on_submit_says_it_was_submitted_and_nothing_else(bot: Bot) -> None:
    audit_id = await self_audit(bot)
    await bot.teams.install(ALEX)
    await bot.teams.say(ALEX, "resume")
    summary = bot.teams.latest_card_with(ALEX, "Submit audit")
    before = len(bot.teams.chat(ALEX))
    await asyncio.gather(*(bot.teams.press(ALEX, summary, "Submit audit") for _ in range(2)))
    said = texts(bot.teams.since(ALEX, before))
    assert len(said) == 2, said
    assert "is submitted" in said[0]
    assert said[1].startswith("That audit was already submitted")
    assert not any("out of date" in line for line in said)
    async with bot.database.session() as session:
        detail = await audit_store.audit_detail(session=session, audit_id=audit_id)
    assert detail is not None
    assert detail.audit.status == AuditStatus.SUBMITTED


async def test_a_burst_of_presses_gets_one_answer_besides_what_the_press_does(bot: Bot) -> None:
    audit_id = await self_audit(bot, answered=False)
    await bot.teams.install(ALEX)
    await bot.teams.say(ALEX, "resume")
    criterion = bot.teams.latest_card_with(ALEX, "Next")
    assert "Criterion 1 of 8" in criterion.words
    before = len(bot.teams.chat(ALEX))
    await asyncio.gather(
        *(
            bot.teams.press(ALEX, criterion, "Next", rating="exceeds", evidence="Seen")
            for _ in range(5)
        )
    )
    after = bot.teams.since(ALEX, before)
    cards = [m.words for m in after if m.card is not None]
    assert len(cards) == 1
    assert "Criterion 2 of 8" in cards[0]
    said = texts(after)
    assert len(said) == 1, said
    assert "out of date" in said[0]
    async with bot.database.session() as session:
        detail = await audit_store.audit_detail(session=session, audit_id=audit_id)
    assert detail is not None
    assert (detail.ratings["3.1"].rating, detail.ratings["3.1"].evidence) == ("exceeds", "Seen")
    assert detail.audit.current_step == "criterion:3.2"


async def test_five_presses_of_submit_say_it_is_submitted_then_already_submitted(
    bot: Bot,
) -> None:
    await self_audit(bot)
    await bot.teams.install(ALEX)
    await bot.teams.say(ALEX, "resume")
    summary = bot.teams.latest_card_with(ALEX, "Submit audit")
    before = len(bot.teams.chat(ALEX))
    await asyncio.gather(*(bot.teams.press(ALEX, summary, "Submit audit") for _ in range(5)))
    said = texts(bot.teams.since(ALEX, before))
    assert len(said) == 2, said
    assert "is submitted" in said[0]
    assert said[1].startswith("That audit was already submitted on ")
    assert said[1].endswith(": nothing more is needed.")


async def test_after_cancel_the_old_card_is_retired_and_its_buttons_say_how_to_carry_on(
    bot: Bot,
) -> None:
    audit_id = await self_audit(bot, answered=False)
    await bot.teams.install(ALEX)
    await bot.teams.say(ALEX, "resume")
    live = bot.teams.latest_card_with(ALEX, "Next")
    pressed_before = ChatMessage(live.id, dict(live.activity), live.proactive, live.position)
    replies = await bot.teams.say(ALEX, "cancel")
    assert texts(replies) == [
        "Stopped. Your answers so far are saved: type **resume** to carry on."
    ]
    # The card in the chat no longer has buttons: it says the audit was stopped.
    retired = next(m for m in bot.teams.chat(ALEX) if m.id == live.id)
    assert retired.card is not None
    assert not actions(retired.card)
    assert "Stopped: your answers so far are saved. Type resume to carry on" in retired.words
    # Pressed all the same (Teams had not shown the change yet): a clear answer, no change.
    answer = await bot.teams.press(ALEX, pressed_before, "Next", rating="below", evidence="x")
    assert texts(answer) == [
        "That card is from before you stopped this audit, so nothing was changed. Your answers "
        "so far are saved: type **resume** to carry on where you left off."
    ]
    async with bot.database.session() as session:
        detail = await audit_store.audit_detail(session=session, audit_id=audit_id)
    assert detail is not None
    assert detail.ratings == {}
    resumed = await bot.teams.say(ALEX, "resume")
    assert "Criterion 1 of 8" in resumed[-1].words


async def test_unknown_text_mid_audit_gets_a_short_hint_not_the_help_card(bot: Bot) -> None:
    await self_audit(bot, answered=False)
    await bot.teams.install(ALEX)
    await bot.teams.say(ALEX, "resume")
    live = bot.teams.latest_card_with(ALEX, "Next")
    replies = await bot.teams.say(ALEX, "what do I put here?")
    assert [m.card for m in replies] == [None]
    assert texts(replies) == [
        "Sorry, I didn't understand that. You are in the middle of an audit: answer on its "
        "latest card (type **resume** to see it again), or type **cancel** to stop; your "
        "answers are kept."
    ]
    # The latest card is still the audit's.
    assert bot.teams.latest_card_with(ALEX, "Next").id == live.id
    # Outside an audit, unknown text still gets the help card.
    await bot.teams.say(ALEX, "cancel")
    outside = await bot.teams.say(ALEX, "what do I put here?")
    assert texts(outside) == ["Sorry, I didn't understand that."]
    assert [m for m in outside if m.card is not None]
