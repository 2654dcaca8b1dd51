"""The audit as one living card: each button an Action.Execute, answered in place of the card.

Driven through botbuilder's TestAdapter as Teams sends a press: an `adaptiveCard/action`
invoke whose answer (the InvokeResponse) carries the next card. No step of the audit may call
Teams (no message sent, no card updated): the request card becomes the audit.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from bot.limits import MessageRateLimit
from messages.request_cards import outbox_activity
from practice.framework import Framework
from storage.database import Database
from storage.models import AuditStatus, OutboxMessage
from tests.harness import BotHarness, LivingCard, User, action, actions, all_text, inputs
from tests.test_audit_dialog import ALEX, MEGAN, load, new_request, seed


@pytest.fixture
async def harness(sqlite_database: Database, framework: Framework, clock: object) -> BotHarness:
    await seed(sqlite_database, framework)
    return BotHarness(database=sqlite_database, framework=framework, clock=clock)  # type: ignore[arg-type]


async def request_card(
    harness: BotHarness, framework: Framework, user: User, audit_id: int
) -> LivingCard:
    """Return the audit's request card as the sender sends it, now in the person's chat."""
    async with harness.database.session() as session:
        message = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.audit_id == audit_id))
        ).one()
    activity = await outbox_activity(
        database=harness.database, framework=framework, message=message
    )
    card: dict[str, Any] = activity["attachments"][0]["content"]
    return LivingCard(harness, user, f"request-{audit_id}", card)


def buttons(card: dict[str, Any]) -> dict[str, str]:
    return {a["title"]: a["type"] for a in actions(card)}


async def test_a_whole_self_audit_on_one_card_with_no_call_to_teams(
    harness: BotHarness, framework: Framework
) -> None:
    audit_id = await new_request(harness.database, framework, "alexw@example.com")
    card = await request_card(harness, framework, ALEX, audit_id)
    assert buttons(card.card) == {"Start the audit": "Action.Execute", "My audits": "Action.Submit"}

    await card.press("Start the audit")
    assert "Step 1: the case" in card.text
    choice = inputs(card.card)["case_choice"]["choices"][0]["value"]
    await card.press("Use this case", case_choice=choice)
    for index in range(8):
        assert f"Criterion {index + 1} of 8" in card.text
        await card.press("Next", rating="meets", evidence=f"Evidence {index + 1}")
    assert "Feedback call" in card.text
    await card.press("Next", contacted="person", what_they_said="Felt heard")
    assert "Check your answers" in card.text
    change = next(a for a in actions(card.card) if a["data"].get("edit_step") == "criterion:3.2")
    assert change["type"] == "Action.Execute"
    turn = await harness.execute(ALEX, card.card_id, change["data"])
    card.turns.append(turn)
    card.card = turn.in_place or {}
    assert "Criterion 2 of 8" in card.text
    await card.press("Next", rating="exceeds", evidence="Better than I said")
    assert "Check your answers" in card.text  # straight back to the summary
    summary = card.card
    await card.press("Submit audit")

    assert "Audit submitted" in card.text
    assert [(a["type"], a["data"]["pqf"]) for a in actions(card.card)] == [
        ("Action.Submit", "audit.download")
    ]
    assert card.connector_calls == 0
    detail = await load(harness.database, audit_id)
    assert detail.audit.status == AuditStatus.SUBMITTED
    assert detail.ratings["3.2"].rating == "exceeds"
    assert detail.audit.live_card_activity_id is None
    # A press of Submit again, or of any step: the card shows the record, nothing changes.
    record = await harness.execute(
        ALEX, card.card_id, {"pqf": "audit.refresh", "audit_id": audit_id}, trigger="automatic"
    )
    assert record.in_place is not None
    assert "Audit submitted" in all_text(record.in_place)  # a refresh shows the record too
    again = await harness.execute(ALEX, card.card_id, action(summary, "Submit audit"))
    assert again.in_place is not None
    assert "Audit submitted" in all_text(again.in_place)
    assert again.messages == []


async def test_a_case_audit_records_the_involvement_in_place(
    harness: BotHarness, framework: Framework
) -> None:
    audit_id = await new_request(harness.database, framework, "meganb@example.com")
    card = await request_card(harness, framework, MEGAN, audit_id)
    await card.press("Start the audit")
    await card.press("Start the audit")  # the case card confirms the case given
    for _ in range(8):
        await card.press("Next", rating="meets", evidence="Seen on file")
    await card.press("Next", no_contact_reason="No consent to contact")
    assert "Involving the worker" in card.text
    how = inputs(card.card)["how"]["choices"][0]["value"]
    await card.press("Next", how=how, feedback_on="2026-11-10", reason="")
    if "Check your answers" not in card.text:  # some answers need a reason
        await card.press("Next", how=how, feedback_on="2026-11-10", reason="Talked it through")
    assert "Check your answers" in card.text
    await card.press("Submit audit")
    assert "Audit submitted" in card.text
    assert card.connector_calls == 0
    assert (await load(harness.database, audit_id)).audit.status == AuditStatus.SUBMITTED


async def test_problems_show_on_the_card_itself_and_back_keeps_the_answer(
    harness: BotHarness, framework: Framework
) -> None:
    audit_id = await new_request(harness.database, framework, "meganb@example.com")
    card = await request_card(harness, framework, MEGAN, audit_id)
    await card.press("Start the audit")
    await card.press("Start the audit")
    turn = await card.press("Next", rating="below", evidence="")
    assert turn.messages == []
    assert "Add the evidence for rating this criterion Below" in card.text
    assert inputs(card.card)["rating"]["value"] == "below"
    await card.press("Next", rating="below", evidence="Missed the carer")
    assert "Criterion 2 of 8" in card.text
    await card.press("Back", rating="", evidence="half a thought")
    assert "Criterion 1 of 8" in card.text
    assert inputs(card.card)["evidence"]["value"] == "Missed the carer"
    assert card.connector_calls == 0
    detail = await load(harness.database, audit_id)
    assert detail.ratings["3.2"].evidence == "half a thought"  # the draft is kept


async def test_save_and_exit_offers_carry_on_and_resume_still_works(
    harness: BotHarness, framework: Framework
) -> None:
    audit_id = await new_request(harness.database, framework, "meganb@example.com")
    card = await request_card(harness, framework, MEGAN, audit_id)
    await card.press("Start the audit")
    await card.press("Start the audit")
    await card.press("Save and exit", rating="meets", evidence="First")
    assert "Carry on" in buttons(card.card)
    assert "saved" in card.text
    saved = card.card
    await card.press("Carry on")
    assert "Criterion 2 of 8" in card.text
    await card.press("Next", rating="meets", evidence="Second")
    # The card left behind by Save and exit is pressed again: the audit shows as it is now.
    stale = LivingCard(harness, MEGAN, card.card_id, saved)
    await stale.press("Carry on")
    assert "Criterion 3 of 8" in stale.text
    assert card.connector_calls == stale.connector_calls == 0
    # A typed `resume` is answered with a message, as before.
    resumed = await harness.say(MEGAN, "resume")
    assert "Criterion 3 of 8" in all_text(resumed.card)


async def test_out_of_date_and_forged_presses_change_nothing(
    harness: BotHarness, framework: Framework
) -> None:
    audit_id = await new_request(harness.database, framework, "meganb@example.com")
    card = await request_card(harness, framework, MEGAN, audit_id)
    await card.press("Start the audit")
    await card.press("Start the audit")
    first = card.card
    await card.press("Next", rating="meets", evidence="First answer")
    before = await load(harness.database, audit_id)

    # The same card pressed twice (a double click reaching us twice): the second is out of date.
    replay = await harness.execute(
        MEGAN, card.card_id, {**action(first, "Next"), "rating": "below", "evidence": "Again"}
    )
    assert replay.messages == []
    assert replay.in_place is not None
    assert "out of date, so nothing was changed" in all_text(replay.in_place)
    assert "Criterion 2 of 8" in all_text(replay.in_place)

    forged = await harness.execute(
        ALEX, "somewhere", {**action(card.card, "Next"), "rating": "below", "evidence": "x"}
    )
    assert forged.messages == []
    assert forged.in_place is not None
    assert "can't find that audit among yours" in all_text(forged.in_place)
    assert actions(forged.in_place) == []

    unreadable = await harness.execute(
        MEGAN, card.card_id, {**action(card.card, "Next"), "evidence": "y" * 30_000}
    )
    assert unreadable.in_place is None  # the card stays, with what was typed on it
    assert "far too long" in (unreadable.in_place_error or "")

    after = await load(harness.database, audit_id)
    assert after.ratings["3.1"].evidence == "First answer"
    assert after.ratings.get("3.2") is None
    assert (after.audit.card_seq, after.audit.current_step) == (
        before.audit.card_seq, before.audit.current_step,
    )  # fmt: skip


async def test_someone_not_on_the_roster_gets_a_card_that_only_tells(
    harness: BotHarness, framework: Framework
) -> None:
    audit_id = await new_request(harness.database, framework, "meganb@example.com")
    card = await request_card(harness, framework, MEGAN, audit_id)
    stranger = User("99999999-9999-9999-9999-999999999999", "user-id-9", "Not On Roster")
    turn = await harness.execute(stranger, card.card_id, action(card.card, "Start the audit"))
    assert turn.messages == []
    assert turn.in_place is not None
    assert "audit roster" in all_text(turn.in_place)
    assert (await load(harness.database, audit_id)).audit.card_seq == 0


async def test_opening_in_place_retires_a_card_resume_sent(
    harness: BotHarness, framework: Framework
) -> None:
    audit_id = await new_request(harness.database, framework, "meganb@example.com")
    card = await request_card(harness, framework, MEGAN, audit_id)
    resumed = await harness.say(MEGAN, "resume")
    assert "the case" in all_text(resumed.card).lower()
    turn = await card.press("Start the audit")
    # The card `resume` sent is retired (one update); the request card is the audit now.
    assert [a.id for a in turn.updated] == [resumed.card_ids[-1]]
    assert "replaced by a newer one" in str(turn.updated_cards()[-1])
    assert (await load(harness.database, audit_id)).audit.live_card_activity_id == card.card_id


async def test_the_request_card_refreshes_to_the_audit_as_it_now_is(
    harness: BotHarness, framework: Framework
) -> None:
    audit_id = await new_request(harness.database, framework, "meganb@example.com")
    card = await request_card(harness, framework, MEGAN, audit_id)
    refresh = card.card["refresh"]
    assert refresh["userIds"] == [f"8:orgid:{MEGAN.aad_object_id}"]
    assert refresh["action"]["type"] == "Action.Execute"

    async def refreshed(user: User = MEGAN) -> Any:
        return await harness.execute(
            user, card.card_id, refresh["action"]["data"], trigger="automatic"
        )

    fresh = await refreshed()
    assert fresh.messages == []
    assert fresh.in_place is not None
    assert "Start the audit" in buttons(fresh.in_place)
    assert "Progress" not in all_text(fresh.in_place)
    assert fresh.in_place["refresh"] == refresh  # and it refreshes again next time

    # Started elsewhere (`resume` sent a card): the request card shows the progress.
    resumed = await harness.say(MEGAN, "resume")
    elsewhere = LivingCard.sent_in(harness, MEGAN, resumed)
    await elsewhere.press("Start the audit")
    await elsewhere.press("Next", rating="meets", evidence="First")
    before = await load(harness.database, audit_id)
    progress = await refreshed()
    assert progress.in_place is not None
    # The case and one criterion of 11 steps (the case, 8 criteria, feedback, involvement).
    assert "2 of 11 steps answered" in all_text(progress.in_place)
    assert "Carry on" in buttons(progress.in_place)
    after = await load(harness.database, audit_id)
    assert (after.audit.card_seq, after.audit.live_card_activity_id) == (
        before.audit.card_seq,
        before.audit.live_card_activity_id,
    )  # fmt: skip  (a refresh changes nothing)

    # Someone else's refresh of the card: refused, the card stays as it is for them.
    other = await refreshed(ALEX)
    assert other.in_place is None
    assert other.in_place_error == "That card is not yours."


async def test_not_now_and_leaving_the_summary_are_answered_in_place(
    harness: BotHarness, framework: Framework
) -> None:
    audit_id = await new_request(harness.database, framework, "meganb@example.com")
    card = await request_card(harness, framework, MEGAN, audit_id)
    await card.press("Start the audit")
    await card.press("Not now")
    assert "Carry on" in buttons(card.card)
    assert (await load(harness.database, audit_id)).audit.live_card_activity_id is None
    await card.press("Carry on")
    assert "Step 1: the case" in card.text
    await card.press("Start the audit")
    for _ in range(8):
        await card.press("Next", rating="meets", evidence="Seen on file")
    await card.press("Next", no_contact_reason="No consent to contact")
    await card.press("Back", how="joint_teams")  # the involvement step, kept as a draft
    assert "Feedback call" in card.text
    await card.press("Next", no_contact_reason="No consent to contact")
    await card.press("Next", how="joint_teams")
    assert "Check your answers" in card.text
    await card.press("Save and exit")
    assert "Carry on" in buttons(card.card)
    await card.press("Carry on")
    assert "Check your answers" in card.text  # every step answered: straight to the summary
    assert card.connector_calls == 0
    detail = await load(harness.database, audit_id)
    assert detail.audit.status == AuditStatus.IN_PROGRESS
    assert detail.involvement is not None


async def test_presses_over_the_message_limit_leave_the_card_as_it_is(
    sqlite_database: Database, framework: Framework, clock: object
) -> None:
    await seed(sqlite_database, framework)
    harness = BotHarness(
        database=sqlite_database, framework=framework, clock=clock,  # type: ignore[arg-type]
        rate_limit=MessageRateLimit(2, 60),
    )  # fmt: skip
    audit_id = await new_request(harness.database, framework, "meganb@example.com")
    card = await request_card(harness, framework, MEGAN, audit_id)
    await card.press("Start the audit")
    await card.press("Start the audit")
    shown = card.card
    over = await card.press("Next", rating="meets", evidence="Too quick")
    assert over.in_place is None  # the card stays, with what was typed
    assert "faster than I can keep up" in (over.in_place_error or "")
    assert card.card == shown
    # Teams' own refresh is not a press: it is answered whatever the limit.
    refreshed = await harness.execute(
        MEGAN, card.card_id, {"pqf": "audit.refresh", "audit_id": audit_id}, trigger="automatic"
    )
    assert refreshed.in_place is not None
    assert (await load(harness.database, audit_id)).ratings == {}


async def test_an_audit_begun_on_action_submit_cards_carries_on(
    harness: BotHarness, framework: Framework
) -> None:
    """Cards sent before Universal Actions are still in chats: their presses come as messages."""
    audit_id = await new_request(harness.database, framework, "alexw@example.com")
    # The request card as it was sent before: Start the audit an Action.Submit.
    opened = await harness.submit(
        ALEX, f"request-{audit_id}", {"pqf": "audit.open", "audit_id": audit_id}
    )
    assert "Step 1: the case" in all_text(opened.card)
    choice = inputs(opened.card)["case_choice"]["choices"][0]["value"]
    case = await harness.press(ALEX, opened, "Use this case", case_choice=choice)
    assert "Criterion 1 of 8" in all_text(case.card)
    live = action(case.card, "Next")
    # What an old criterion card's Next sent, written out as it was then: the same fields.
    old_next = {
        "pqf": "audit.criterion", "audit_id": audit_id, "seq": live["seq"],
        "step": live["step"], "nav": "next", "rating": "meets", "evidence": "Seen on the file",
    }  # fmt: skip
    assert {k: live[k] for k in ("pqf", "audit_id", "seq", "step", "nav")} == {
        k: old_next[k] for k in ("pqf", "audit_id", "seq", "step", "nav")
    }
    answered = await harness.submit(ALEX, case.card_ids[-1], old_next)
    # Answered with messages, as before: the old card is replaced, the next step posted...
    assert [a.id for a in answered.updated] == [case.card_ids[-1]]
    assert "Criterion 2 of 8" in all_text(answered.card)
    # ...and the card it brings is a living one: the rest of the audit is answered in place.
    card = LivingCard.sent_in(harness, ALEX, answered)
    assert buttons(card.card)["Next"] == "Action.Execute"
    for index in range(1, 8):
        assert f"Criterion {index + 1} of 8" in card.text
        await card.press("Next", rating="meets", evidence=f"Evidence {index + 1}")
    await card.press("Next", contacted="person", what_they_said="Felt heard")
    await card.press("Submit audit")
    assert "Audit submitted" in card.text
    assert card.connector_calls == 0
    detail = await load(harness.database, audit_id)
    assert detail.audit.status == AuditStatus.SUBMITTED
    assert detail.ratings[live["step"].split(":", 1)[1]].evidence == "Seen on the file"
