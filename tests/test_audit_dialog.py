"""The guided audit, driven through botbuilder's TestAdapter as Teams users would drive it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import col, select

from admin.demo_data import PEOPLE, cases_csv, staff_csv
from messages.requests import request_audit
from practice.audit_steps import AuditKind
from practice.framework import Framework
from storage import audits, outbox
from storage.csv_import import import_cases, import_staff
from storage.database import Database
from storage.models import (
    AuditRequest,
    AuditStatus,
    AuditStatusChange,
    CaseRecord,
    OutboxMessage,
    OutboxStatus,
    Staff,
)
from tests.conftest import NOW, TODAY
from tests.harness import BotHarness, Turn, User, action, actions, all_text, inputs

ALEX = User("00000000-0000-0000-0000-0000000000020", "user-id-0", "Alex Wilber")  # social worker
MEGAN = User("00000000-0000-0000-0000-0000000000021", "user-id-1", "Megan Bowen")  # service manager
ADELE = User(
    "00000000-0000-0000-0000-0000000000022", "user-id-2", "Adele Vance"
)  # occupational therapist
STRANGER = User("99999999-9999-9999-9999-999999999999", "user-id-9", "Not On Roster")


async def seed(database: Database, framework: Framework) -> None:
    async with database.session() as session:
        assert (await import_staff(session=session, framework=framework, text=staff_csv())).ok
        assert (await import_cases(session=session, text=cases_csv(TODAY))).ok


async def new_request(
    database: Database, framework: Framework, email: str, standard: int = 3,
    kind: AuditKind | None = None, subject: str | None = None,
) -> int:  # fmt: skip
    async with database.session() as session:
        requested = await request_audit(
            session=session, framework=framework, auditor_email=email, standard_number=standard,
            month="2026-11", today=TODAY, kind=kind, subject_email=subject,
        )  # fmt: skip
    assert requested.audit.id is not None
    return requested.audit.id


async def load(database: Database, audit_id: int) -> audits.AuditDetail:
    async with database.session() as session:
        detail = await audits.audit_detail(session=session, audit_id=audit_id)
    assert detail is not None
    return detail


async def status_changes(database: Database, audit_id: int) -> list[str]:
    """Return the statuses an audit has had, as its stored history rows say, oldest first."""
    async with database.session() as session:
        rows = await session.exec(
            select(AuditStatusChange)
            .where(col(AuditStatusChange.audit_id) == audit_id)
            .order_by(col(AuditStatusChange.id))
        )
        return [row.status for row in rows]


@pytest.fixture
async def harness(sqlite_database: Database, framework: Framework, clock: object) -> BotHarness:
    await seed(sqlite_database, framework)
    return BotHarness(database=sqlite_database, framework=framework, clock=clock)  # type: ignore[arg-type]


async def open_audit(harness: BotHarness, user: User, audit_id: int) -> Turn:
    return await harness.submit(user, None, {"pqf": "audit.open", "audit_id": audit_id})


async def answer_criteria(
    harness: BotHarness, user: User, turn: Turn, count: int, rating: str = "meets"
) -> Turn:
    for index in range(count):
        assert f"Criterion {index + 1} of" in all_text(turn.card)
        turn = await harness.press(
            user, turn, "Next", rating=rating, evidence=f"Evidence {index + 1}"
        )
    return turn


# -- who may use the bot --------------------------------------------------------------------


async def test_install_greets_and_hands_waiting_requests_to_the_sender(
    harness: BotHarness, framework: Framework
) -> None:
    audit_id = await new_request(harness.database, framework, "alexw@example.com")
    async with harness.database.session() as session:
        message = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.audit_id == audit_id))
        ).one()
        # As the sender leaves it for someone without the app: put off for an hour.
        message.next_attempt_at = NOW + timedelta(hours=1)
        message.last_error = outbox.NOT_INSTALLED
        session.add(message)
    turn = await harness.install(ALEX)
    assert "Hello Alex" in all_text(turn.cards[0])
    assert "You have 1 audit to do" in all_text(turn.cards[0])
    # The request card comes from the outbox sender, due at once, not from this turn.
    assert len(turn.cards) == 1
    async with harness.database.session() as session:
        message = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.audit_id == audit_id))
        ).one()
        assert (message.status, message.next_attempt_at, message.last_error) == (
            OutboxStatus.PENDING, None, "",
        )  # fmt: skip
        assert message.id is not None
        await outbox.record_sent(session=session, message_id=message.id, activity_id="a", now=NOW)
    again = await harness.install(ALEX)
    assert "Your self-audit" not in str(again.cards)  # the request is not sent twice...
    assert "Your audits" in all_text(again.cards[-1])  # ...but the list shows it


async def test_someone_not_on_the_roster_is_refused_everything(
    harness: BotHarness, framework: Framework
) -> None:
    audit_id = await new_request(harness.database, framework, "alexw@example.com")
    for turn in (
        await harness.install(STRANGER),
        await harness.say(STRANGER, "my audits"),
        await open_audit(harness, STRANGER, audit_id),
    ):
        assert turn.cards == []
        assert "can't find you on the Adult Social Care audit roster" in turn.text
        assert "pqf@example.com" in turn.text
    assert (await load(harness.database, audit_id)).audit.card_seq == 0


async def test_inactive_staff_are_refused(harness: BotHarness) -> None:
    async with harness.database.session() as session:
        alex = (await session.exec(select(Staff).where(Staff.email == "alexw@example.com"))).one()
        alex.active = False
        session.add(alex)
    turn = await harness.say(ALEX, "help")
    assert "can't find you" in turn.text


# -- a whole audit --------------------------------------------------------------------------


async def test_complete_self_audit_of_standard_3(
    database: Database, framework: Framework, clock: object
) -> None:
    await seed(database, framework)
    harness = BotHarness(database=database, framework=framework, clock=clock)  # type: ignore[arg-type]
    audit_id = await new_request(database, framework, "alexw@example.com")

    turn = await open_audit(harness, ALEX, audit_id)
    assert "Step 1: the case" in all_text(turn.card)
    choices = inputs(turn.card)["case_choice"]["choices"]
    assert len(choices) == 4  # Alex's open and recently closed cases
    turn = await harness.press(ALEX, turn, "Use this case", case_choice=choices[0]["value"])
    assert turn.updated_cards()
    turn = await answer_criteria(harness, ALEX, turn, 8)
    assert "Feedback call" in all_text(turn.card)
    assert "Involving the worker" not in all_text(turn.card)
    turn = await harness.press(
        ALEX, turn, "Next", contacted="person,carer", what_they_said="Felt listened to",
        suitable_for_report="true",
    )  # fmt: skip
    summary = turn.card
    assert "Check your answers" in all_text(summary)
    assert "Evidence 8" in str(summary)
    summary_id = turn.card_ids[-1]
    turn = await harness.press(ALEX, turn, "Submit audit")
    assert "is submitted" in turn.text
    replaced = turn.updated[-1]
    assert replaced.id == summary_id
    assert "Audit submitted" in all_text(turn.updated_cards()[-1])
    # Nothing on the record can change the audit; it offers only a download.
    assert [a["data"]["pqf"] for a in actions(turn.updated_cards()[-1])] == ["audit.download"]

    detail = await load(database, audit_id)
    assert detail.audit.status == AuditStatus.SUBMITTED
    assert detail.audit.submitted_at is not None
    assert detail.case is not None
    assert detail.case.reference == choices[0]["value"]
    assert {r.rating for r in detail.ratings.values()} == {"meets"}
    assert len(detail.ratings) == 8
    assert detail.feedback is not None
    assert detail.feedback.contacted == "person,carer"
    assert detail.feedback.suitable_for_report is True
    assert await status_changes(database, audit_id) == ["requested", "in_progress", "submitted"]

    again = await harness.submit(ALEX, summary_id, action(summary, "Submit audit"))
    assert "already submitted" in again.text
    reopened = await open_audit(harness, ALEX, audit_id)
    assert "already submitted" in reopened.text


async def test_case_audit_records_how_the_worker_was_involved(
    harness: BotHarness, framework: Framework
) -> None:
    audit_id = await new_request(harness.database, framework, "meganb@example.com")
    detail = await load(harness.database, audit_id)
    assert detail.case is not None
    turn = await open_audit(harness, MEGAN, audit_id)
    assert detail.case.reference in all_text(turn.card)
    assert "chosen at random" in all_text(turn.card)
    turn = await harness.press(MEGAN, turn, "Start the audit")
    turn = await answer_criteria(harness, MEGAN, turn, 8, rating="exceeds")
    turn = await harness.press(
        MEGAN, turn, "Next", no_contact_reason="The person has no phone and declined a visit"
    )
    assert "Involving the worker" in all_text(turn.card)
    assert detail.subject is not None
    assert detail.subject.name in all_text(turn.card)
    turn = await harness.press(
        MEGAN, turn, "Next", how="feedback_arranged", feedback_on="2026-12-03"
    )
    assert "Check your answers" in all_text(turn.card)
    turn = await harness.press(MEGAN, turn, "Submit audit")
    detail = await load(harness.database, audit_id)
    assert detail.audit.status == AuditStatus.SUBMITTED
    assert detail.involvement is not None
    assert detail.involvement.how == "feedback_arranged"
    assert str(detail.involvement.feedback_on) == "2026-12-03"
    assert detail.feedback is not None
    assert detail.feedback.contacted == ""


# -- saving as you go, going back, resuming -------------------------------------------------


async def test_incomplete_answers_come_back_in_place_with_the_problem(
    harness: BotHarness, framework: Framework
) -> None:
    audit_id = await new_request(harness.database, framework, "meganb@example.com")
    turn = await open_audit(harness, MEGAN, audit_id)
    turn = await harness.press(MEGAN, turn, "Start the audit")
    card_id = turn.card_ids[-1]
    fixed = await harness.press(MEGAN, turn, "Next", rating="below", evidence="")
    assert fixed.cards == []  # no new message: the same card is replaced
    assert fixed.updated[-1].id == card_id
    again = fixed.updated_cards()[-1]
    assert "Add the evidence for rating this criterion Below" in all_text(again)
    assert inputs(again)["rating"]["value"] == "below"  # what was chosen is kept
    turn = await harness.submit(
        MEGAN, card_id, {**action(again, "Next"), "rating": "", "evidence": "typed"}
    )
    assert "Choose a rating" in all_text(turn.updated_cards()[-1])
    detail = await load(harness.database, audit_id)
    assert detail.ratings["3.1"].evidence == "typed"  # a draft is saved, never lost
    assert detail.ratings["3.1"].rating is None


async def test_back_shows_the_saved_answer_and_save_and_exit_then_resume(
    harness: BotHarness, framework: Framework
) -> None:
    audit_id = await new_request(harness.database, framework, "meganb@example.com")
    turn = await open_audit(harness, MEGAN, audit_id)
    turn = await harness.press(MEGAN, turn, "Start the audit")
    turn = await answer_criteria(harness, MEGAN, turn, 2)
    turn = await harness.press(MEGAN, turn, "Back", rating="", evidence="half a thought")
    card = turn.card
    assert "Criterion 2 of 8" in all_text(card)
    assert inputs(card)["rating"]["value"] == "meets"
    assert inputs(card)["evidence"]["value"] == "Evidence 2"
    turn = await harness.press(
        MEGAN, turn, "Save and exit", rating="exceeds", evidence="Changed my mind"
    )
    assert "Type **resume**" in turn.text
    detail = await load(harness.database, audit_id)
    assert detail.ratings["3.2"].rating == "exceeds"
    assert detail.ratings["3.3"].evidence == "half a thought"

    resumed = await harness.say(MEGAN, "resume")
    assert "Criterion 3 of 8" in all_text(resumed.card)  # the first unanswered step
    assert inputs(resumed.card)["evidence"]["value"] == "half a thought"


async def test_resume_without_an_active_dialog_picks_the_audit_in_progress(
    harness: BotHarness, framework: Framework
) -> None:
    first = await new_request(harness.database, framework, "meganb@example.com")
    await new_request(harness.database, framework, "meganb@example.com")
    turn = await open_audit(harness, MEGAN, first)
    turn = await harness.press(MEGAN, turn, "Start the audit")
    turn = await harness.press(MEGAN, turn, "Save and exit", rating="meets", evidence="x")
    await harness.say(MEGAN, "cancel")
    resumed = await harness.say(MEGAN, "resume")
    assert "Criterion 2 of 8" in all_text(resumed.card)
    assert f'"audit_id": {first}' in str(resumed.card).replace("'", '"')


async def test_summary_change_returns_to_the_summary(
    harness: BotHarness, framework: Framework
) -> None:
    audit_id = await new_request(harness.database, framework, "alexw@example.com")
    turn = await open_audit(harness, ALEX, audit_id)
    turn = await harness.press(ALEX, turn, "Use this case", case_reference="7777777")
    turn = await answer_criteria(harness, ALEX, turn, 8)
    turn = await harness.press(ALEX, turn, "Next", no_contact_reason="No consent to contact")
    summary = turn.card
    change = next(a for a in actions(summary) if a["data"].get("edit_step") == "criterion:3.5")
    turn = await harness.submit(ALEX, turn.card_ids[-1], change["data"])
    assert "Criterion 5 of 8" in all_text(turn.card)
    turn = await harness.press(ALEX, turn, "Next", rating="below", evidence="Missed a referral")
    assert "Check your answers" in all_text(turn.card)
    detail = await load(harness.database, audit_id)
    assert detail.ratings["3.5"].rating == "below"
    # A typed reference not on the case list is recorded as the auditor's own case.
    assert detail.case is not None
    assert detail.case.reference == "7777777"
    assert detail.case.added_by_auditor


async def test_an_audit_rating_every_criterion_na_without_a_reason_is_not_submitted(
    harness: BotHarness, framework: Framework
) -> None:
    audit_id = await new_request(harness.database, framework, "alexw@example.com")
    turn = await open_audit(harness, ALEX, audit_id)
    choice = inputs(turn.card)["case_choice"]["choices"][0]["value"]
    turn = await harness.press(ALEX, turn, "Use this case", case_choice=choice)
    turn = await answer_criteria(harness, ALEX, turn, 8, rating="not_applicable")
    # (answer_criteria gives evidence: take it away again, as N/A allows.)
    async with harness.database.session() as session:
        detail = await audits.audit_detail(session=session, audit_id=audit_id)
        assert detail is not None
        for row in detail.ratings.values():
            row.evidence = ""
            session.add(row)
    turn = await harness.press(ALEX, turn, "Next", contacted="person", what_they_said="Fine")
    summary_id = turn.card_ids[-1]
    refused = await harness.press(ALEX, turn, "Submit audit")
    assert refused.updated[-1].id == summary_id  # the summary again, in place, saying why
    again = refused.updated_cards()[-1]
    assert "Every criterion is rated N/A and none says why" in all_text(again)
    assert "is submitted" not in refused.text
    assert (await load(harness.database, audit_id)).audit.status == AuditStatus.IN_PROGRESS
    # The reason, on one criterion, is enough.
    change = next(a for a in actions(again) if a["data"].get("edit_step") == "criterion:3.1")
    turn = await harness.submit(ALEX, summary_id, change["data"])
    turn = await harness.press(
        ALEX, turn, "Next", rating="not_applicable",
        evidence="No assessment was done in the period: the person was in hospital.",
    )  # fmt: skip
    turn = await harness.press(ALEX, turn, "Submit audit")
    assert "is submitted" in turn.text
    assert (await load(harness.database, audit_id)).audit.status == AuditStatus.SUBMITTED


# -- stale, forged and malformed submits ----------------------------------------------------


async def test_old_cards_and_double_clicks_change_nothing(
    harness: BotHarness, framework: Framework
) -> None:
    audit_id = await new_request(harness.database, framework, "meganb@example.com")
    turn = await open_audit(harness, MEGAN, audit_id)
    start = turn
    turn = await harness.press(MEGAN, turn, "Start the audit")
    first_criterion = turn
    turn = await harness.press(MEGAN, turn, "Next", rating="meets", evidence="First answer")
    before = await load(harness.database, audit_id)

    replay = await harness.press(
        MEGAN, first_criterion, "Next", rating="below", evidence="Replayed"
    )
    assert "out of date" in replay.text
    assert "criterion 2 of 8" in replay.text
    stale_start = await harness.press(MEGAN, start, "Start the audit")
    assert "out of date" in stale_start.text
    after = await load(harness.database, audit_id)
    assert after.ratings["3.1"].rating == "meets"
    assert after.ratings["3.1"].evidence == "First answer"
    assert after.audit.card_seq == before.audit.card_seq
    assert after.audit.current_step == before.audit.current_step


async def test_someone_elses_audit_cannot_be_touched(
    harness: BotHarness, framework: Framework
) -> None:
    audit_id = await new_request(harness.database, framework, "meganb@example.com")
    turn = await open_audit(harness, MEGAN, audit_id)
    turn = await harness.press(MEGAN, turn, "Start the audit")
    forged = {**action(turn.card, "Next"), "rating": "below", "evidence": "Not mine to say"}
    for attempt in (
        await harness.submit(ALEX, turn.card_ids[-1], forged),
        await open_audit(harness, ALEX, audit_id),
        await open_audit(harness, ALEX, 999_999),
    ):
        assert "can't find that audit among yours" in attempt.text
        assert attempt.cards == []
    detail = await load(harness.database, audit_id)
    assert detail.ratings == {}
    assert detail.audit.auditor_id != (await _staff_id(harness, "alexw@example.com"))


async def _staff_id(harness: BotHarness, email: str) -> int | None:
    async with harness.database.session() as session:
        return (await session.exec(select(Staff).where(Staff.email == email))).one().id


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("just text", "can't read"),
        ({"foo": "bar"}, "isn't one of mine"),
        ({"pqf": "audit.criterion", "audit_id": "x"}, "can't read"),
        ({"pqf": "audit.criterion", "audit_id": 1, "seq": 0, "step": "criterion:3.1",
          "nav": "next", "evidence": "y" * 30_000}, "far too long"),
    ],
)  # fmt: skip
async def test_malformed_submits_get_a_clear_message(
    harness: BotHarness, value: object, message: str
) -> None:
    turn = await harness.submit(ALEX, "some-card", value)
    assert message in turn.text
    assert turn.cards == []


async def test_a_step_answer_for_the_wrong_step_is_stale(
    harness: BotHarness, framework: Framework
) -> None:
    audit_id = await new_request(harness.database, framework, "meganb@example.com")
    turn = await open_audit(harness, MEGAN, audit_id)
    seq = (await load(harness.database, audit_id)).audit.card_seq
    forged = {
        "pqf": "audit.summary",
        "audit_id": audit_id,
        "seq": seq,
        "step": "summary",
        "nav": "submit",
    }
    result = await harness.submit(MEGAN, turn.card_ids[-1], forged)
    assert "out of date" in result.text
    assert (await load(harness.database, audit_id)).audit.status == AuditStatus.REQUESTED


async def test_a_self_audit_must_be_of_ones_own_case(
    harness: BotHarness, framework: Framework
) -> None:
    audit_id = await new_request(harness.database, framework, "alexw@example.com")
    async with harness.database.session() as session:
        sams_case = (
            await session.exec(
                select(CaseRecord).where(
                    CaseRecord.allocated_worker_id
                    != (await _staff_id(harness, "alexw@example.com"))
                )
            )
        ).first()
    assert sams_case is not None
    turn = await open_audit(harness, ALEX, audit_id)
    refused = await harness.press(ALEX, turn, "Use this case", case_reference=sams_case.reference)
    assert "is not allocated to you" in all_text(refused.updated_cards()[-1])
    bad = await harness.submit(
        ALEX,
        turn.card_ids[-1],
        {**action(refused.updated_cards()[-1], "Use this case"), "case_reference": "Mrs Smith"},
    )
    assert "never a name" in all_text(bad.updated_cards()[-1])
    assert (await load(harness.database, audit_id)).audit.case_confirmed_at is None


async def test_peer_audit_is_of_the_peers_cases(harness: BotHarness, framework: Framework) -> None:
    audit_id = await new_request(
        harness.database,
        framework,
        "adelev@example.com",
        kind=AuditKind.PEER,
        subject="tom.hale@example.com",
    )
    turn = await open_audit(harness, ADELE, audit_id)
    assert "Tom Hale" in all_text(turn.card)
    choice = inputs(turn.card)["case_choice"]["choices"][0]["value"]
    turn = await harness.press(ADELE, turn, "Use this case", case_choice=choice)
    assert "Criterion 1 of 8" in all_text(turn.card)
    detail = await load(harness.database, audit_id)
    assert detail.case is not None
    assert detail.case.allocated_worker_id == (await _staff_id(harness, "tom.hale@example.com"))


async def test_supervision_audit_has_supervisee_feedback(
    harness: BotHarness, framework: Framework
) -> None:
    audit_id = await new_request(harness.database, framework, "meganb@example.com", standard=10)
    turn = await open_audit(harness, MEGAN, audit_id)
    assert "supervision records of" in all_text(turn.card)
    turn = await harness.press(MEGAN, turn, "Start the audit")
    turn = await answer_criteria(harness, MEGAN, turn, 6)
    assert "experience of supervision" in all_text(turn.card)
    assert [c["value"] for c in inputs(turn.card)["contacted"]["choices"]] == ["supervisee"]
    turn = await harness.press(
        MEGAN, turn, "Next", contacted="supervisee", what_they_said="Supervision is regular"
    )
    assert "the supervisor" in all_text(turn.card)


# -- commands ---------------------------------------------------------------------------------


async def test_commands(harness: BotHarness, framework: Framework) -> None:
    audit_id = await new_request(harness.database, framework, "meganb@example.com")
    help_turn = await harness.say(MEGAN, "help")
    assert "my audits" in all_text(help_turn.card)
    unknown = await harness.say(MEGAN, "please do my audit for me")
    assert "didn't understand" in unknown.text
    assert unknown.cards
    nothing = await harness.say(MEGAN, "cancel")
    assert "nothing to cancel" in nothing.text
    listing = await harness.say(MEGAN, "my audits")
    assert "Not started" in all_text(listing.card)
    turn = await open_audit(harness, MEGAN, audit_id)
    turn = await harness.press(MEGAN, turn, "Start the audit")
    typed = await harness.say(MEGAN, "what now")
    assert "middle of an audit" in typed.text
    cancelled = await harness.say(MEGAN, "cancel")
    assert "answers so far are saved" in cancelled.text
    listing = await harness.say(MEGAN, "my audits")
    assert "In progress: 1 of 11 steps done" in all_text(listing.card)
    button = await harness.submit(
        MEGAN, listing.card_ids[-1], {"pqf": "command", "command": "resume"}
    )
    assert "Criterion 1 of 8" in all_text(button.card)


async def test_opening_a_newer_card_retires_the_older_one(
    harness: BotHarness, framework: Framework
) -> None:
    audit_id = await new_request(harness.database, framework, "meganb@example.com")
    first = await open_audit(harness, MEGAN, audit_id)
    second = await harness.say(MEGAN, "resume")
    assert second.updated[-1].id == first.card_ids[-1]
    assert "replaced by a newer one" in all_text(second.updated_cards()[-1])


async def test_now_is_the_clock_given(harness: BotHarness) -> None:
    assert NOW.date() == TODAY


async def test_audit_requests_table_is_untouched_by_a_refused_user(
    harness: BotHarness, framework: Framework
) -> None:
    await new_request(harness.database, framework, "alexw@example.com")
    await harness.say(STRANGER, "resume")
    async with harness.database.session() as session:
        rows = list(await session.exec(select(AuditRequest)))
    assert [r.status for r in rows] == [AuditStatus.REQUESTED]
    assert all(p.email != "nobody" for p in PEOPLE)


async def test_a_forged_card_does_not_end_the_audit_in_hand(
    harness: BotHarness, framework: Framework
) -> None:
    mine = await new_request(harness.database, framework, "meganb@example.com")
    theirs = await new_request(harness.database, framework, "alexw@example.com")
    turn = await open_audit(harness, MEGAN, mine)
    turn = await harness.press(MEGAN, turn, "Start the audit")
    forged = {"pqf": "audit.criterion", "audit_id": theirs, "seq": 0, "step": "case", "nav": "next"}
    refused = await harness.submit(MEGAN, "x", {**forged, "step": "criterion:3.1"})
    assert "can't find that audit among yours" in refused.text
    carried_on = await harness.press(MEGAN, turn, "Next", rating="meets", evidence="Still in hand")
    assert "Criterion 2 of 8" in all_text(carried_on.card)


async def test_answering_a_card_of_another_own_audit_switches_to_it(
    harness: BotHarness, framework: Framework
) -> None:
    first = await new_request(harness.database, framework, "meganb@example.com")
    second = await new_request(harness.database, framework, "meganb@example.com")
    first_turn = await open_audit(harness, MEGAN, first)
    second_turn = await open_audit(harness, MEGAN, second)
    assert second_turn.card
    answered = await harness.press(MEGAN, first_turn, "Start the audit")
    assert "Criterion 1 of 8" in all_text(answered.card)
    assert (await load(harness.database, first)).audit.case_confirmed_at is not None
    assert (await load(harness.database, second)).audit.case_confirmed_at is None


async def test_control_characters_in_card_answers_are_refused_naming_the_field(
    database: Database, framework: Framework, clock: object
) -> None:
    """On both databases: NUL in evidence made PostgreSQL fail ('Sorry, something went wrong')."""
    await seed(database, framework)
    harness = BotHarness(database=database, framework=framework, clock=clock)  # type: ignore[arg-type]
    audit_id = await new_request(database, framework, "alexw@example.com")
    turn = await open_audit(harness, ALEX, audit_id)
    choice = inputs(turn.card)["case_choice"]["choices"][0]["value"]
    turn = await harness.press(ALEX, turn, "Use this case", case_choice=choice)
    criterion = turn
    for evidence, shown in (
        ("Seen at home\x00 on Monday", "U+0000"),
        ("Bell\x07", "U+0007"),
        ("Half a pair \ud83d", "an unpaired surrogate (U+D83D)"),
    ):
        refused = await harness.press(ALEX, criterion, "Next", rating="meets", evidence=evidence)
        assert shown in refused.text
        assert refused.text.startswith("The evidence contains")
        assert "Nothing was saved" in refused.text
        assert "something went wrong" not in refused.text.lower()
        assert refused.updated == []  # the card stays, with what was typed in it
    detail = await load(database, audit_id)
    assert all(r.evidence == "" for r in detail.ratings.values())
    # Line breaks and tabs are part of ordinary evidence.
    turn = await harness.press(
        ALEX, criterion, "Next", rating="meets", evidence="First visit:\n\tall well\r\nSecond"
    )
    assert "Criterion 2 of" in all_text(turn.card)
    detail = await load(database, audit_id)
    assert [r.evidence for r in detail.ratings.values() if r.evidence] == [
        "First visit:\n\tall well\r\nSecond"
    ]
