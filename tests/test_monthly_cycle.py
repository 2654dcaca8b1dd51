"""The monthly cycle against a database: calendar, dispatch, reminders, digests, month end,
moderation sampling, claims and the scheduler's triggers."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, func, select

from admin.demo_data import DEMO_AUDITORS, cases_csv, load_demo_data, staff_csv
from bot.adapter import create_adapter
from bot.settings import load_settings
from delivery.outcomes import Delivery, UnrenderableMessageError
from delivery.sender import OutboxSender
from messages.request_cards import (
    UNRENDERED_REQUEST,
    outbox_activity,
    request_card_activity,
)
from messages.requests import RequestError, request_audit
from practice.calendar import audit_year, audits_in_month, days_before_due
from practice.framework import Framework
from scheduler.jobs import (
    Cycle,
    close_moderation,
    close_months,
    dispatch_month,
    run_day,
    sample_for_moderation,
    send_digests,
    send_reminders,
    team_digest_rows,
)
from scheduler.runner import CycleScheduler
from storage import audits as audit_store
from storage import moderation as moderation_store
from storage import roster
from storage.csv_import import import_cases, import_staff
from storage.database import Database
from storage.dispatch import dispatch_inputs
from storage.models import (
    AuditRequest,
    AuditStatus,
    AuditStatusChange,
    CaseRecord,
    CaseStatus,
    JobRun,
    ModerationSample,
    OutboxMessage,
    Staff,
)
from tests.delivery_helpers import render_with
from tests.fake_connector import FakeConnector

LONDON = ZoneInfo("Europe/London")


def by_month(framework: Framework, year: int) -> dict[str, dict[str, object]]:
    return {a.month: a.as_dict() for a in audit_year(framework, year) if not a.additional}


@pytest.mark.parametrize(
    ("year", "month", "field", "expected"),
    [
        (2023, "2023-09", "due_on", "2023-09-29"),
        (2023, "2023-09", "moderation_until", "2023-10-13"),
        (2023, "2023-10", "requests_on", "2023-10-02"),
        (2023, "2024-01", "requests_on", "2024-01-02"),  # New Year's Day
        (2023, "2024-03", "due_on", "2024-03-28"),  # Good Friday, then a weekend
        (2023, "2024-04", "requests_on", "2024-04-02"),  # Easter Monday
        (2023, "2024-04", "moderation_until", "2024-05-15"),  # May Day bank holiday inside
        (2023, "2024-05", "due_on", "2024-05-31"),
        (2023, "2024-05", "moderation_until", "2024-06-14"),
        (2024, "2024-09", "requests_on", "2024-09-02"),
        (2024, "2024-11", "due_on", "2024-11-29"),
        (2024, "2025-04", "requests_on", "2025-04-01"),
        (2024, "2025-04", "due_on", "2025-04-30"),
        (2024, "2025-05", "due_on", "2025-05-30"),
        (2024, "2025-05", "moderation_until", "2025-06-13"),
        (2024, "2025-07", "moderation_until", "2025-08-14"),
    ],
)
def test_calendar_dates(
    framework: Framework, year: int, month: str, field: str, expected: str
) -> None:
    assert by_month(framework, year)[month][field] == expected


def test_calendar_shape_and_additional_audits(framework: Framework) -> None:
    months = audit_year(framework, 2023)
    assert [a.month for a in months if not a.additional] == [
        "2023-09", "2023-10", "2023-11", "2024-01", "2024-02", "2024-03",
        "2024-04", "2024-05", "2024-06", "2024-07",
    ]  # fmt: skip
    assert by_month(framework, 2023)["2023-09"] == {
        "month": "2023-09", "standard": 1, "practitioner_kind": "self",
        "requests_on": "2023-09-01", "due_on": "2023-09-29", "moderation_until": "2023-10-13",
    }  # fmt: skip
    extra = [a for a in months if a.additional]
    assert len(extra) == 1
    assert extra[0].as_dict()["standard"] == 8
    assert extra[0].as_dict()["title"] == "Safeguarding people (addition)"
    assert [a.practitioner_kind for a in months if not a.additional] == ["self", "peer"] * 5


def test_reminder_days_are_working_days_before_the_due_date() -> None:
    # The spring bank holiday (27 May 2024) does not count.
    assert days_before_due(date(2024, 5, 31), (5, 0)) == {date(2024, 5, 23), date(2024, 5, 31)}
    # Nor do Easter Monday and Good Friday.
    assert days_before_due(date(2024, 4, 2), (5,)) == {date(2024, 3, 22)}


# -- against a database ---------------------------------------------------------------------


async def seeded(database: Database, framework: Framework, today: date) -> Cycle:
    async with database.session() as session:
        assert (await import_staff(session=session, framework=framework, text=staff_csv())).ok
        assert (await import_cases(session=session, text=cases_csv(today))).ok
    return Cycle(database=database, framework=framework, zone=LONDON, instance="test")


async def count(database: Database, model: type, *where: object) -> int:
    async with database.session() as session:
        statement = select(func.count()).select_from(model)
        for condition in where:
            statement = statement.where(condition)  # type: ignore[arg-type]
        return int((await session.exec(statement)).one())


async def test_dispatch_creates_requests_once_and_records_its_seed(
    database: Database, framework: Framework
) -> None:
    cycle = await seeded(database, framework, date(2026, 11, 2))
    dry = await dispatch_month(cycle, "2026-11", dry_run=True)
    assert dry.plan is not None
    assert await count(database, AuditRequest) == 0
    report = await dispatch_month(cycle, "2026-11", seed="2026-11/fixed")
    assert report.ran
    assert report.seed == "2026-11/fixed"
    planned = report.summary["requests"]
    assert planned == len(dry.plan.requests)
    assert report.summary["by_kind"] == {"sampled": 13, "self": 9}
    assert await count(database, AuditRequest) == planned
    assert (
        await count(database, OutboxMessage, col(OutboxMessage.purpose) == "audit_request")
        == planned
    )
    again = await dispatch_month(cycle, "2026-11")
    assert not again.ran
    assert again.seed == "2026-11/fixed"
    assert await count(database, AuditRequest) == planned
    async with database.session() as session:
        run = (await session.exec(select(JobRun).where(JobRun.job == "dispatch"))).one()
        assert run.status == "done"
        assert json.loads(run.summary)["requests"] == planned
        audit = (await session.exec(select(AuditRequest))).first()
        assert audit is not None
        assert audit.dispatch_key is not None
        assert str(audit.due_on) == "2026-11-30"


async def test_request_cards_are_made_when_sent_from_the_audit_as_it_then_is(
    database: Database, framework: Framework, monkeypatch: pytest.MonkeyPatch
) -> None:
    cycle = await seeded(database, framework, date(2026, 11, 2))
    await dispatch_month(cycle, "2026-11", seed="2026-11/fixed")
    async with database.session() as session:
        queued = (
            await session.exec(
                select(OutboxMessage)
                .where(col(OutboxMessage.purpose) == "audit_request")
                .order_by(col(OutboxMessage.id))
            )
        ).all()
        assert queued
        assert {m.activity for m in queued} == {UNRENDERED_REQUEST}
        for message in queued:
            assert message.audit_id is not None
            detail = await audit_store.audit_detail(session=session, audit_id=message.audit_id)
            assert detail is not None
            standard = framework.standard(detail.audit.standard)
            assert standard is not None
            made = await outbox_activity(database=database, framework=framework, message=message)
            assert made == request_card_activity(
                detail.audit, standard, detail.case, detail.subject, detail.auditor
            )
            refresh = made["attachments"][0]["content"]["refresh"]
            assert refresh["userIds"] == [f"8:orgid:{detail.auditor.aad_object_id}"]
            assert made["summary"] == f"New audit: {standard.label}"
            card = json.dumps(made["attachments"][0]["content"])
            assert f'"audit_id": {detail.audit.id}' in card
            if detail.case is not None:
                assert detail.case.reference in card
        with pytest.raises(UnrenderableMessageError, match="no framework"):
            await outbox_activity(database=database, framework=None, message=queued[0])

    # Sent through the real sender to a fake Teams, the card is the one made.
    connector = await FakeConnector().start()
    try:
        message = queued[0]
        async with database.session() as session:
            recipient = await session.get(Staff, message.recipient_id)
            assert recipient is not None
            assert recipient.aad_object_id is not None
            await roster.remember_conversation(
                session=session,
                aad_object_id=recipient.aad_object_id,
                reference=roster.ChatReference(
                    channel_id="msteams", service_url=connector.url,
                    conversation_id="a:auditor", tenant_id="t",
                    teams_user_id="29:auditor", bot_id="28:bot",
                ),
            )  # fmt: skip
            expected = await outbox_activity(
                database=database, framework=framework, message=message
            )
        monkeypatch.setenv("PQF_ENVIRONMENT", "development")
        monkeypatch.setenv("MICROSOFT_APP_ID", "")
        adapter = create_adapter(load_settings(env_file=None))
        assert message.id is not None
        without = OutboxSender(
            database=database, adapter=adapter, app_id="", render=render_with(database)
        )
        sent = await OutboxSender(
            database=database, adapter=adapter, app_id="", render=render_with(database, framework)
        ).deliver(message.id)
        assert sent.outcome is Delivery.SENT
        assert connector.cards() == [expected["attachments"][0]["content"]]
        # A sender given no framework cannot make the card: the message is not sent, and
        # says why (another of the month's cards, given to the same person).
        other = queued[1]
        assert other.id is not None
        async with database.session() as session:
            other_row = await session.get(OutboxMessage, other.id)
            assert other_row is not None
            other_row.recipient_id = message.recipient_id
        refused = await without.deliver(other.id)
        assert refused.outcome is Delivery.UNDELIVERABLE
        assert refused.detail == "this sender was given no framework to make request cards"
        assert len(connector.cards()) == 1
    finally:
        await connector.close()


async def test_the_dispatch_reads_only_the_cases_a_draw_may_take(
    database: Database, framework: Framework
) -> None:
    today = date(2026, 11, 2)
    await seeded(database, framework, today)
    async with database.session() as session:
        cases = list(await session.exec(select(CaseRecord).order_by(col(CaseRecord.id).desc())))
        auditor = (await session.exec(select(Staff))).first()
        assert auditor is not None
        assert auditor.id is not None
        long_closed, just_closed, audited, audited_long_ago, taken = cases[:5]
        long_closed.status, long_closed.closed_on = CaseStatus.CLOSED, date(2024, 1, 5)
        just_closed.status, just_closed.closed_on = CaseStatus.CLOSED, date(2026, 10, 20)
        for case, month in (
            (audited, "2026-06"),
            (audited_long_ago, "2025-10"),
            (taken, "2026-11"),
        ):
            session.add(case)
            session.add(
                AuditRequest(
                    month=month,
                    standard=2,
                    kind="sampled",
                    framework_version="test",
                    auditor_id=auditor.id,
                    case_id=case.id,
                    status=AuditStatus.REQUESTED,
                    due_on=today,
                    team=case.team,
                )
            )
        session.add(long_closed)
        session.add(just_closed)
        await session.commit()
        inputs, people = await dispatch_inputs(
            session=session,
            framework=framework,
            audits=audits_in_month(framework, today.year, today.month),
        )
    read = [c.id for c in inputs.cases]
    assert read == sorted(read), "read in id order, so a seed draws alike on every database"
    not_before = today - timedelta(days=framework.recently_closed_days)
    open_or_recent = {
        c.id
        for c in cases
        if c.status == CaseStatus.OPEN or (c.closed_on is not None and c.closed_on >= not_before)
    }
    assert long_closed.id not in open_or_recent
    assert just_closed.id in open_or_recent
    assert set(read) == open_or_recent - {audited.id}
    assert audited_long_ago.id in read  # audited thirteen months ago: may be drawn again
    assert inputs.cases_taken_this_month == {taken.id}
    assert taken.id in read  # left out by the plan, which knows it is taken this month
    assert {c.id: (c.open, c.closed_on) for c in inputs.cases}[just_closed.id] == (
        False,
        date(2026, 10, 20),
    )
    assert people[auditor.id] == (auditor.name, auditor.team)
    assert len(inputs.staff) == len(people)


async def _requests_by_email(database: Database) -> Counter[str]:
    async with database.session() as session:
        rows = await session.exec(
            select(Staff.email)
            .join(AuditRequest, col(AuditRequest.auditor_id) == Staff.id)
            .where(col(AuditRequest.voluntary).is_(False))
        )
        return Counter(rows)


async def test_demo_data_then_the_dispatch_ask_nobody_beyond_their_quota(
    database: Database, framework: Framework
) -> None:
    # `make run`: demo-data asks the playground users, then the bot's start-up catch-up
    # runs the month's dispatch; a rerun of both asks nobody again.
    today = date(2026, 11, 2)
    cycle = Cycle(database=database, framework=framework, zone=LONDON, instance="test")
    for _ in range(2):
        async with database.session() as session:
            await load_demo_data(session=session, framework=framework, today=today)
        await dispatch_month(cycle, "2026-11")
    asked = await _requests_by_email(database)
    assert {email: asked[email] for email in DEMO_AUDITORS} == {
        "alexw@example.com": 1,
        "adelev@example.com": 1,
        "meganb@example.com": 2,
        "isaiahl@example.com": 6,
        "lynner@example.com": 2,
    }
    quotas = {r.code: r.monthly_audits for r in framework.roles}
    async with database.session() as session:
        roles = {s.email: s.role_code for s in await session.exec(select(Staff))}
    assert all(count <= quotas[roles[email]] for email, count in asked.items())
    # Each of those requests has its one card in the outbox.
    assert await count(database, OutboxMessage) == sum(asked.values())


async def test_requests_made_by_hand_count_in_the_quota(
    sqlite_database: Database, framework: Framework
) -> None:
    cycle = await seeded(sqlite_database, framework, date(2026, 11, 2))
    async with sqlite_database.session() as session:
        await request_audit(
            session=session, framework=framework, auditor_email="meganb@example.com",
            standard_number=3, month="2026-11", today=date(2026, 11, 2),
        )  # fmt: skip
        await request_audit(
            session=session, framework=framework, auditor_email="alexw@example.com",
            standard_number=3, month="2026-11", today=date(2026, 11, 2),
        )  # fmt: skip
    report = await dispatch_month(cycle, "2026-11", seed="2026-11/fixed")
    asked = await _requests_by_email(sqlite_database)
    assert asked["meganb@example.com"] == 2  # one by hand, one by the dispatch
    assert asked["alexw@example.com"] == 1
    assert report.summary["requests"] == 22 - 2
    # An audit of another standard, or a voluntary one, is not part of the quota...
    async with sqlite_database.session() as session:
        await request_audit(
            session=session, framework=framework, auditor_email="alexw@example.com",
            standard_number=5, month="2026-11", today=date(2026, 11, 2),
        )  # fmt: skip
        # ...but a third of standard 3 for Megan is refused, saying why and what she can do.
        with pytest.raises(RequestError) as refused:
            await request_audit(
                session=session, framework=framework, auditor_email="meganb@example.com",
                standard_number=3, month="2026-11", today=date(2026, 11, 2),
            )  # fmt: skip
        with pytest.raises(RequestError, match="moderators moderate audits"):
            await request_audit(
                session=session, framework=framework, auditor_email="pattif@example.com",
                standard_number=3, month="2026-11", today=date(2026, 11, 2),
            )  # fmt: skip
    assert str(refused.value) == (
        "meganb@example.com already has the 2 audits of standard 3 their role (SVM) is asked "
        "for in 2026-11; nobody is asked for more (they can start an extra one themselves with "
        "'new audit' in Teams)"
    )


async def test_a_month_without_audits_is_refused(
    sqlite_database: Database, framework: Framework
) -> None:
    cycle = await seeded(sqlite_database, framework, date(2026, 12, 1))
    from scheduler.jobs import CycleError

    with pytest.raises(CycleError, match="no audits"):
        await dispatch_month(cycle, "2026-12")


@pytest.mark.postgres
async def test_two_instances_dispatch_and_run_the_day_once(
    postgres_url: str, framework: Framework
) -> None:
    first, second = Database(postgres_url), Database(postgres_url)
    try:
        cycle_a = await seeded(first, framework, date(2026, 11, 2))
        cycle_b = Cycle(database=second, framework=framework, zone=LONDON, instance="other")
        results = await asyncio.gather(
            run_day(cycle_a, date(2026, 11, 2)), run_day(cycle_b, date(2026, 11, 2))
        )
        assert sorted(r["dispatch"]["ran"] for r in results) == [False, True]
        requests = await count(first, AuditRequest)
        assert requests == next(r["dispatch"]["requests"] for r in results if r["dispatch"]["ran"])
        assert await count(first, OutboxMessage) == requests
        assert await count(first, JobRun, col(JobRun.job) == "dispatch") == 1
        # Reminders on the due date, from two instances at once: one each.
        for audit in (await _all(first, AuditRequest))[:5]:
            await _submit(first, audit)
        await asyncio.gather(
            run_day(cycle_a, date(2026, 11, 30)), run_day(cycle_b, date(2026, 11, 30))
        )
        reminders = await count(first, OutboxMessage, col(OutboxMessage.purpose) == "reminder")
        assert 0 < reminders < 22
    finally:
        await first.dispose()
        await second.dispose()


async def _all(database: Database, model: type) -> list:  # type: ignore[type-arg]
    async with database.session() as session:
        rows = list(await session.exec(select(model)))
    return sorted(rows, key=lambda r: getattr(r, "id", None) or getattr(r, "audit_id", 0))


async def _submit(database: Database, audit: AuditRequest) -> None:
    async with database.session() as session:
        fresh = await session.get(AuditRequest, audit.id)
        assert fresh is not None
        await audit_store.submit(session=session, audit=fresh, actor_id=fresh.auditor_id)


async def test_reminders_skip_finished_audits_and_come_once_a_day(
    database: Database, framework: Framework
) -> None:
    cycle = await seeded(database, framework, date(2026, 11, 2))
    await dispatch_month(cycle, "2026-11")
    audits = await _all(database, AuditRequest)
    alex_audits = [a for a in audits if a.auditor_id == await _id(database, "alexw@example.com")]
    await _submit(database, alex_audits[0])
    assert await send_reminders(cycle, date(2026, 11, 20)) is None  # not a reminder day
    outcome = await send_reminders(cycle, date(2026, 11, 23))  # five working days before
    assert outcome is not None
    assert outcome.ran
    auditors = {a.auditor_id for a in audits}
    assert outcome.summary["reminded"] == len(auditors) - 1
    again = await send_reminders(cycle, date(2026, 11, 23))
    assert again is not None
    assert not again.ran
    reminded = {
        m.recipient_id for m in await _all(database, OutboxMessage) if m.purpose == "reminder"
    }
    assert await _id(database, "alexw@example.com") not in reminded
    await send_reminders(cycle, date(2026, 11, 30))
    assert await count(database, OutboxMessage, col(OutboxMessage.purpose) == "reminder") == 2 * (
        len(auditors) - 1
    )


async def _id(database: Database, email: str) -> int:
    async with database.session() as session:
        person = (await session.exec(select(Staff).where(Staff.email == email))).one()
        assert person.id is not None
        return person.id


async def test_digest_shows_each_person_of_the_team(
    sqlite_database: Database, framework: Framework
) -> None:
    database = sqlite_database
    cycle = await seeded(database, framework, date(2026, 11, 2))
    async with database.session() as session:
        ruth = (
            await session.exec(select(Staff).where(Staff.email == "ruth.evans@example.com"))
        ).one()
        ruth.on_leave_until = date(2026, 12, 4)
        session.add(ruth)
    await dispatch_month(cycle, "2026-11")
    audits = await _all(database, AuditRequest)
    alex = await _id(database, "alexw@example.com")
    await _submit(database, next(a for a in audits if a.auditor_id == alex))
    outcome = await send_digests(cycle, date(2026, 11, 25))  # three working days before
    assert outcome is not None
    assert outcome.summary["digests"] >= 2
    async with database.session() as session:
        megan = (await session.exec(select(Staff).where(Staff.email == "meganb@example.com"))).one()
        rows = {
            r.name: r
            for r in await team_digest_rows(session, cycle, megan, "2026-11", date(2026, 11, 25))
        }
    assert rows["Alex Wilber"].state == "done"
    assert rows["Ruth Evans"].state == "on_leave"
    assert rows["Adele Vance"].state == "never_opened"  # she has not installed the bot
    digest = [
        m
        for m in await _all(database, OutboxMessage)
        if m.purpose == "digest" and m.recipient_id == megan.id
    ]
    assert len(digest) == 1
    text = digest[0].activity
    assert "Alex Wilber" in text
    assert "Not opened the audit bot yet" in text


async def test_month_end_marks_late_audits_overdue_and_samples_for_moderation(
    database: Database, framework: Framework
) -> None:
    cycle = await seeded(database, framework, date(2026, 11, 2))
    await dispatch_month(cycle, "2026-11", seed="x")
    audits = await _all(database, AuditRequest)
    for audit in audits[:12]:
        await _submit(database, audit)
    assert "2026-11" not in await close_months(cycle, date(2026, 11, 30))  # still the due date
    closed = await close_months(cycle, date(2026, 12, 1))
    assert closed["2026-11"].ran
    assert closed["2026-11"].summary == {"overdue": len(audits) - 12}
    assert not (await close_months(cycle, date(2026, 12, 2)))["2026-11"].ran
    late = [a for a in await _all(database, AuditRequest) if a.status != AuditStatus.SUBMITTED]
    assert all(a.overdue_at is not None for a in late)
    assert await count(
        database, AuditStatusChange, col(AuditStatusChange.status) == "overdue"
    ) == len(late)

    sampled = await sample_for_moderation(cycle, date(2026, 12, 1))
    summary = sampled["2026-11"].summary
    assert summary["completed"] == 12
    assert summary["sampled"] == 2  # 10% of 12, rounded up, but at least the moderator's quota of 2
    assert await count(database, ModerationSample) == 2
    patti = await _id(database, "pattif@example.com")
    cards = [m for m in await _all(database, OutboxMessage) if m.purpose == "moderation_sample"]
    assert [m.recipient_id for m in cards] == [patti]
    assert "Claim" in cards[0].activity
    assert not (await sample_for_moderation(cycle, date(2026, 12, 2)))["2026-11"].ran

    # A late audit can still be completed; its record shows it was overdue.
    await _submit(database, late[0])
    async with database.session() as session:
        done = await session.get(AuditRequest, late[0].id)
        assert done is not None
        assert done.status == AuditStatus.SUBMITTED
        assert done.overdue_at is not None

    assert "2026-11" not in await close_moderation(cycle, date(2026, 12, 14))  # still open
    closing = await close_moderation(cycle, date(2026, 12, 15))
    assert closing["2026-11"].summary == {"not_moderated": 2}
    assert any(m.purpose == "moderation_closed" for m in await _all(database, OutboxMessage))


async def test_claims_first_one_wins(database: Database, framework: Framework) -> None:
    cycle = await seeded(database, framework, date(2026, 11, 2))
    await dispatch_month(cycle, "2026-11", seed="x")
    for audit in (await _all(database, AuditRequest))[:6]:
        await _submit(database, audit)
    await sample_for_moderation(cycle, date(2026, 12, 1))
    sample = (await _all(database, ModerationSample))[0]
    moderators = [
        await _id(database, "pattif@example.com"),
        await _id(database, "isaiahl@example.com"),
    ]

    async def claim(moderator_id: int) -> bool:
        async with database.session() as session:
            return await moderation_store.claim(
                session=session, audit_id=sample.audit_id, moderator_id=moderator_id
            )

    results = await asyncio.gather(*(claim(moderators[i % 2]) for i in range(8)))
    assert results.count(True) == 1
    async with database.session() as session:
        claimed = await moderation_store.moderation_of(session=session, audit_id=sample.audit_id)
    assert claimed is not None
    assert claimed.moderator_id in moderators


# -- the scheduler ------------------------------------------------------------------------------


def test_scheduler_triggers_fire_on_working_mornings_in_london(framework: Framework) -> None:
    cycle = Cycle(database=None, framework=framework, zone=LONDON)  # type: ignore[arg-type]
    scheduler = CycleScheduler(cycle, job_time=time(8, 30), clock=lambda: datetime.now(UTC))
    triggers = scheduler.triggers()
    assert list(triggers) == [
        "dispatch", "reminders", "digests", "month-end", "moderation-sample", "moderation-close",
        "retention",
    ]  # fmt: skip
    friday_evening = datetime(2026, 11, 27, 17, 0, tzinfo=LONDON)
    assert triggers["dispatch"].get_next_fire_time(None, friday_evening) == datetime(
        2026, 11, 30, 8, 30, tzinfo=LONDON
    )
    assert triggers["reminders"].get_next_fire_time(None, friday_evening) == datetime(
        2026, 11, 30, 8, 31, tzinfo=LONDON
    )
    # Across the change to summer time the job still runs at 08:30 London time (07:30 UTC).
    before_change = datetime(2027, 3, 26, 12, 0, tzinfo=LONDON)
    fire = triggers["dispatch"].get_next_fire_time(None, before_change)
    assert fire == datetime(2027, 3, 29, 8, 30, tzinfo=LONDON)
    assert fire.astimezone(UTC).hour == 7


async def test_scheduler_catches_up_when_started_late_in_the_day(
    framework: Framework, sqlite_database: Database
) -> None:
    cycle = Cycle(database=sqlite_database, framework=framework, zone=LONDON)
    late = CycleScheduler(
        cycle, job_time=time(8, 30), clock=lambda: datetime(2026, 11, 23, 14, 0, tzinfo=LONDON)
    )
    early = CycleScheduler(
        cycle, job_time=time(8, 30), clock=lambda: datetime(2026, 11, 23, 6, 0, tzinfo=LONDON)
    )
    late.start()
    early.start()
    try:
        late_next = {job.id: job.next_run_time for job in late._scheduler.get_jobs()}
        early_next = {job.id: job.next_run_time for job in early._scheduler.get_jobs()}
    finally:
        late.shutdown()
        early.shutdown()
    assert all(run == datetime(2026, 11, 23, 14, 0, tzinfo=LONDON) for run in late_next.values())
    assert early_next["dispatch"] > datetime.now(LONDON)


async def test_each_scheduled_run_is_reported_for_the_metrics(
    framework: Framework, sqlite_database: Database
) -> None:
    runs: list[tuple[str, str]] = []
    monday = datetime(2026, 11, 23, 9, 0, tzinfo=LONDON)
    working = Cycle(database=sqlite_database, framework=framework, zone=LONDON,
                    retention_months=24)  # fmt: skip
    scheduler = CycleScheduler(working, job_time=time(8, 30), clock=lambda: monday,
                               on_run=lambda job, outcome: runs.append((job, outcome)))  # fmt: skip
    await scheduler._run("retention")  # runs once a day: done, then nothing due
    await scheduler._run("digests")  # no digest is due on 23 November
    broken = Cycle(database=None, framework=framework, zone=LONDON, retention_months=24)  # type: ignore[arg-type]
    failing = CycleScheduler(broken, job_time=time(8, 30), clock=lambda: monday,
                             on_run=lambda job, outcome: runs.append((job, outcome)))  # fmt: skip
    await failing._run("retention")
    assert runs == [("retention", "done"), ("digests", "nothing_due"), ("retention", "failed")]


def test_additional_audit_month_has_two_audits(framework: Framework) -> None:
    assert [a.standard for a in audits_in_month(framework, 2024, 1)] == [4, 8]


async def test_the_dispatch_records_which_audits_are_additional(
    database: Database, framework: Framework
) -> None:
    cycle = await seeded(database, framework, date(2024, 1, 2))
    await dispatch_month(cycle, "2024-01", seed="2024-01/fixed")
    async with database.session() as session:
        audits = list(await session.exec(select(AuditRequest)))
    # January 2024: the timetable's standard 4, and the Board's additional standard 8 audits.
    assert {(a.standard, a.additional) for a in audits} == {(4, False), (8, True)}
