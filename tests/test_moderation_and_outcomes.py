"""Outcomes shared on submit, moderation through the bot, and voluntary audits."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from sqlmodel import select

from admin.demo_data import cases_csv, staff_csv
from messages.requests import request_audit
from practice.framework import Framework
from scheduler.jobs import Cycle, dispatch_month, sample_for_moderation
from storage import audits as audit_store
from storage import moderation as moderation_store
from storage.csv_import import import_cases, import_staff
from storage.database import Database
from storage.models import (
    AuditRequest,
    AuditStatus,
    CaseRecord,
    ModerationSample,
    OutboxMessage,
    Staff,
)
from tests.harness import BotHarness, LivingCard, User, action, actions, all_text, inputs
from tests.test_audit_dialog import ALEX, MEGAN, load, new_request, open_audit
from tests.test_monthly_cycle import LONDON

PATTI = User("00000000-0000-0000-0000-0000000000024", "user-id-4", "Patti Fernandez")  # moderator
ISAIAH = User("00000000-0000-0000-0000-0000000000023", "user-id-3", "Isaiah Langer")  # PDAP
DECEMBER = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
async def seeded(sqlite_database: Database, framework: Framework) -> Database:
    async with sqlite_database.session() as session:
        assert (await import_staff(session=session, framework=framework, text=staff_csv())).ok
        assert (await import_cases(session=session, text=cases_csv(date(2026, 11, 2)))).ok
    return sqlite_database


async def outbox(database: Database, purpose: str) -> list[OutboxMessage]:
    async with database.session() as session:
        return list(
            await session.exec(select(OutboxMessage).where(OutboxMessage.purpose == purpose))
        )


async def staff_id(database: Database, email: str) -> int:
    async with database.session() as session:
        person = (await session.exec(select(Staff).where(Staff.email == email))).one()
    assert person.id is not None
    return person.id


async def complete(
    database: Database, framework: Framework, audit_id: int, rating: str = "meets"
) -> None:
    async with database.session() as session:
        audit = await session.get(AuditRequest, audit_id)
        assert audit is not None
        standard = framework.standard(audit.standard)
        assert standard is not None
        for criterion in standard.criteria:
            await audit_store.save_rating(
                session=session, audit_id=audit_id, criterion_id=criterion.id, rating=rating,
                evidence=f"Evidence for {criterion.id}",
            )  # fmt: skip
        await audit_store.submit(session=session, audit=audit, actor_id=audit.auditor_id)


# -- outcomes ---------------------------------------------------------------------------------


async def run_whole_audit(harness: BotHarness, user: User, audit_id: int, start: str) -> None:
    turn = await open_audit(harness, user, audit_id)
    fields = {"case_reference": "5550001"} if start == "Use this case" else {}
    turn = await harness.press(user, turn, start, **fields)
    while "Criterion" in all_text(turn.card):
        turn = await harness.press(user, turn, "Next", rating="meets", evidence="Good notes")
    turn = await harness.press(user, turn, "Next", no_contact_reason="No contact details held")
    if "Involving the worker" in all_text(turn.card):
        turn = await harness.press(user, turn, "Next", how="joint_teams")
    turn = await harness.press(user, turn, "Submit audit")
    assert "is submitted" in turn.text


async def test_a_case_audit_is_shared_with_the_worker_and_their_supervisor(
    seeded: Database, framework: Framework, clock: object
) -> None:
    harness = BotHarness(database=seeded, framework=framework, clock=clock)  # type: ignore[arg-type]
    sam = await staff_id(seeded, "sam.green@example.com")
    async with seeded.session() as session:
        case = (
            await session.exec(select(CaseRecord).where(CaseRecord.allocated_worker_id == sam))
        ).first()
        assert case is not None
        requested = await request_audit(
            session=session, framework=framework, auditor_email="meganb@example.com",
            standard_number=3, month="2026-11", today=date(2026, 11, 23),
            case_reference=case.reference,
        )  # fmt: skip
    audit_id = requested.audit.id
    assert audit_id is not None
    detail = await load(seeded, audit_id)
    assert detail.subject is not None
    assert detail.subject.id == sam
    await run_whole_audit(harness, MEGAN, audit_id, "Start the audit")
    shared = await outbox(seeded, "outcome")
    recipients = {m.recipient_id for m in shared}
    assert recipients == {sam, await staff_id(seeded, "jordan.price@example.com")}
    worker_card = next(m for m in shared if m.recipient_id == detail.subject.id)
    assert "A completed audit to discuss in supervision" in worker_card.activity
    assert "Megan Bowen completed an audit of your work" in worker_card.activity


async def test_a_self_audit_goes_to_the_supervisor_only(
    seeded: Database, framework: Framework, clock: object
) -> None:
    harness = BotHarness(database=seeded, framework=framework, clock=clock)  # type: ignore[arg-type]
    audit_id = await new_request(seeded, framework, "alexw@example.com")
    await run_whole_audit(harness, ALEX, audit_id, "Use this case")
    shared = await outbox(seeded, "outcome")
    assert [m.recipient_id for m in shared] == [await staff_id(seeded, "meganb@example.com")]
    assert "the work of Alex Wilber" in shared[0].activity


# -- moderation ---------------------------------------------------------------------------------


async def sampled_month(database: Database, framework: Framework) -> list[int]:
    cycle = Cycle(database=database, framework=framework, zone=LONDON)
    await dispatch_month(cycle, "2026-11", seed="moderation-test")
    async with database.session() as session:
        audits = list(await session.exec(select(AuditRequest).order_by(AuditRequest.id)))  # type: ignore[arg-type]
    for audit in audits:
        assert audit.id is not None
        await complete(database, framework, audit.id, rating="exceeds")
    await sample_for_moderation(cycle, date(2026, 12, 1))
    async with database.session() as session:
        return [s.audit_id for s in await session.exec(select(ModerationSample))]


async def test_moderating_an_audit_through_the_bot(seeded: Database, framework: Framework) -> None:
    harness = BotHarness(database=seeded, framework=framework, clock=lambda: DECEMBER)
    sample = await sampled_month(seeded, framework)
    assert len(sample) >= 2
    listing = await harness.say(PATTI, "moderation")
    card = listing.card
    assert "Audits to moderate" in all_text(card)
    claims = [a for a in actions(card) if a["title"] == "Claim"]
    assert len(claims) == len(sample)

    claimed = await harness.submit(PATTI, listing.card_ids[-1], claims[0]["data"])
    assert "You have claimed this audit" in claimed.text
    moderation = claimed.card
    audit_id = claims[0]["data"]["audit_id"]
    detail = await load(seeded, audit_id)
    standard = framework.standard(detail.audit.standard)
    assert standard is not None
    views = inputs(moderation)
    assert len([k for k in views if k.startswith("view_")]) == len(standard.criteria)

    # Submitting with nothing answered shows what is missing, in place.
    empty = await harness.press(PATTI, claimed, "Submit moderation")
    assert "Agree with the auditor's rating of" in all_text(empty.updated_cards()[-1])
    live = empty.updated_cards()[-1]
    answers = {f"view_{c.id}": "agree" for c in standard.criteria}
    answers[f"view_{standard.criteria[0].id}"] = "meets"  # differs from the auditor's Exceeds
    no_reason = await harness.submit(
        PATTI, empty.updated[-1].id, {**action(live, "Submit moderation"), **answers}
    )
    assert f"Say why you rate {standard.criteria[0].id} differently" in all_text(
        no_reason.updated_cards()[-1]
    )
    live = no_reason.updated_cards()[-1]
    answers[f"reason_{standard.criteria[0].id}"] = "The record shows the plan was not shared."
    done = await harness.submit(
        PATTI, no_reason.updated[-1].id,
        {**action(live, "Submit moderation"), **answers, "comment": "A thorough audit."},
    )  # fmt: skip
    assert "moderation is recorded" in done.text
    moderated = _as_now(done, no_reason.updated[-1].id)  # the moderation card, now read-only
    assert f"Agreed on {len(standard.criteria) - 1} of {len(standard.criteria)}" in all_text(
        moderated
    )

    sent = await outbox(seeded, "moderation_outcome")
    assert [m.recipient_id for m in sent] == [detail.auditor.id]
    assert "Moderator: Meets (auditor: Exceeds)" in sent[0].activity
    async with seeded.session() as session:
        saved = await moderation_store.ratings_of(session=session, audit_id=audit_id)
        record = await moderation_store.moderation_of(session=session, audit_id=audit_id)
    assert saved[standard.criteria[0].id].rating == "meets"
    assert saved[standard.criteria[1].id].agrees is True
    assert record is not None
    assert record.submitted_at is not None
    again = await harness.submit(
        PATTI, done.updated[-1].id, {**action(live, "Submit moderation"), **answers}
    )
    assert "already submitted" in again.text

    # Her report covers the audits drawn for moderation, the one she moderated among them.
    report = await harness.say(PATTI, "report")
    summary = all_text(report.card)
    assert "Covering: Your audits, audits of your work and those drawn for moderation." in summary
    assert f"Audits completed\n{len(sample)}" in summary


async def test_only_moderators_claim_and_only_once(seeded: Database, framework: Framework) -> None:
    harness = BotHarness(database=seeded, framework=framework, clock=lambda: DECEMBER)
    sample = await sampled_month(seeded, framework)
    refused = await harness.submit(ISAIAH, None, {"pqf": "moderation.claim", "audit_id": sample[0]})
    assert "Only moderators" in refused.text
    listing = await harness.say(ISAIAH, "moderation")
    assert "done by moderators" in listing.text
    async with seeded.session() as session:
        second = Staff(
            email="mo2@example.com", name="Morgan Other", role_code="MOD", team="Learning and Development",
            aad_object_id="99999999-0000-0000-0000-000000000001",
        )  # fmt: skip
        session.add(second)
    other = User("99999999-0000-0000-0000-000000000001", "user-id-mo2", "Morgan Other")
    first_claim = await harness.submit(
        PATTI, None, {"pqf": "moderation.claim", "audit_id": sample[0]}
    )
    assert "You have claimed" in first_claim.text
    late_claim = await harness.submit(
        other, None, {"pqf": "moderation.claim", "audit_id": sample[0]}
    )
    assert "Patti Fernandez has already claimed that audit" in late_claim.text
    not_sampled = await harness.submit(
        PATTI, None, {"pqf": "moderation.claim", "audit_id": 999_999}
    )
    assert "not in a moderation sample" in not_sampled.text
    foreign = await harness.submit(other, None, {"pqf": "moderation.open", "audit_id": sample[0]})
    assert "You have not claimed that audit" in foreign.text


def _as_now(turn: object, card_id: str) -> dict[str, object]:
    """Return the card with this id as the turn last replaced it."""
    replaced = [
        card
        for activity, card in zip(turn.updated, turn.updated_cards(), strict=True)  # type: ignore[attr-defined]
        if activity.id == card_id
    ]
    assert replaced, f"card {card_id} was not replaced"
    return replaced[-1]


async def test_the_sample_card_follows_claims_and_an_old_claim_gets_one_plain_answer(
    seeded: Database, framework: Framework
) -> None:
    harness = BotHarness(database=seeded, framework=framework, clock=lambda: DECEMBER)
    sample = await sampled_month(seeded, framework)
    listing = await harness.say(PATTI, "moderation")
    first_seen, card_id = listing.card, listing.card_ids[-1]
    claims = [a for a in actions(first_seen) if a["title"] == "Claim"]
    audit_id = claims[0]["data"]["audit_id"]

    claimed = await harness.submit(PATTI, card_id, claims[0]["data"])
    assert claimed.texts == ["You have claimed this audit for moderation."]
    # The sample card she pressed now shows the audit as hers, to moderate, not to claim.
    now_shown = _as_now(claimed, card_id)
    buttons = {(a["title"], a["data"]["audit_id"]) for a in actions(now_shown)}
    assert ("Claim", audit_id) not in buttons
    assert ("Moderate", audit_id) in buttons
    assert len([b for b in buttons if b[0] == "Claim"]) == len(sample) - 1

    detail = await load(seeded, audit_id)
    standard = framework.standard(detail.audit.standard)
    assert standard is not None
    agree = {f"view_{c.id}": "agree" for c in standard.criteria}
    done = await harness.press(PATTI, claimed, "Submit moderation", **agree)
    assert "moderation is recorded" in done.text
    after = _as_now(done, card_id)
    assert "Moderated by Patti Fernandez" in all_text(after)
    assert not [a for a in actions(after) if a["data"]["audit_id"] == audit_id]

    # Claim pressed on the card as it first came (before Teams showed the change): one line.
    again = await harness.submit(PATTI, card_id, claims[0]["data"])
    assert again.cards == []
    assert again.texts == [
        "You moderated that audit on Wednesday 2 December 2026: there is nothing more to do "
        "with it. Type **moderation** to see the rest of the sample."
    ]


async def test_claims_close_with_the_moderation_window(
    seeded: Database, framework: Framework
) -> None:
    sample = await sampled_month(seeded, framework)
    after = BotHarness(
        database=seeded, framework=framework, clock=lambda: datetime(2026, 12, 16, 9, tzinfo=UTC)
    )
    closed = await after.submit(PATTI, None, {"pqf": "moderation.claim", "audit_id": sample[0]})
    assert "closed on Monday 14 December 2026" in closed.text


# -- voluntary audits -------------------------------------------------------------------------


async def test_anyone_can_start_an_extra_audit(
    seeded: Database, framework: Framework, clock: object
) -> None:
    harness = BotHarness(database=seeded, framework=framework, clock=clock)  # type: ignore[arg-type]
    offer = await harness.say(ALEX, "new audit")
    assert "Start an extra audit" in all_text(offer.card)
    missing = await harness.press(ALEX, offer, "Start", what="own")
    assert "Choose the practice standard" in all_text(missing.card)
    supervision = await harness.press(ALEX, offer, "Start", standard="10", what="other")
    assert "own supervision records" in all_text(supervision.card)
    started = await harness.press(ALEX, offer, "Start", standard="6", what="other")
    assert "Give the reference of the case you will audit" in all_text(started.card)
    chosen = await harness.press(ALEX, started, "Use this case", case_reference="7001234")
    assert "Criterion 1 of 6" in all_text(chosen.card)
    async with seeded.session() as session:
        audit = (await session.exec(select(AuditRequest).where(AuditRequest.standard == 6))).one()
    assert audit.voluntary
    assert audit.kind == "sampled"
    assert audit.status == AuditStatus.IN_PROGRESS
    assert json.dumps(chosen.card).count("7001234") >= 1


async def test_the_moderator_sees_their_commands_in_help(
    seeded: Database, framework: Framework, clock: object
) -> None:
    harness = BotHarness(database=seeded, framework=framework, clock=clock)  # type: ignore[arg-type]
    assert "moderation" in all_text((await harness.say(PATTI, "help")).card)
    assert "Show the audits drawn for moderation" not in all_text(
        (await harness.say(ALEX, "help")).card
    )


async def test_moderating_on_cards_answered_in_place(
    seeded: Database, framework: Framework
) -> None:
    harness = BotHarness(database=seeded, framework=framework, clock=lambda: DECEMBER)
    sample = await sampled_month(seeded, framework)
    listing = await harness.say(PATTI, "moderation")
    sample_card = LivingCard.sent_in(harness, PATTI, listing)
    claim = next(a for a in actions(sample_card.card) if a["title"] == "Claim")
    assert claim["type"] == "Action.Execute"
    audit_id = claim["data"]["audit_id"]

    claimed = await harness.execute(PATTI, sample_card.card_id, claim["data"])
    # The sample card comes back in place showing who holds each audit...
    assert claimed.in_place is not None
    assert "Claimed by you" in all_text(claimed.in_place)
    assert len([a for a in actions(claimed.in_place) if a["title"] == "Claim"]) == len(sample) - 1
    # ...and the moderation, new work, comes as its own card: the one message of the claim.
    assert [m.attachments is not None for m in claimed.messages] == [True]
    assert claimed.updated == []
    moderation = LivingCard.sent_in(harness, PATTI, claimed)
    # Teams refreshes the sample card when she looks at it: the claim shows on it.
    refresh = sample_card.card["refresh"]
    assert refresh["userIds"] == [f"8:orgid:{PATTI.aad_object_id}"]
    assert refresh["action"]["data"] == {"pqf": "moderation.sample", "month": "2026-11"}
    fresh = await harness.execute(
        PATTI, sample_card.card_id, refresh["action"]["data"], trigger="automatic"
    )
    assert fresh.in_place is not None
    assert "Claimed by you" in all_text(fresh.in_place)
    assert fresh.messages == []
    not_a_moderator = await harness.execute(
        ISAIAH, sample_card.card_id, refresh["action"]["data"], trigger="automatic"
    )
    assert not_a_moderator.in_place is None
    detail = await load(seeded, audit_id)
    standard = framework.standard(detail.audit.standard)
    assert standard is not None

    await moderation.press("Submit moderation")  # nothing answered: the problems, in place
    assert "Agree with the auditor's rating of" in moderation.text
    answers = {f"view_{c.id}": "agree" for c in standard.criteria}
    saved = await moderation.press("Save and finish later", **answers)
    assert inputs(moderation.card)[f"view_{standard.criteria[0].id}"]["value"] == "agree"
    # The save is said on the card itself, at the moderator's time (London: GMT in December).
    assert "Saved at 10:00. You can finish it later here" in moderation.text
    assert saved.messages == []
    assert saved.updated == []
    async with seeded.session() as session:
        kept = await moderation_store.ratings_of(session=session, audit_id=audit_id)
    assert {c.id for c in standard.criteria} == {k for k, v in kept.items() if v.agrees}
    stale = await harness.execute(
        PATTI, moderation.card_id, {**action(claimed.cards[0], "Submit moderation"), **answers}
    )
    assert stale.in_place is not None
    assert "out of date, so nothing was changed" in all_text(stale.in_place)
    assert "Saved at" not in all_text(stale.in_place)  # the note was for that one press
    await moderation.press("Submit moderation", **answers, comment="Well evidenced.")
    assert f"Agreed on {len(standard.criteria)} of {len(standard.criteria)}" in moderation.text
    assert actions(moderation.card) == []  # read-only
    assert moderation.connector_calls == 1  # the sample card, updated: moderated
    async with seeded.session() as session:
        record = await moderation_store.moderation_of(session=session, audit_id=audit_id)
    assert record is not None
    assert record.submitted_at is not None

    # Someone not a moderator presses Claim: a card that only tells; nothing changes.
    other = await harness.execute(ISAIAH, "isaiah-sample", claim["data"])
    assert other.in_place is not None
    assert "Only moderators" in all_text(other.in_place)
    assert other.messages == []


async def test_a_sample_card_teams_will_not_update_changes_nothing(
    seeded: Database, framework: Framework, caplog: pytest.LogCaptureFixture
) -> None:
    harness = BotHarness(database=seeded, framework=framework, clock=lambda: DECEMBER)
    await sampled_month(seeded, framework)
    listing = await harness.say(PATTI, "moderation")
    sample_card = LivingCard.sent_in(harness, PATTI, listing)
    claim = next(a for a in actions(sample_card.card) if a["title"] == "Claim")
    audit_id = claim["data"]["audit_id"]
    claimed = await harness.execute(PATTI, sample_card.card_id, claim["data"])
    moderation = LivingCard.sent_in(harness, PATTI, claimed)
    detail = await load(seeded, audit_id)
    standard = framework.standard(detail.audit.standard)
    assert standard is not None

    async def refuse(context: object, activity: object) -> None:
        raise RuntimeError(f"Teams said no to {detail.auditor.name}'s card")

    harness.adapter.update_activity = refuse  # type: ignore[method-assign]
    answers = {f"view_{c.id}": "agree" for c in standard.criteria}
    with caplog.at_level("WARNING"):
        done = await moderation.press("Submit moderation", **answers, comment="Well evidenced.")
    # The moderation stands and its card says so; only the sample card further up lags behind.
    assert done.in_place is not None
    assert f"Agreed on {len(standard.criteria)} of {len(standard.criteria)}" in moderation.text
    assert done.messages == []
    assert [m.purpose for m in await outbox(seeded, "moderation_outcome")] == ["moderation_outcome"]
    async with seeded.session() as session:
        record = await moderation_store.moderation_of(session=session, audit_id=audit_id)
    assert record is not None
    assert record.submitted_at is not None
    warnings = [r for r in caplog.records if "moderation sample card" in r.getMessage()]
    assert [r.getMessage() for r in warnings] == [
        f"could not bring the moderation sample card of audit {audit_id} up to date: RuntimeError"
    ]
    logged = "\n".join(r.getMessage() + str(r.exc_info or "") for r in caplog.records)
    assert detail.auditor.name not in logged
    assert PATTI.name not in logged
