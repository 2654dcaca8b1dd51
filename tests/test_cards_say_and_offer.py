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
from storage.csv_import import import_cases, import_staff
from storage.database import Database
from tests.conftest import NOW, TODAY
from tests.harness import BotHarness, User, actions, all_text
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
