"""Each card says the right thing to the right person and offers only what works: the help
card lists what that person may use, Download is offered only for finished audits, the
feedback box asks to leave names out, and a manager's digest says why the bot cannot reach
someone (never opened it, removed it, blocked it) rather than guessing."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from sqlmodel import col, select

from admin.demo_data import cases_csv, staff_csv
from bot.adapter import create_adapter
from bot.settings import load_settings
from cards.cycle_cards import DIGEST_STATES
from cards.help_cards import help_card
from delivery.outcomes import Delivery
from delivery.sender import OutboxSender
from messages.requests import request_audit
from practice.framework import Framework
from scheduler.jobs import dispatch_month, send_digests, team_digest_rows
from storage import audits as audit_store
from storage import roster
from storage.csv_import import import_cases, import_staff
from storage.database import Database
from storage.models import OutboxMessage, Staff
from storage.roster import Reach
from tests.conftest import NOW, TODAY
from tests.delivery_helpers import render_with
from tests.fake_connector import FakeConnector, Fault
from tests.harness import BotHarness, User, action, actions, all_text, inputs
from tests.test_moderation_and_outcomes import complete
from tests.test_monthly_cycle import seeded
from tests.test_roles_and_limits import ROLES, Role, World
from tests.test_roles_and_limits import world as world  # a fixture, used by name

ALEX = User("00000000-0000-0000-0000-0000000000020", "user-id-0", "Alex Wilber")


def commands_on(card: dict[str, Any]) -> list[str]:
    """Return the commands a help card lists, in order."""
    return [
        fact["title"]
        for element in card["body"]
        if element.get("type") == "FactSet"
        for fact in element["facts"]
    ]


# -- the help card ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES, ids=[r.code for r in ROLES])
async def test_the_help_card_lists_what_each_person_may_use(role: Role, world: World) -> None:
    harness, user = world.harness, role.user
    expected = ["my audits", "resume", "new audit", "report"]
    expected += ["moderation"] if role.moderates else []
    # The report's owners (the framework marks the PDAPs) prepare the Board's pack.
    expected += ["board pack"] if role.code == "PDAP" else []
    expected += ["cancel", "help"]
    welcome = (await harness.install(user)).cards[0]
    assert "Hello" in all_text(welcome)
    assert commands_on(welcome) == expected
    assert commands_on((await harness.say(user, "help")).card) == expected
    # Everything listed works for them: none is refused or misunderstood.
    for command in expected:
        answered = await harness.say(user, command)
        assert answered.sent, command
        for refusal in (
            "can't find you", "Moderation is done by moderators", "didn't understand",
            "prepared by the report's owners",
        ):  # fmt: skip
            assert refusal not in answered.text, (command, answered.text)


def test_resume_is_offered_only_with_something_to_resume() -> None:
    idle = help_card(name="Alex Wilber", greeting=False, outstanding=0, moderator=False)
    busy = help_card(name="Alex Wilber", greeting=False, outstanding=2, moderator=False)
    assert [a["title"] for a in idle["actions"]] == ["My audits"]
    assert [a["title"] for a in busy["actions"]] == ["My audits", "Resume"]


# -- downloads --------------------------------------------------------------------------------


async def test_the_report_card_offers_downloads_only_for_finished_audits(
    sqlite_database: Database, framework: Framework
) -> None:
    database = sqlite_database
    async with database.session() as session:
        assert (await import_staff(session=session, framework=framework, text=staff_csv())).ok
        assert (await import_cases(session=session, text=cases_csv(TODAY))).ok
        made = [
            await request_audit(
                session=session, framework=framework, auditor_email="alexw@example.com",
                standard_number=number, month="2026-11", today=TODAY,
            )
            for number in (3, 2)
        ]  # fmt: skip
    finished, unfinished = (m.audit.id for m in made)
    assert finished is not None
    assert unfinished is not None
    await complete(database, framework, finished)
    harness = BotHarness(database=database, framework=framework, clock=lambda: NOW)

    card = (await harness.say(ALEX, "report 2026-11")).card
    downloads = [a["data"]["audit_id"] for a in actions(card) if a["title"] == "Download"]
    assert downloads == [finished]
    assert "not submitted yet" in all_text(card)
    links = await harness.submit(ALEX, None, {"pqf": "audit.download", "audit_id": finished})
    assert "Download the audit" in all_text(links.card)
    assert {a["title"] for a in actions(links.card)} == {"Download as PDF", "Open as a web page"}
    # A crafted press for the unfinished one is told so, and gets no links.
    refused = await harness.submit(ALEX, None, {"pqf": "audit.download", "audit_id": unfinished})
    assert refused.cards == []
    assert "not finished yet" in refused.text


# -- the feedback box ------------------------------------------------------------------------


async def test_the_feedback_box_asks_to_leave_names_out_and_holds_named_quotes(
    sqlite_database: Database, framework: Framework
) -> None:
    database = sqlite_database
    async with database.session() as session:
        assert (await import_staff(session=session, framework=framework, text=staff_csv())).ok
        assert (await import_cases(session=session, text=cases_csv(TODAY))).ok
        made = await request_audit(
            session=session, framework=framework, auditor_email="alexw@example.com",
            standard_number=3, month="2026-11", today=TODAY,
        )  # fmt: skip
    audit_id = made.audit.id
    assert audit_id is not None
    harness = BotHarness(database=database, framework=framework, clock=lambda: NOW)
    turn = await harness.submit(ALEX, None, {"pqf": "audit.open", "audit_id": audit_id})
    choice = inputs(turn.card)["case_choice"]["choices"][0]["value"]
    turn = await harness.press(ALEX, turn, "Use this case", case_choice=choice)
    while "Criterion" in all_text(turn.card):
        turn = await harness.press(ALEX, turn, "Next", rating="meets", evidence="Good notes")
    assert "Feedback call" in all_text(turn.card)
    said = inputs(turn.card)["what_they_said"]
    assert "without names" in said["label"]
    assert "never a name or initials" in said["placeholder"]
    assert "Practice Quality Board" in said["placeholder"]

    named = "Mrs B said the worker listened and explained the plan."
    held = await harness.press(
        ALEX, turn, "Next", contacted="person", what_they_said=named, suitable_for_report="true"
    )
    shown = held.updated_cards()[-1]  # the same card again, in place, saying what to fix
    assert "Feedback call" in all_text(shown)
    assert "leave names out: you wrote “Mrs B”" in all_text(shown)
    async with database.session() as session:
        detail = await audit_store.audit_detail(session=session, audit_id=audit_id)
    assert detail is not None
    assert detail.feedback is not None
    assert detail.feedback.what_they_said == named  # kept as a draft, nothing lost
    assert detail.feedback.complete is False

    unnamed = "She said the worker listened and explained the plan."
    card_id = held.updated[-1].id
    data = action(shown, "Next")
    done = await harness.submit(
        ALEX, card_id,
        {**data, "contacted": "person", "what_they_said": unnamed, "suitable_for_report": "true"},
    )  # fmt: skip
    assert "Check your answers" in all_text(done.card)


# -- the digest ------------------------------------------------------------------------------


def test_every_way_of_being_out_of_reach_has_its_place_in_the_digest() -> None:
    assert {r.value for r in Reach if r is not Reach.REACHABLE} <= set(DIGEST_STATES)


async def test_the_digest_says_why_someone_cannot_be_reached(
    database: Database, framework: Framework, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jordan Price's team: each of them out of reach in a different way, or not at all."""
    cycle = await seeded(database, framework, date(2026, 11, 2))
    async with database.session() as session:
        lee = (
            "lee.ash@example.com,Lee Ash,SW,Sedgemoor Adult Social Care Team,"
            "jordan.price@example.com,,yes\n"
        )
        imported = await import_staff(session=session, framework=framework, text=staff_csv() + lee)
        assert imported.ok
    connector = await FakeConnector().start()
    try:
        # Four of them opened the bot before the month began; Priya never has, and Lee has
        # no Teams id on the roster. Then Tom removed the app.
        async with database.session() as session:
            people = {
                s.email.split("@")[0]: s
                for s in await session.exec(
                    select(Staff).where(col(Staff.team).contains("Sedgemoor"))
                )
            }
            for name in ("sam.green", "tom.hale", "dev.patel", "ben.ward"):
                person = people[name]
                assert person.aad_object_id is not None
                await roster.remember_conversation(
                    session=session, aad_object_id=person.aad_object_id,
                    reference=roster.ChatReference(
                        channel_id="msteams", service_url=connector.url,
                        conversation_id=f"a:{name}", tenant_id="t",
                        teams_user_id=f"29:{name}", bot_id="28:bot",
                    ),
                )  # fmt: skip
            tom = people["tom.hale"].aad_object_id
            assert tom is not None
            await roster.forget_installation(session=session, aad_object_id=tom)
        await dispatch_month(cycle, "2026-11", seed="reach")
        async with database.session() as session:
            queued = {
                m.recipient_id: m.id
                for m in await session.exec(select(OutboxMessage))
                if m.purpose == "audit_request"
            }
        connector.blocked = {"a:sam.green"}
        monkeypatch.setenv("PQF_ENVIRONMENT", "development")
        monkeypatch.setenv("MICROSOFT_APP_ID", "")
        sender = OutboxSender(
            database=database, adapter=create_adapter(load_settings(env_file=None)), app_id="",
            render=render_with(database, framework),
        )  # fmt: skip
        outcomes = {}
        for name in ("sam.green", "dev.patel", "ben.ward"):
            if name == "ben.ward":
                connector.script.append(Fault(status=404))  # the chat is gone
            message_id = queued[people[name].id]
            assert message_id is not None
            outcomes[name] = (await sender.deliver(message_id)).outcome
        assert outcomes == {
            "sam.green": Delivery.UNDELIVERABLE,
            "dev.patel": Delivery.SENT,
            "ben.ward": Delivery.UNDELIVERABLE,
        }
    finally:
        await connector.close()

    digest_day = date(2026, 11, 25)
    async with database.session() as session:
        jordan = (
            await session.exec(select(Staff).where(Staff.email == "jordan.price@example.com"))
        ).one()
        rows = {r.name: r.state for r in await team_digest_rows(session, cycle, jordan, "2026-11", digest_day)}  # fmt: skip
    assert rows == {
        "Sam Green": "blocked",
        "Priya Shah": "never_opened",
        "Tom Hale": "removed",
        "Dev Patel": "not_started",
        "Ben Ward": "undelivered",
        "Lee Ash": "no_teams_id",
    }

    await send_digests(cycle, digest_day)
    async with database.session() as session:
        message = (
            await session.exec(
                select(OutboxMessage).where(
                    OutboxMessage.purpose == "digest", OutboxMessage.recipient_id == jordan.id
                )
            )
        ).one()
    text = message.activity
    assert "Not opened the audit bot yet" in text
    assert "Blocked the audit bot" in text
    assert "Removed the audit bot" in text
    assert "blocked or removed" not in text  # no more guessing
    opening = next(
        block["text"]
        for block in json.loads(text)["attachments"][0]["content"]["body"]
        if block.get("text", "").startswith("Audits are due")
    )
    assert opening == (
        "Audits are due by Monday 30 November 2026. 1 not started, 1 not opened the audit bot "
        "yet, 1 removed the audit bot, 1 blocked the audit bot, 1 not reached by the audit bot, "
        "1 not linked to Teams on the roster."
    )

    # Sam opens the bot again: the chat stored anew outranks the old refusal.
    async with database.session() as session:
        sam = people["sam.green"]
        assert sam.aad_object_id is not None
        await roster.remember_conversation(
            session=session, aad_object_id=sam.aad_object_id,
            reference=roster.ChatReference(
                channel_id="msteams", service_url="https://smba.example.test/",
                conversation_id="a:sam.green", tenant_id="t",
                teams_user_id="29:sam.green", bot_id="28:bot",
            ),
        )  # fmt: skip
        reach = await roster.reach_of(session=session, people=[sam])
    assert reach == {sam.id: Reach.REACHABLE}
