"""Repositories and migrations on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, pool
from sqlmodel import SQLModel, col, select

from admin.demo_data import PEOPLE, cases_csv, staff_csv
from messages.requests import request_audit
from practice.audit_steps import AuditKind
from practice.framework import Framework
from storage import audits, outbox, roster
from storage.csv_import import import_cases, import_staff
from storage.database import Database, sync_url
from storage.migrate import current_revision, head_revision, is_current, upgrade
from storage.models import AuditStatus, AuditStatusChange, OutboxStatus, Staff, as_json
from tests.conftest import TODAY


async def _seed(database: Database, framework: Framework) -> None:
    async with database.session() as session:
        assert (await import_staff(session=session, framework=framework, text=staff_csv())).ok
        assert (await import_cases(session=session, text=cases_csv(TODAY))).ok


def test_migrations_are_current_and_match_the_models(database_url: str) -> None:
    assert current_revision(database_url) == head_revision(database_url)
    assert is_current(database_url)
    engine = create_engine(sync_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(
                MigrationContext.configure(connection, opts={"compare_type": True}),
                SQLModel.metadata,
            )
    finally:
        engine.dispose()
    assert differences == []


async def test_roster_lookups_ignore_case(database: Database, framework: Framework) -> None:
    await _seed(database, framework)
    async with database.session() as session:
        alex = await roster.staff_by_email(session=session, email=" AlexW@Example.com ")
        assert alex is not None
        same = await roster.staff_by_aad_id(
            session=session, aad_object_id="00000000-0000-0000-0000-0000000000020".upper()
        )
        assert same is not None
        assert same.id == alex.id
        assert alex.id is not None
        cases = await roster.auditable_cases_of(
            session=session, worker_id=alex.id, today=TODAY, recently_closed_days=90, limit=40
        )
        # three open cases and one closed 20 days ago; the one closed 400 days ago is left out
        assert len(cases) == 4
        case = await roster.case_by_reference(session=session, reference=cases[0].reference.lower())
        assert case is not None


async def test_the_whole_roster_and_every_case_reference(
    database: Database, framework: Framework
) -> None:
    await _seed(database, framework)
    async with database.session() as session:
        everyone = await roster.all_staff(session=session)
        assert sorted(s.email for s in everyone) == sorted(p.email for p in PEOPLE)
        assert [s.id for s in everyone] == sorted(s.id for s in everyone if s.id is not None)
        references = await roster.case_references(session=session)
        listed = {line.split(",")[0] for line in cases_csv(TODAY).splitlines()[1:]}
        assert set(references.values()) == listed
        for case_id, reference in references.items():
            case = await roster.case_by_reference(session=session, reference=reference)
            assert case is not None
            assert case.id == case_id


async def test_what_a_periods_messages_were_for(database: Database, framework: Framework) -> None:
    await _seed(database, framework)
    async with database.session() as session:
        alex = await roster.staff_by_email(session=session, email="alexw@example.com")
        assert alex is not None
        assert alex.id is not None
        assert await outbox.purposes(session=session) == []
        for key, purpose, period in [
            ("r1", "reminder", "2026-11"), ("q1", "audit_request", "2026-11"),
            ("d1", "digest", "2026-10"), ("r2", "reminder", "2026-11"),
        ]:  # fmt: skip
            await outbox.enqueue(
                session=session, key=key, recipient_id=alex.id, purpose=purpose, period=period,
                activity={"type": "message", "text": key},
            )  # fmt: skip
        assert await outbox.purposes(session=session, period="2026-11") == [
            "audit_request",
            "reminder",
        ]
        assert await outbox.purposes(session=session) == ["audit_request", "digest", "reminder"]
        assert await outbox.purposes(session=session, period="2026-09") == []


async def test_a_row_as_json_lists_its_fields_in_the_models_order(
    database: Database, framework: Framework
) -> None:
    await _seed(database, framework)
    async with database.session() as session:
        alex = await roster.staff_by_email(session=session, email="alexw@example.com")
        assert alex is not None
        plain = as_json(alex)
    assert list(plain) == list(Staff.model_fields)
    assert plain["email"] == "alexw@example.com"
    assert plain["active"] is True


async def test_conversation_reference_is_stored_and_refreshed(database: Database) -> None:
    def reference(conversation: str) -> roster.ChatReference:
        return roster.ChatReference(
            channel_id="msteams",
            service_url="https://smba.example/uk/",
            conversation_id=conversation,
            tenant_id="t1",
            teams_user_id="29:user",
            bot_id="28:bot",
        )

    async with database.session() as session:
        await roster.remember_conversation(
            session=session, aad_object_id="AAD-1", reference=reference("a")
        )
    async with database.session() as session:
        await roster.remember_conversation(
            session=session, aad_object_id="aad-1", reference=reference("b")
        )
    async with database.session() as session:
        stored = await roster.conversation_of(session=session, aad_object_id="aad-1")
        assert stored is not None
        assert stored.conversation_id == "b"
        assert stored.tenant_id == "t1"
        await roster.forget_installation(session=session, aad_object_id="aad-1")
    async with database.session() as session:
        assert await roster.conversation_of(session=session, aad_object_id="aad-1") is None


async def test_audit_lifecycle_and_history(database: Database, framework: Framework) -> None:
    await _seed(database, framework)
    async with database.session() as session:
        requested = await request_audit(
            session=session, framework=framework, auditor_email="meganb@example.com",
            standard_number=3, month="2026-11", today=TODAY,
        )  # fmt: skip
        audit_id = requested.audit.id
        assert audit_id is not None
    async with database.session() as session:
        detail = await audits.audit_detail(session=session, audit_id=audit_id)
        assert detail is not None
        assert detail.kind is AuditKind.SAMPLED
        assert detail.case is not None
        assert detail.case.allocated_worker_id != detail.auditor.id
        assert detail.subject is not None
        assert detail.subject.id == detail.case.allocated_worker_id
        await audits.start(session=session, audit=detail.audit, actor_id=detail.auditor.id or 0)
        await audits.save_rating(session=session, audit_id=audit_id, criterion_id="3.1",
                                 rating="meets", evidence="Clear notes")  # fmt: skip
        await audits.save_rating(session=session, audit_id=audit_id, criterion_id="3.1",
                                 rating="exceeds", evidence="Better notes")  # fmt: skip
    async with database.session() as session:
        detail = await audits.audit_detail(session=session, audit_id=audit_id)
        assert detail is not None
        assert detail.ratings["3.1"].rating == "exceeds"
        assert len(detail.ratings) == 1
        await audits.submit(session=session, audit=detail.audit, actor_id=detail.auditor.id or 0)
    async with database.session() as session:
        history = list(
            await session.exec(
                select(AuditStatusChange)
                .where(col(AuditStatusChange.audit_id) == audit_id)
                .order_by(col(AuditStatusChange.id))
            )
        )
    assert [h.status for h in history] == [
        AuditStatus.REQUESTED, AuditStatus.IN_PROGRESS, AuditStatus.SUBMITTED
    ]  # fmt: skip
    assert all(h.changed_at.tzinfo is not None for h in history)


async def test_a_card_can_be_taken_once_even_concurrently(
    database: Database, framework: Framework
) -> None:
    await _seed(database, framework)
    async with database.session() as session:
        requested = await request_audit(
            session=session, framework=framework, auditor_email="alexw@example.com",
            standard_number=3, month="2026-11", today=TODAY,
        )  # fmt: skip
    audit_id = requested.audit.id
    assert audit_id is not None

    async def take() -> int | None:
        async with database.session() as session:
            return await audits.take_card(session=session, audit_id=audit_id, seq=0)

    results = await asyncio.gather(*(take() for _ in range(6)))
    assert sorted(results, key=lambda r: r or 0) == [None] * 5 + [1]


async def test_outbox_keys_make_messages_unique(database: Database, framework: Framework) -> None:
    await _seed(database, framework)
    async with database.session() as session:
        person = (await session.exec(select(Staff))).first()
        assert person is not None
        assert person.id is not None
        first, created = await outbox.enqueue(
            session=session, key="k1", recipient_id=person.id, purpose="test", period="2026-11",
            activity={"type": "message", "text": "hello"},
        )  # fmt: skip
        again, created_again = await outbox.enqueue(
            session=session, key="k1", recipient_id=person.id, purpose="test", period="2026-11",
            activity={"type": "message", "text": "different"},
        )  # fmt: skip
        assert created
        assert not created_again
        assert again.id == first.id
        waiting = await outbox.pending_for(session=session, recipient_id=person.id)
        assert [m.id for m in waiting] == [first.id]
        assert first.id is not None
        assert await outbox.record_sent(
            session=session,
            message_id=first.id,
            activity_id="a1",
            now=datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
        )
    async with database.session() as session:
        assert await outbox.pending_for(session=session, recipient_id=person.id) == []
        stored = (await session.exec(select(outbox.OutboxMessage))).one()
        assert stored.status == OutboxStatus.SENT


async def test_messages_put_off_for_the_app_wait_until_it_is_installed(
    database: Database, framework: Framework
) -> None:
    await _seed(database, framework)
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    later = now + timedelta(hours=1)
    async with database.session() as session:
        alex = await roster.staff_by_email(session=session, email="alexw@example.com")
        megan = await roster.staff_by_email(session=session, email="meganb@example.com")
        assert alex is not None
        assert alex.id is not None
        assert alex.aad_object_id is not None
        assert megan is not None
        assert megan.id is not None
        ids = {}
        for person in (alex, megan):
            assert person.id is not None
            message, _ = await outbox.enqueue(
                session=session, key=f"k{person.id}", recipient_id=person.id, purpose="test",
                period="2026-11", activity={"type": "message", "text": "hello"},
            )  # fmt: skip
            ids[person.id] = message.id
    async with database.session() as session:
        claimed = await outbox.claim_due(
            session=session, instance_id="s", now=now, lease=timedelta(minutes=2), limit=10
        )
        assert len(claimed) == 2
        # Alex installs the app after the sender looked for his chat, before it put him off.
        await roster.remember_conversation(
            session=session, aad_object_id=alex.aad_object_id,
            reference=roster.ChatReference(
                channel_id="msteams", service_url="https://smba.example/uk/",
                conversation_id="a:alex",
                teams_user_id="29:alex", bot_id="28:b",
            ),
        )  # fmt: skip
    async with database.session() as session:
        put_off = await outbox.defer_until_installed(
            session=session, message_ids=list(ids.values()), instance_id="s", until=later
        )
    assert put_off == 1
    async with database.session() as session:
        rows = {m.recipient_id: m for m in await session.exec(select(outbox.OutboxMessage))}
    assert (rows[alex.id].next_attempt_at, rows[alex.id].claimed_by) == (None, None)
    assert rows[megan.id].last_error == outbox.NOT_INSTALLED
    assert rows[megan.id].next_attempt_at == later
    assert rows[megan.id].claimed_by is None
    # Megan opens the bot: what waited for her is due at once.
    async with database.session() as session:
        assert await outbox.wake(session=session, recipient_id=megan.id) == 1
    async with database.session() as session:
        message = await session.get(outbox.OutboxMessage, ids[megan.id])
        assert message is not None
        assert (message.next_attempt_at, message.last_error) == (None, "")
        due = await outbox.claim_due(
            session=session, instance_id="s", now=now, lease=timedelta(minutes=2), limit=10
        )
    assert sorted(m.id for m in due) == sorted(ids.values())


async def test_simultaneous_installation_events_store_one_reference(database: Database) -> None:
    reference = roster.ChatReference(
        channel_id="msteams", service_url="https://smba.example/uk/",
        conversation_id="a:1",
        teams_user_id="29:u", bot_id="28:b",
    )  # fmt: skip

    async def remember() -> None:
        async with database.session() as session:
            await roster.remember_conversation(
                session=session, aad_object_id="aad-2", reference=reference
            )

    await asyncio.gather(*(remember() for _ in range(5)))
    async with database.session() as session:
        rows = (await session.exec(select(roster.TeamsConversation))).all()
    assert len(rows) == 1


def test_upgrading_from_the_first_release_keeps_audits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    upgrade(url, "0001")
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO staff (email, name, role_code, team, active, created_at, updated_at) "
            "VALUES ('a@example.com', 'A', 'SW', 'T', 1, '2024-01-01', '2024-01-01')"
        )
        connection.exec_driver_sql(
            "INSERT INTO audit_request (month, standard, kind, framework_version, auditor_id, status, "
            "due_on, requested_at, current_step, card_seq, updated_at) VALUES ('2024-01', 4, 'self', "
            "'v', 1, 'requested', '2024-01-31', '2024-01-02', 'case', 0, '2024-01-02')"
        )
    upgrade(url)
    with engine.connect() as connection:
        row = connection.exec_driver_sql("SELECT voluntary, dispatch_key FROM audit_request").one()
    engine.dispose()
    assert tuple(row) == (0, None)
    assert is_current(url)


def test_the_additional_audits_migration_marks_past_audits_from_the_timetable(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/before.db"
    upgrade(url, "0005")
    now = datetime(2024, 2, 1, tzinfo=UTC)
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO staff (id, email, name, role_code, team, active, created_at, "
                "updated_at) VALUES (1, 'a@example.com', 'A', 'SVM', 'Mendip', 1, ?, ?)",
                (now, now),
            )
            for month, standard, voluntary in [
                ("2024-01", 4, False), ("2024-01", 8, False), ("2024-01", 8, True),
                ("2023-12", 8, False),  # December has no timetabled standard
            ]:  # fmt: skip
                connection.exec_driver_sql(
                    "INSERT INTO audit_request (month, standard, kind, framework_version, "
                    "auditor_id, status, due_on, voluntary, team, source, requested_at, "
                    "current_step, card_seq, updated_at) VALUES (?, ?, 'sampled', 'v', 1, "
                    "'submitted', '2024-01-31', ?, 'Mendip', 'bot', ?, 'case', 0, ?)",
                    (month, standard, voluntary, now, now),
                )
        upgrade(url, "0007")
        with engine.connect() as connection:
            marked = connection.exec_driver_sql(
                "SELECT month, standard, voluntary, additional FROM audit_request ORDER BY id"
            ).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in marked] == [
        ("2024-01", 4, False, False), ("2024-01", 8, False, True), ("2024-01", 8, True, False),
        ("2023-12", 8, False, False),
    ]  # fmt: skip
