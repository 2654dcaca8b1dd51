"""`board pack` in Teams: the report's owners choose, write, preview and publish the pack.

Driven through botbuilder's TestAdapter as Teams users, on the September 2023 history. The
buttons here are pressed as `Action.Submit` messages, as cards sent before Universal Actions
still send them, and answered with messages; the same buttons pressed as `Action.Execute`,
answered in place of the card, are in `test_board_pack_in_place.py`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from bot.app import create_app
from bot.links import LinkMaker
from bot.settings import load_settings
from practice.board_pack import MAX_COMMENTARY, PackWords
from practice.framework import Framework
from reports.board_pack import publish_month_pack
from storage import board_packs
from storage.audit_import import import_audits
from storage.csv_import import import_staff
from storage.database import Database
from storage.models import BoardPack, BoardPackDraft, LearningAction, OutboxMessage, Staff
from storage.retention import purge
from tests.conftest import NOW, ROOT
from tests.fake_connector import FakeConnector
from tests.harness import BotHarness, Turn, User, action, actions, all_text, inputs
from tests.test_http_app import activity, client_for, dev_settings, seeded
from tests.test_monthly_cycle import LONDON
from tests.test_report_access import SECRET, path

HISTORY = ROOT / "examples" / "history"
OWNER = User("00000000-0000-0000-0000-00000000a027", "user-id-27", "Manager 027")  # PDAP
OTHER_OWNER = User("00000000-0000-0000-0000-00000000a028", "user-id-28", "Manager 028")  # PDAP
DIRECTOR = User("00000000-0000-0000-0000-00000000a001", "user-id-01", "Manager 001")  # sees all


async def seed(database: Database, framework: Framework) -> None:
    async with database.session() as session:
        staff = (HISTORY / "staff.csv").read_text()
        assert (await import_staff(session=session, framework=framework, text=staff)).ok
        audits = (HISTORY / "audits-2023-09.csv").read_text()
        assert not (await import_audits(session=session, framework=framework, text=audits)).errors
        for user, email in ((OWNER, "staff027"), (OTHER_OWNER, "staff028"), (DIRECTOR, "staff001")):
            row = (
                await session.exec(select(Staff).where(Staff.email == f"{email}@somerset.example"))
            ).one()
            row.aad_object_id = user.aad_object_id
            session.add(row)


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    fake = await FakeConnector().start()
    yield fake
    await fake.close()


@pytest.fixture
async def harness(sqlite_database: Database, framework: Framework, clock: object) -> BotHarness:
    await seed(sqlite_database, framework)
    return BotHarness(database=sqlite_database, framework=framework, clock=clock)  # type: ignore[arg-type]


def filled(card: dict[str, Any], **changes: str) -> dict[str, str]:
    """Return every input of the card with its value, as Teams submits them, changed so."""
    values = {key: str(element.get("value", "")) for key, element in inputs(card).items()}
    return values | changes


async def press(harness: BotHarness, user: User, turn: Turn, title: str, **changes: str) -> Turn:
    card = turn.card
    return await harness.submit(
        user, turn.card_ids[-1], {**action(card, title), **filled(card, **changes)}
    )


async def packs(database: Database) -> list[BoardPack]:
    async with database.session() as session:
        return list(await session.exec(select(BoardPack).order_by(BoardPack.version)))


async def test_an_owner_chooses_writes_previews_and_publishes_the_pack(
    harness: BotHarness, sqlite_database: Database
) -> None:
    turn = await harness.say(OWNER, "Board pack 2023-09")
    card = turn.card
    assert "Pack for September 2023" in all_text(card)
    toggles = [key for key in inputs(card) if key.startswith("quote_")]
    assert len(toggles) == 5  # the month's quotes marked suitable: fewer than the shortlist's 10
    assert all(inputs(card)[key]["value"] == "true" for key in toggles)
    assert {"summary", "commentary_1", "reason", "new_action_text"} <= inputs(card).keys()

    # Leave out two quotes, write a summary and a commentary, add an action: saved as a draft.
    dropped = toggles[:2]
    turn = await press(
        harness, OWNER, turn, "Save", summary="A good month for relationships.",
        commentary_1="Relationships were strong.", new_action_standard="1",
        new_action_text="Share the good practice in team meetings.",
        new_action_owner="Practice Development", **{key: "false" for key in dropped},
    )  # fmt: skip
    # Answered with a new card, as a press of a card sent before Universal Actions is: the
    # pack card again, a living one (its buttons Action.Execute, answered in place from now).
    assert all_text(turn.card).count("Saved at 10:00, with the new learning action.") == 2
    assert {a["type"] for a in actions(turn.card)} == {"Action.Execute"}
    async with sqlite_database.session() as session:
        draft = await board_packs.draft_of(session=session, month="2023-09")
        action_row = (await session.exec(select(LearningAction))).one()
    assert draft is not None
    assert draft.summary == "A good month for relationships."
    assert draft.commentary == {1: "Relationships were strong."}
    assert len(draft.quote_ids) == len(toggles) - 2
    assert not {int(key.removeprefix("quote_")) for key in dropped} & set(draft.quote_ids)
    assert action_row.theme == "1"
    assert draft.action_ids == (action_row.id,)
    # The action is themed by the standard's name on the card.
    assert inputs(turn.card)[f"action_{action_row.id}"]["value"] == "true"
    assert "Working with people\nShare the good practice in team meetings." in all_text(turn.card)

    # Another owner carries on from the draft: it is in the database, not in a dialog.
    turn = await harness.say(OTHER_OWNER, "board pack 2023-09")
    assert inputs(turn.card)["summary"]["value"] == "A good month for relationships."
    assert inputs(turn.card)[dropped[0]]["value"] == "false"

    preview = await press(harness, OTHER_OWNER, turn, "Preview")
    text = all_text(preview.card)
    assert "Pack for September 2023" in text
    assert "Saved at 10:00. Any owner can carry on from here." in text
    assert "A good month for relationships." in text
    assert "Relationships were strong." in text
    [draft_link] = [a["url"] for a in actions(preview.card) if a["title"] == "Open the draft"]
    assert draft_link.startswith("http://localhost:3978/packs/draft?t=")
    assert await packs(sqlite_database) == []

    # A preview card from before, whose Back to the pack was an Action.Submit, still works.
    back = await harness.submit(
        OTHER_OWNER, "old-preview", {"pqf": "pack.answer", "month": "2023-09", "nav": "edit"}
    )
    assert inputs(back.card)["summary"]["value"] == "A good month for relationships."
    published = await press(harness, OTHER_OWNER, back, "Publish")
    assert "Published version 1: September 2023" in all_text(published.card)
    urls = [a["url"] for a in actions(published.card) if a["type"] == "Action.OpenUrl"]
    assert [u.split("?")[0] for u in urls] == [
        "http://localhost:3978/reports",
        "http://localhost:3978/reports.pdf",
    ]
    [pack] = await packs(sqlite_database)
    content = json.loads(pack.content)
    assert content["pack"]["reason"] == "first publication"
    assert content["pack"]["summary"] == "A good month for relationships."
    assert content["pack"]["commentary"] == {"1": "Relationships were strong."}
    assert content["pack"]["quotes"] == list(draft.quote_ids)
    assert [a["id"] for a in content["actions"]] == [action_row.id]
    # Logged in November 2026, after September 2023 ended: in, because logged by publication.
    assert content["actions"][0]["theme"] == "Working with people"
    assert pack.published_by == "staff028@somerset.example"
    assert pack.html.count('<figure class="quote">') == len(draft.quote_ids)

    # The Board (everyone whose role sees the whole report) is told, through the outbox, once;
    # not the owner who published it, whose card says so.
    async with sqlite_database.session() as session:
        notices = list(
            await session.exec(select(OutboxMessage).where(OutboxMessage.purpose == "board_pack"))
        )
        board = {
            s.id
            for s in await session.exec(select(Staff))
            if s.active and s.role_code in ("DIR", "SM", "PDAP")
            and s.email != "staff028@somerset.example"
        }  # fmt: skip
    assert sorted(n.recipient_id for n in notices) == sorted(board)
    notice = json.loads(notices[0].activity)["attachments"][0]["content"]
    assert "September 2023: version 1 published" in all_text(notice)
    # Its button asks for the month's report: the pack as published, with fresh links.
    opened = await harness.submit(DIRECTOR, None, action(notice, "Open the pack"))
    assert "As published by the Board: version 1" in all_text(opened.card)


async def test_publishing_again_needs_a_reason_and_makes_the_next_version(
    harness: BotHarness, sqlite_database: Database
) -> None:
    turn = await harness.say(OWNER, "board pack 2023-09")
    await press(harness, OWNER, turn, "Publish")
    turn = await harness.say(OWNER, "board pack 2023-09")
    assert "Why it is published again" in all_text(turn.card)
    again = await press(harness, OWNER, turn, "Publish")
    assert "say why it is published again" in all_text(again.card)
    assert len(await packs(sqlite_database)) == 1
    again = await press(harness, OWNER, turn, "Publish", reason="a corrected import")
    assert "Published version 2" in all_text(again.card)
    assert [(p.version, p.reason) for p in await packs(sqlite_database)] == [
        (1, "first publication"),
        (2, "a corrected import"),
    ]


async def test_words_too_long_are_shown_again_to_correct_and_nothing_is_saved(
    harness: BotHarness, sqlite_database: Database
) -> None:
    turn = await harness.say(OWNER, "board pack 2023-09")
    long = "x" * (MAX_COMMENTARY + 1)
    again = await press(
        harness, OWNER, turn, "Save", commentary_1=long, new_action_text="An action"
    )
    text = all_text(again.card)
    assert f"The commentary on standard 1 is {MAX_COMMENTARY + 1:,} characters" in text
    assert "Choose the standard the new learning action is about." in text
    assert "Name the new learning action's owner." in text
    # Said again by the buttons, at the foot of a card many screens long on a phone.
    assert "Nothing was saved: 3 things to correct, listed at the top of the card.\nSave" in text
    # What was typed is kept on the card to correct.
    assert inputs(again.card)["commentary_1"]["value"] == long
    async with sqlite_database.session() as session:
        assert (await session.exec(select(BoardPackDraft))).first() is None
        assert (await session.exec(select(LearningAction))).first() is None


# What a forged press may name that the card never offered, and what the bot says of it.
FORGED_FIELDS: list[tuple[dict[str, str], str]] = [
    ({"quote_999999": "true"}, "audit 999999 has no quote on this month's shortlist"),
    ({"commentary_4": "Not audited"}, "standard 4 has no table in this month's report"),
    ({"action_42": "true"}, "learning action 42 is not one the card offered"),
    ({"new_action_standard": "77"}, "standard 77 is not one a new action may be themed by"),
    ({"smuggled": "x"}, "the card sent a field (smuggled) that is not one of its own"),
]


@pytest.mark.parametrize(("change", "message"), FORGED_FIELDS)
async def test_a_forged_submit_is_refused_and_changes_nothing(
    harness: BotHarness, sqlite_database: Database, change: dict[str, str], message: str
) -> None:
    turn = await harness.say(OWNER, "board pack 2023-09")
    answer = await press(harness, OWNER, turn, "Publish", **change)
    assert f"I can't use that card: {message}. Nothing was changed" in answer.text
    assert await packs(sqlite_database) == []
    async with sqlite_database.session() as session:
        assert (await session.exec(select(BoardPackDraft))).first() is None


async def test_a_malformed_submit_gets_a_message(harness: BotHarness) -> None:
    turn = await harness.say(OWNER, "board pack 2023-09")
    data = action(turn.card, "Save")
    bad = await harness.submit(OWNER, turn.card_ids[-1], {**data, "month": "2023-13"})
    assert "That card sent something I can't read. Nothing was saved." in bad.text
    bad = await harness.submit(OWNER, turn.card_ids[-1], {**data, "summary": ["not", "text"]})
    assert "can't read" in bad.text


async def test_only_the_reports_owners_may_prepare_the_pack(
    harness: BotHarness, sqlite_database: Database
) -> None:
    refused = await harness.say(DIRECTOR, "board pack 2023-09")
    assert "prepared by the report's owners" in refused.text
    assert not refused.cards
    # Nor by pressing an owner's card.
    turn = await harness.say(OWNER, "board pack 2023-09")
    pressed = await press(harness, DIRECTOR, turn, "Publish")
    assert "prepared by the report's owners" in pressed.text
    assert await packs(sqlite_database) == []


async def test_months_the_pack_command_refuses(harness: BotHarness) -> None:
    assert "has not begun" in (await harness.say(OWNER, "board pack 2027-01")).text
    assert "I couldn't read that" in (await harness.say(OWNER, "board pack 2023-13")).text
    # Without a month, last month's pack (October 2026: no audits, no quotes).
    card = (await harness.say(OWNER, "board pack")).card
    assert "Pack for October 2026" in all_text(card)
    assert "No quote was marked as suitable" in all_text(card)


async def test_the_pack_through_the_web_app(
    sqlite_url: str, framework: Framework, connector: FakeConnector
) -> None:
    await seeded(sqlite_url, framework)
    client = await client_for(dev_settings(sqlite_url), framework)
    isaiah = "00000000-0000-0000-0000-0000000000023"  # the demo's PDAP
    try:
        typed = activity(connector.url, "board pack 2026-10", aad=isaiah)
        assert (await client.post("/api/messages", json=typed)).status == 201
        card = connector.cards()[-1]
        assert "Pack for October 2026" in all_text(card)
        pressed = activity(connector.url, "", aad=isaiah) | {
            "value": {**action(card, "Publish"), **filled(card, summary="No audits yet.")}
        }
        assert (await client.post("/api/messages", json=pressed)).status == 201
        assert "Published version 1: October 2026" in all_text(connector.cards()[-1])
        # Someone else (a social worker) is refused, and nothing more is published.
        assert (await client.post("/api/messages", json=activity(connector.url, "")
                                  | {"value": pressed["value"]})).status == 201  # fmt: skip
        assert "prepared by the report's owners" in connector.texts()[-1]
    finally:
        await client.close()
    database = Database(sqlite_url)
    try:
        assert [p.version for p in await packs(database)] == [1]
    finally:
        await database.dispose()


async def import_rows(database: Database, framework: Framework, rows: list[str]) -> None:
    header = (HISTORY / "audits-2023-09.csv").read_text().splitlines()[0]
    async with database.session() as session:
        text = "\n".join([header, *rows]) + "\n"
        assert not (await import_audits(session=session, framework=framework, text=text)).errors


async def test_a_published_month_is_summarised_as_published_and_says_what_changed_since(
    harness: BotHarness, sqlite_database: Database, framework: Framework
) -> None:
    turn = await harness.say(OWNER, "board pack 2023-09")
    await press(harness, OWNER, turn, "Publish")
    [pack] = await packs(sqlite_database)
    summary = all_text((await harness.say(DIRECTOR, "report 2023-09")).card)
    assert "As published by the Board: version 1, 23 November 2026." in summary
    assert "Since version 1 was published on 23 November 2026: nothing has changed." in summary
    assert "180" in summary

    # A late submission (a new audit) and a corrected one (standard 1's ratings changed).
    rows = (HISTORY / "audits-2023-09.csv").read_text().splitlines()
    late = rows[1].replace(",1900013,", ",1999999,")
    corrected = rows[2].replace("Meets,Below,Meets,Below,Meets", "Meets,Meets,Meets,Meets,Meets")
    await import_rows(sqlite_database, framework, [late, corrected])
    summary = all_text((await harness.say(DIRECTOR, "report 2023-09")).card)
    assert (
        "Since version 1 was published on 23 November 2026: 1 audit submitted; figures for "
        "standard 1 changed." in summary
    )
    assert "Audits completed\n180" in summary  # the published count, not the live 181
    assert "181" not in summary
    # The pack itself is as it was published.
    [still] = await packs(sqlite_database)
    assert (still.content, still.html) == (pack.content, pack.html)


async def test_links_to_a_published_month_open_the_pack_and_a_purge_never_changes_it(
    sqlite_url: str, framework: Framework
) -> None:
    database = Database(sqlite_url)
    await seed(database, framework)
    async with database.session() as session:
        await publish_month_pack(
            session=session, framework=framework, zone=LONDON, month="2023-09",
            words=PackWords((48, 51), "A good month."), reason="first publication",
            published_by="staff027@somerset.example", now=NOW,
        )  # fmt: skip
        ids = {s.email: s.id for s in await session.exec(select(Staff))}
    [pack] = await packs(database)
    # Every audit of September 2023 is long past the retention period: its words go.
    async with database.session() as session:
        purged = await purge(session=session, now=NOW, retention_months=24, dry_run=False)
    assert purged.audits == 180
    settings = load_settings(
        env_file=None, DATABASE_URL=sqlite_url, PQF_RUN_SCHEDULER="false", PQF_RUN_SENDER="false",
        PQF_LINK_SECRET=SECRET, PQF_PUBLIC_URL="https://pqf.example",
    )  # fmt: skip
    links = LinkMaker(
        public_url="https://pqf.example", secret=SECRET, minutes=15, clock=lambda: NOW
    )
    client = TestClient(TestServer(create_app(settings, framework=framework, clock=lambda: NOW)))
    await client.start_server()
    try:
        director = ids["staff001@somerset.example"]
        page = await (await client.get(path(links.report(director, "2023-09", "2023-09")))).text()
        assert page == pack.html  # as published: its quotes, though the purge erased them
        assert "Over more than a year you have replied" in page
        assert "A good month." in page
        # A period of months, or a team's view, is made from the live figures.
        live = await (await client.get(path(links.report(director, "2023-09", "2023-10")))).text()
        assert "Version 1" not in live
        assert "Over more than a year you have replied" not in live
        manager = ids["staff007@somerset.example"]  # a service manager: their teams
        team = await (await client.get(path(links.report(manager, "2023-09", "2023-09")))).text()
        assert "Version 1" not in team
        # The pack as a PDF, for those who see the whole report only.
        pdf = await client.get(path(links.report(director, "2023-09", "2023-09", pdf=True)))
        assert pdf.status == 200
        assert pdf.headers["Content-Disposition"] == (
            'attachment; filename="board-pack-2023-09-v1.pdf"'
        )
        assert (await pdf.read()).startswith(b"%PDF")
        refused = await client.get(path(links.report(manager, "2023-09", "2023-09", pdf=True)))
        assert refused.status == 404
        unpublished = await client.get(path(links.report(director, "2023-10", "2023-10", pdf=True)))
        assert unpublished.status == 404
    finally:
        await client.close()
    [still] = await packs(database)
    assert (still.content, still.html) == (pack.content, pack.html)
    await database.dispose()
