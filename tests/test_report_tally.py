"""The report tallies stay equal to a fresh count through every write that changes them.

Whole-council and team reports read the tallies (storage/report_tally.py), which submission,
the audit import and moderation keep in their own transactions. After each kind of write
(an audit submitted on time and late, ratings drafted on an audit not yet submitted, a
moderation submitted and then changed, audits imported and re-imported with other ratings
and team, the retention purge) the tallies must equal the counts made afresh from the rows,
and the reports they make must equal the reports made from every audit's row; on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from alembic import command
from sqlmodel import col, select

from practice.framework import Framework
from practice.report import ReportScope
from storage import audits as audit_store
from storage import moderation as moderation_store
from storage import report_tally
from storage.audit_import import import_audits
from storage.cycle import add_to_sample
from storage.database import Database
from storage.migrate import _alembic_config, upgrade
from storage.models import AuditRequest, Staff
from storage.retention import purge
from tests.test_report_counts import _both_ways, _history

SCOPES = [
    ReportScope(),
    ReportScope("Mendip", teams=frozenset({"Mendip"})),
    ReportScope("Two teams", teams=frozenset({"Mendip", "Frome"})),
    ReportScope("No team", teams=frozenset({""})),
]  # fmt: skip
PERIODS = (("2023-09", "2024-03"), ("2024-01", "2024-01"), ("2023-09", "2024-12"))
IMPORTED = (
    "month,standard,kind,auditor_email,audited_worker_email,team,case_reference,feedback,"
    "feedback_for_report,1.1,1.2,2.1\n"
    "2024-01,1,sampled,p1@example.com,p2@example.com,Mendip,2000001,Kind,yes,Meets,Below,\n"
    "2024-01,1,peer,p3@example.com,p4@example.com,Frome,2000002,,,Exceeds,,\n"
    "2023-11,2,sampled,p5@example.com,p6@example.com,Taunton,,,,,,below\n"
)


async def _fresh(database: Database) -> dict[str, dict[tuple[Any, ...], int]]:
    """Return the tallies as kept, after checking them against a count made afresh."""
    async with database.session() as session:
        kept = await report_tally.tallies(session=session)
        await report_tally.rebuild(session=session)
        fresh = await report_tally.tallies(session=session)
        await session.rollback()
    assert kept == fresh
    return kept


async def _check(database: Database, framework: Framework) -> dict[str, Any]:
    kept = await _fresh(database)
    for scope in SCOPES:
        for first, last in PERIODS:
            each, summed = await _both_ways(database, framework, first, last, scope)
            assert summed == each, (scope.label, first, last)
    return kept


async def test_the_tallies_follow_every_write(database: Database, framework: Framework) -> None:
    await _history(database, framework)
    before = await _check(database, framework)
    standard = framework.standards[0]
    async with database.session() as session:
        auditor = (await session.exec(select(Staff).where(Staff.email == "p1@example.com"))).one()
        subject = (await session.exec(select(Staff).where(Staff.email == "p2@example.com"))).one()
        made = []
        for due_on in (date(2024, 1, 25), date(2024, 1, 5)):
            audit = await audit_store.create_audit_request(
                session=session, auditor=auditor, standard=standard, kind="sampled",
                month="2024-01", due_on=due_on, framework_version="t", subject=subject,
            )  # fmt: skip
            assert audit.id is not None
            for criterion, rating in zip(
                standard.criteria, ("below", "exceeds", None), strict=False
            ):
                await audit_store.save_rating(
                    session=session, audit_id=audit.id, criterion_id=criterion.id,
                    rating=rating, evidence="seen",
                )  # fmt: skip
            made.append(audit)
        await session.commit()
    drafted = await _check(database, framework)
    assert drafted == before  # drafts count for nothing until submitted

    # One on time, one late (its due date long past).
    async with database.session() as session:
        for audit in made:
            held = await session.get(AuditRequest, audit.id)
            assert held is not None
            await audit_store.submit(
                session=session, audit=held, actor_id=held.auditor_id,
                now=datetime(2024, 1, 20, 12, tzinfo=UTC),
            )  # fmt: skip
        await session.commit()
    submitted = await _check(database, framework)
    assert submitted != before

    # Moderated, then the moderation changed after it was submitted.
    audit_id = made[0].id
    assert audit_id is not None
    async with database.session() as session:
        await add_to_sample(session=session, month="2024-01", audit_ids=[audit_id])
        assert await moderation_store.claim(session=session, audit_id=audit_id, moderator_id=3)
        await session.commit()
    first, second = (c.id for c in standard.criteria[:2])
    for views in ({first: (True, None, ""), second: (False, "meets", "why")},
                  {first: (False, "exceeds", "no"), second: (True, None, "")}):  # fmt: skip
        async with database.session() as session:
            moderation = await moderation_store.moderation_of(session=session, audit_id=audit_id)
            assert moderation is not None
            await moderation_store.save(
                session=session, moderation=moderation, views=views, comment="",
                submit=True, now=datetime(2024, 2, 3, tzinfo=UTC),
            )  # fmt: skip
            await session.commit()
        moderated = await _check(database, framework)
        assert moderated["tallied_moderated_criteria"] != submitted["tallied_moderated_criteria"]
        assert moderated["tallied_moderated_auditors"] != submitted["tallied_moderated_auditors"]

    # Imported from the forms, then imported again with other ratings and another team.
    async with database.session() as session:
        assert (await import_audits(session=session, framework=framework, text=IMPORTED)).ok
        await session.commit()
    imported = await _check(database, framework)
    changed = IMPORTED.replace(
        "Mendip,2000001,Kind,yes,Meets,Below", "Frome,2000001,Kind,yes,Exceeds,"
    )
    async with database.session() as session:
        again = await import_audits(session=session, framework=framework, text=changed)
        assert again.ok
        assert again.updated == 3
        await session.commit()
    reimported = await _check(database, framework)
    assert reimported != imported

    # The retention purge erases words, not ratings: the counts stay as they were.
    async with database.session() as session:
        report = await purge(
            session=session, now=datetime(2030, 1, 1, tzinfo=UTC), retention_months=24,
            dry_run=False,
        )  # fmt: skip
        assert report.audits
        await session.commit()
    assert await _check(database, framework) == reimported


async def test_a_failed_write_leaves_the_tallies_as_they_were(
    database: Database, framework: Framework
) -> None:
    await _history(database, framework)
    before = await _fresh(database)
    async with database.session() as session:
        audit = (
            await session.exec(
                select(AuditRequest).where(
                    AuditRequest.status == "requested", col(AuditRequest.voluntary).is_(False)
                )
            )
        ).first()
        assert audit is not None
        await audit_store.submit(
            session=session, audit=audit, actor_id=audit.auditor_id,
            now=datetime(2024, 1, 1, tzinfo=UTC),
        )  # fmt: skip
        await session.rollback()
    assert await _fresh(database) == before


async def test_the_migration_counts_the_audits_already_held(
    database_url: str, framework: Framework
) -> None:
    command.downgrade(_alembic_config(database_url), "0010")
    old = Database(database_url)
    try:
        await _history(old, framework, tallied=False)
    finally:
        await old.dispose()
    upgrade(database_url)
    database = Database(database_url)
    try:
        async with database.session() as session:
            backfilled = await report_tally.tallies(session=session)
        assert all(backfilled.values())
        assert await _fresh(database) == backfilled
        for scope in SCOPES:
            each, summed = await _both_ways(database, framework, "2023-09", "2024-03", scope)
            assert summed == each, scope.label
    finally:
        await database.dispose()
