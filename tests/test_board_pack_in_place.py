"""The Board's pack as one card, updated in place: every button an `Action.Execute`.

Driven through botbuilder's TestAdapter as Teams sends a press: an `adaptiveCard/action`
invoke whose answer (the InvokeResponse) carries the card that takes the pressed one's place.
No press may send a message or update a card through Teams; the notice to the Board still
goes through the outbox. On the September 2023 history.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlmodel import select

from practice.board_pack import MAX_COMMENTARY
from practice.framework import Framework
from storage import board_packs
from storage.database import Database
from storage.models import BoardPackDraft, LearningAction, OutboxMessage, Staff
from tests.harness import BotHarness, LivingCard, Turn, User, action, actions, all_text, inputs
from tests.test_board_pack_chat import (
    DIRECTOR,
    FORGED_FIELDS,
    OTHER_OWNER,
    OWNER,
    filled,
    packs,
    seed,
)


@pytest.fixture
async def harness(sqlite_database: Database, framework: Framework, clock: object) -> BotHarness:
    await seed(sqlite_database, framework)
    return BotHarness(database=sqlite_database, framework=framework, clock=clock)  # type: ignore[arg-type]


async def pack_card(harness: BotHarness, user: User, month: str = "2023-09") -> LivingCard:
    """Return the pack card `board pack` sends, now in the owner's chat."""
    return LivingCard.sent_in(harness, user, await harness.say(user, f"board pack {month}"))


async def press(card: LivingCard, title: str, **changes: str) -> Turn:
    """Press a button as Teams does: the card's every input sent with it, some changed."""
    turn = await card.press(title, **filled(card.card, **changes))
    assert turn.messages == [], "a press of the pack card is answered in place only"
    assert turn.updated == []
    return turn


def buttons(card: dict[str, Any]) -> dict[str, str]:
    return {a["title"]: a["type"] for a in actions(card)}


def link(card: dict[str, Any], title: str) -> str:
    [url] = [a["url"] for a in actions(card) if a.get("title") == title]
    return str(url)


async def drafts(database: Database) -> list[BoardPackDraft]:
    async with database.session() as session:
        return list(await session.exec(select(BoardPackDraft)))


async def test_save_preview_and_publish_on_one_card_with_no_call_to_teams(
    database: Database, framework: Framework, clock: object
) -> None:
    """On SQLite and PostgreSQL: the draft, the new action and the published version."""
    await seed(database, framework)
    harness = BotHarness(database=database, framework=framework, clock=clock)  # type: ignore[arg-type]
    card = await pack_card(harness, OWNER)
    assert buttons(card.card) == {
        "Save": "Action.Execute", "Preview": "Action.Execute", "Publish": "Action.Execute",
    }  # fmt: skip
    assert {a["verb"] for a in actions(card.card)} == {"pack.answer"}
    assert {action(card.card, t)["published"] for t in ("Save", "Preview", "Publish")} == {0}
    toggles = [key for key in inputs(card.card) if key.startswith("quote_")]

    # Save: the same card back, saying when, what was typed on it, the new action logged.
    await press(
        card, "Save", summary="A good month for relationships.",
        commentary_1="Relationships were strong.", new_action_standard="1",
        new_action_text="Share the good practice in team meetings.",
        new_action_owner="Practice Development", reason="typed, not yet used",
        **{toggles[0]: "false"},
    )  # fmt: skip
    assert "Pack for September 2023" in card.text
    assert card.text.count("Saved at 10:00, with the new learning action.") == 2
    typed = inputs(card.card)
    assert typed["summary"]["value"] == "A good month for relationships."
    assert typed["commentary_1"]["value"] == "Relationships were strong."
    assert typed[toggles[0]]["value"] == "false"
    assert typed["reason"]["value"] == "typed, not yet used"  # kept: only Publish uses it
    assert typed["new_action_text"]["value"] == ""  # logged, so the form is clear again
    async with database.session() as session:
        draft = await board_packs.draft_of(session=session, month="2023-09")
        logged = (await session.exec(select(LearningAction))).one()
    assert draft is not None
    assert draft.summary == "A good month for relationships."
    assert toggles[0] not in {f"quote_{i}" for i in draft.quote_ids}
    assert typed[f"action_{logged.id}"]["value"] == "true"

    # Preview: still the pack card, to carry on editing, with the draft's signed link.
    await press(card, "Preview", summary="A very good month.")
    assert "Pack for September 2023" in card.text
    assert "Saved at 10:00. Any owner can carry on from here." in card.text
    assert "Back to the pack" not in buttons(card.card)
    url = link(card.card, "Open the draft")
    assert url.startswith("http://localhost:3978/packs/draft?t=")
    claims = harness.bot._links.verify(parse_qs(urlsplit(url).query)["t"][0])
    async with database.session() as session:
        owner = (
            await session.exec(select(Staff).where(Staff.aad_object_id == OWNER.aad_object_id))
        ).one()
    assert (claims.kind, claims.viewer_id, claims.first_month) == (
        "pack_preview", owner.id, "2023-09",
    )  # fmt: skip
    pdf = link(card.card, "Draft as a PDF")
    assert pdf.startswith("http://localhost:3978/packs/draft.pdf?t=")
    assert harness.bot._links.verify(parse_qs(urlsplit(pdf).query)["t"][0]).kind == (
        "pack_preview_pdf"
    )
    assert inputs(card.card)["summary"]["value"] == "A very good month."
    assert await packs(database) == []

    # Publish: the card becomes the version published; the Board is told through the outbox.
    await press(card, "Publish", reason="")
    assert "Published version 1: September 2023" in card.text
    assert "Published at 10:00." in card.text
    async with database.session() as session:
        notices = list(
            await session.exec(select(OutboxMessage).where(OutboxMessage.purpose == "board_pack"))
        )
    assert notices
    assert owner.id not in {notice.recipient_id for notice in notices}, "their card says it"
    assert f"The Board is told: {len(notices)} people who see the whole report (you aside)" in (
        card.text
    )
    assert [u.split("?")[0] for u in (link(card.card, "Open the pack"),
                                      link(card.card, "Download as PDF"))] == [
        "http://localhost:3978/reports", "http://localhost:3978/reports.pdf",
    ]  # fmt: skip
    assert buttons(card.card)["Prepare version 2"] == "Action.Execute"
    [pack] = await packs(database)
    content = json.loads(pack.content)
    assert content["pack"]["summary"] == "A very good month."
    assert content["pack"]["reason"] == "first publication"

    # Prepare version 2: the pack card again, asking why it is published again.
    await press(card, "Prepare version 2")
    assert "Why it is published again" in card.text
    assert action(card.card, "Publish")["published"] == 1
    await press(card, "Publish")
    assert "Version 1 is published already: say why it is published again." in card.text
    assert len(await packs(database)) == 1
    await press(card, "Publish", reason="a corrected import")
    assert "Published version 2: September 2023" in card.text
    assert [(p.version, p.reason) for p in await packs(database)] == [
        (1, "first publication"), (2, "a corrected import"),
    ]  # fmt: skip
    assert card.connector_calls == 0


async def test_what_to_correct_comes_back_on_the_card_as_typed_and_nothing_is_saved(
    harness: BotHarness, sqlite_database: Database
) -> None:
    card = await pack_card(harness, OWNER)
    long = "x" * (MAX_COMMENTARY + 1)
    await press(
        card, "Save", summary="Kept as typed.", commentary_1=long, new_action_standard="2",
        new_action_text="An action without an owner", reason="a reason typed",
    )  # fmt: skip
    text = card.text
    assert f"The commentary on standard 1 is {MAX_COMMENTARY + 1:,} characters" in text
    assert "Name the new learning action's owner." in text
    assert "Nothing was saved: 2 things to correct, listed at the top of the card.\nSave" in text
    typed = inputs(card.card)
    assert typed["commentary_1"]["value"] == long
    assert typed["summary"]["value"] == "Kept as typed."
    assert typed["new_action_standard"]["value"] == "2"
    assert typed["new_action_text"]["value"] == "An action without an owner"
    assert typed["reason"]["value"] == "a reason typed"
    assert await drafts(sqlite_database) == []
    async with sqlite_database.session() as session:
        assert (await session.exec(select(LearningAction))).first() is None
    # Corrected on the same card, it saves.
    await press(card, "Save", commentary_1="Shorter.", new_action_owner="The PDAPs")
    assert "Saved at 10:00, with the new learning action." in card.text
    assert len(await drafts(sqlite_database)) == 1


async def test_someone_not_an_owner_or_a_month_not_begun_gets_a_card_that_only_tells(
    harness: BotHarness, sqlite_database: Database
) -> None:
    card = await pack_card(harness, OWNER)
    publish = {**action(card.card, "Publish"), **filled(card.card, summary="Forged")}
    refused = await harness.execute(DIRECTOR, card.card_id, publish)
    assert refused.messages == []
    assert refused.in_place is not None
    assert "prepared by the report's owners" in all_text(refused.in_place)
    assert actions(refused.in_place) == []
    future = await harness.execute(OWNER, card.card_id, {**publish, "month": "2027-01"})
    assert future.in_place is not None
    assert "January 2027: it has not begun. Nothing was changed." in all_text(future.in_place)
    assert await packs(sqlite_database) == []
    assert await drafts(sqlite_database) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        *FORGED_FIELDS,
        # The card of one month sent as another's: its quotes are not that month's.
        ({"month": "2023-10"}, "has no quote on this month's shortlist"),
    ],
)
async def test_a_card_naming_what_it_was_never_offered_changes_nothing(
    harness: BotHarness, sqlite_database: Database, change: dict[str, str], message: str
) -> None:
    card = await pack_card(harness, OWNER)
    pressed = {
        **action(card.card, "Publish"),
        **filled(card.card, summary="Typed before the press.", commentary_1="Still typed."),
        **change,
    }
    turn = await harness.execute(OWNER, card.card_id, pressed)
    assert turn.messages == []
    assert turn.in_place is not None
    text = all_text(turn.in_place)
    assert "I can't use that card as it was: " in text
    assert message in text
    assert "Nothing was changed." in text
    if "month" not in change:
        # The pack as it stands, keeping what was typed that still has a place on it.
        assert inputs(turn.in_place)["summary"]["value"] == "Typed before the press."
        assert inputs(turn.in_place)["commentary_1"]["value"] == "Still typed."
    assert await packs(sqlite_database) == []
    assert await drafts(sqlite_database) == []


async def test_an_unreadable_press_leaves_the_card_as_typed(harness: BotHarness) -> None:
    card = await pack_card(harness, OWNER)
    data = {**action(card.card, "Save"), **filled(card.card)}
    for bad in ({"month": "2023-13"}, {"summary": ["not", "text"]}, {"published": "many"}):
        turn = await harness.execute(OWNER, card.card_id, {**data, **bad})
        assert turn.messages == []
        assert turn.in_place is None  # the card stays, with what was typed on it
        assert "can't read" in (turn.in_place_error or "")


async def test_a_publish_on_a_card_made_before_another_version_changes_nothing(
    harness: BotHarness, sqlite_database: Database
) -> None:
    mine = await pack_card(harness, OWNER)
    theirs = await pack_card(harness, OTHER_OWNER)
    first_publish = {**action(theirs.card, "Publish"), **filled(theirs.card)}
    await press(theirs, "Publish", summary="Theirs.")
    assert "Published version 1" in theirs.text

    # The other owner's card still counts no version: its Publish is out of date.
    await press(mine, "Publish", summary="Mine.", reason="I mean it")
    text = mine.text
    assert "Version 1 was published at 10:00 on 23 November since that card was made" in text
    assert "nothing was published or saved" in text
    assert inputs(mine.card)["summary"]["value"] == "Mine."  # what was typed is kept
    assert inputs(mine.card)["reason"]["value"] == "I mean it"
    assert "Published\nversion 1" in text  # the card now counts the version published
    [pack] = await packs(sqlite_database)
    assert json.loads(pack.content)["pack"]["summary"] == "Theirs."
    async with sqlite_database.session() as session:
        draft = await board_packs.draft_of(session=session, month="2023-09")
    assert draft is not None
    assert draft.summary == "Theirs."

    # The first Publish again (a press reaching the bot twice): out of date, nothing new.
    replay = await harness.execute(OTHER_OWNER, theirs.card_id, first_publish)
    assert replay.in_place is not None
    assert "since that card was made" in all_text(replay.in_place)
    # A card claiming versions that do not exist is refused too.
    forged = await harness.execute(OWNER, mine.card_id, {**first_publish, "published": 7})
    assert forged.in_place is not None
    assert "That card counted 7 published versions" in all_text(forged.in_place)
    assert len(await packs(sqlite_database)) == 1

    # The card it came back as knows the version: with a reason, it publishes version 2.
    await press(mine, "Publish", reason="I mean it")
    assert "Published version 2: September 2023" in mine.text
    assert mine.connector_calls == theirs.connector_calls == 0


async def test_cards_sent_before_universal_actions_keep_working_with_messages(
    harness: BotHarness, sqlite_database: Database
) -> None:
    """What an old card's Action.Submit sent: no count of versions, answered with messages."""
    sent = await harness.say(OWNER, "board pack 2023-09")
    fields = filled(sent.card, summary="From an old card.")
    old = {"pqf": "pack.answer", "month": "2023-09"}
    saved = await harness.submit(OWNER, "old-card", {**old, "nav": "save", **fields})
    assert saved.invoke_response is None
    assert "Saved at 10:00. Any owner can carry on from here." in all_text(saved.card)
    previewed = await harness.submit(OWNER, "old-card", {**old, "nav": "preview", **fields})
    assert link(previewed.card, "Open the draft").startswith("http://localhost:3978/packs/draft")
    back = await harness.submit(OWNER, "old-preview", {**old, "nav": "edit"})
    assert inputs(back.card)["summary"]["value"] == "From an old card."
    published = await harness.submit(OWNER, "old-card", {**old, "nav": "publish", **fields})
    assert "Published version 1: September 2023" in all_text(published.card)
    # Publishing again from an old card asks why, as it always did; with a reason it does.
    again = await harness.submit(OWNER, "old-card", {**old, "nav": "publish", **fields})
    assert "Version 1 is published already" in all_text(again.card)
    fields["reason"] = "a corrected import"
    again = await harness.submit(OWNER, "old-card", {**old, "nav": "publish", **fields})
    assert "Published version 2" in all_text(again.card)
    # The cards it answered with are living ones: their buttons are answered in place.
    assert buttons(again.card) == {
        "Open the pack": "Action.OpenUrl", "Download as PDF": "Action.OpenUrl",
        "Prepare version 3": "Action.Execute",
    }  # fmt: skip
    living = LivingCard.sent_in(harness, OWNER, again)
    await press(living, "Prepare version 3")
    assert "Pack for September 2023" in living.text
    assert [p.version for p in await packs(sqlite_database)] == [1, 2]
