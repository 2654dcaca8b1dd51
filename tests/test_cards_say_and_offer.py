"""Each card says the right thing to the right person and offers only what works: the help
card lists what that person may use, Download is offered only for finished audits, the
feedback box asks to leave names out, and a manager's digest says why the bot cannot reach
someone (never opened it, removed it, blocked it) rather than guessing."""

from __future__ import annotations

from typing import Any

import pytest

from bot.audit_requests import request_audit
from bot.demo_data import cases_csv, staff_csv
from cards.help_cards import help_card
from practice.framework import Framework
from storage import audits as audit_store
from storage.csv_import import import_cases, import_staff
from storage.database import Database
from tests.conftest import NOW, TODAY
from tests.harness import BotHarness, User, action, actions, all_text, inputs
from tests.test_moderation_and_outcomes import complete
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
    expected += ["cancel", "help"]
    welcome = (await harness.install(user)).cards[0]
    assert "Hello" in all_text(welcome)
    assert commands_on(welcome) == expected
    assert commands_on((await harness.say(user, "help")).card) == expected
    # Everything listed works for them: none is refused or misunderstood.
    for command in expected:
        answered = await harness.say(user, command)
        assert answered.sent, command
        for refusal in ("can't find you", "Moderation is done by moderators", "didn't understand"):
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
