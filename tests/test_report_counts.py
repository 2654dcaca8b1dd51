"""The database counts a report's figures exactly as the report counted every audit itself.

A made-up history with the awkward cases (submissions either side of local midnight on the
due date in summer and winter, drafts, blank ratings, imported, voluntary and additional
audits, moderations finished or not, agreeing or not) is reported both ways, for every kind
of scope, on SQLite and PostgreSQL: the two reports must be equal.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from practice.framework import Framework
from practice.report import Report, ReportScope, build_report, counted_report, timeliness
from storage import report_tally
from storage.database import Database
from storage.models import (
    AuditRequest,
    CriterionRating,
    FeedbackCall,
    LearningAction,
    Moderation,
    ModerationRating,
    ModerationSample,
    Staff,
)
from storage.report_counts import counted_facts
from storage.reporting import report_facts

LONDON = ZoneInfo("Europe/London")
AS_OF = date(2024, 3, 10)
MONTHS = ("2023-09", "2023-10", "2023-11", "2023-12", "2024-01", "2024-02", "2024-03")
TEAMS = ("Mendip", "Taunton", "Frome")
ROLES = ("SW", "OT", "SVM", "PDAP")
RATINGS = ("below", "meets", "exceeds", "not_applicable", None)


def _due(month: str) -> date:
    year, number = (int(part) for part in month.split("-"))
    return date(year, number, 25)


def _submitted(rng: random.Random, due_on: date) -> datetime:
    """Return a moment near the due date's local midnight, often either side of it."""
    midnight = datetime(due_on.year, due_on.month, due_on.day, tzinfo=LONDON) + timedelta(days=1)
    offset = rng.choice(
        [-timedelta(days=5), -timedelta(minutes=30), -timedelta(microseconds=1), timedelta(0),
         timedelta(minutes=30), timedelta(hours=1, minutes=1), timedelta(days=3)]
    )  # fmt: skip
    return (midnight + offset).astimezone(UTC)


async def _history(
    database: Database, framework: Framework, seed: int = 16, *, tallied: bool = True
) -> None:
    """Write the history's rows; then count every audit into the reports' tallies, unless
    the database is from before they were kept."""
    rng = random.Random(seed)
    async with database.session() as session:
        staff = [
            Staff(email=f"p{i}@example.com", name=f"Person {i}", role_code=rng.choice(ROLES),
                  team=rng.choice(TEAMS))
            for i in range(12)
        ]  # fmt: skip
        session.add_all(staff)
        await session.flush()
        ids = [person.id for person in staff]
        made: list[int] = []
        for month in MONTHS:
            for _ in range(30):
                standard = framework.standards[rng.randrange(3)]
                due_on = _due(month) + timedelta(days=rng.choice([0, 0, 3]))
                status = rng.choice(["submitted"] * 5 + ["requested", "in_progress"])
                submitted = _submitted(rng, due_on) if status == "submitted" else None
                if status == "submitted" and rng.random() < 0.05:
                    submitted = None  # submitted, but the moment was lost: not completed
                voluntary = rng.random() < 0.1
                audit = AuditRequest(
                        month=month, standard=standard.number,
                        kind=rng.choice(["sampled", "self", "peer"]), framework_version="t",
                        auditor_id=rng.choice(ids),
                        subject_worker_id=rng.choice([*ids, None]),
                        status=status, due_on=due_on, voluntary=voluntary,
                        additional=not voluntary and rng.random() < 0.15,
                        team=rng.choice([*TEAMS, ""]),
                        source="import" if rng.random() < 0.1 else "bot",
                        submitted_at=submitted,
                )  # fmt: skip
                session.add(audit)
                await session.flush()
                assert audit.id is not None
                audit_id = audit.id
                made.append(audit_id)
                rated = rng.random() < 0.9
                for criterion in standard.criteria:
                    if rated and rng.random() < 0.95:
                        session.add(
                            CriterionRating(audit_id=audit_id, criterion_id=criterion.id,
                                            rating=rng.choice(RATINGS))
                        )  # fmt: skip
                if rng.random() < 0.5:
                    session.add(
                        FeedbackCall(audit_id=audit_id, what_they_said=rng.choice(["", f"q{audit_id}"]),
                                     suitable_for_report=rng.random() < 0.7)
                    )  # fmt: skip
                if status == "submitted" and rng.random() < 0.4:
                    session.add(ModerationSample(audit_id=audit_id, month=month))
                    await session.flush()
                    session.add(
                        Moderation(
                            audit_id=audit_id, moderator_id=rng.choice(ids),
                            submitted_at=submitted if rng.random() < 0.8 else None,
                        )
                    )  # fmt: skip
                    await session.flush()
                    for criterion in standard.criteria:
                        agrees = rng.choice([True, True, False, None])
                        session.add(
                            ModerationRating(audit_id=audit_id, criterion_id=criterion.id,
                                             agrees=agrees,
                                             rating=None if agrees else rng.choice(RATINGS))
                        )  # fmt: skip
        session.add(
            LearningAction(theme="Standard 1", action="Do better", owner="Board",
                           logged_on=date(2023, 10, 1), status="open")
        )  # fmt: skip
        if tallied:
            await report_tally.tally(session=session, audit_ids=made)
        await session.commit()


SCOPES = [
    ReportScope(),
    ReportScope("Mendip", teams=frozenset({"Mendip"})),
    ReportScope("Two teams", teams=frozenset({"Mendip", "Frome"})),
    ReportScope("No team", teams=frozenset({""})),
    ReportScope("Auditor", auditor_id=3),
    ReportScope("Subject", subject_id=4),
    ReportScope("Person", person_id=5),
    ReportScope("People", people=frozenset({1, 2, 7})),
    ReportScope("Nobody", people=frozenset()),
    ReportScope("Moderator", people=frozenset({2}), moderation_sample=True),
    ReportScope("Moderator, team", teams=frozenset({"Taunton"}), moderation_sample=True,
                person_id=6),
]  # fmt: skip


async def _both_ways(
    database: Database,
    framework: Framework,
    first: str,
    last: str,
    scope: ReportScope,
    zone: ZoneInfo = LONDON,
) -> tuple[Report, Report]:
    async with database.session() as session:
        facts = await report_facts(
            session=session, framework=framework, zone=zone, first_month=first,
            last_month=last,
        )  # fmt: skip
        counted = await counted_facts(
            session=session, zone=zone, first_month=first, last_month=last, scope=scope,
            as_of=AS_OF,
        )  # fmt: skip
    each = build_report(
        framework, first_month=first, last_month=last, audits=facts.audits,
        feedback=facts.feedback, moderation=facts.moderation, actions=facts.actions,
        scope=scope, as_of=AS_OF,
    )  # fmt: skip
    summed = counted_report(
        framework, first_month=first, last_month=last, counts=counted.counts,
        feedback=counted.feedback, actions=counted.actions, scope=scope,
    )  # fmt: skip
    assert counted.names == facts.names
    return each, summed


@pytest.mark.parametrize("scope", SCOPES, ids=[scope.label for scope in SCOPES])
async def test_the_database_counts_as_the_report_did(
    database: Database, framework: Framework, scope: ReportScope
) -> None:
    await _history(database, framework)
    for first, last in (("2023-09", "2024-03"), ("2023-11", "2023-11"), ("2025-01", "2025-12")):
        each, summed = await _both_ways(database, framework, first, last, scope)
        assert summed == each, (scope.label, first, last)
    # The history has something to count, in every way the report counts it.
    whole, _ = await _both_ways(database, framework, "2023-09", "2024-03", ReportScope())
    assert whole.tables
    assert whole.feedback
    assert whole.moderation
    assert whole.moderation_overall
    assert {"on_time", "late"} <= {
        timeliness(d, _due("2023-09"), AS_OF) for d in (date(2023, 9, 25), date(2023, 9, 26))
    }
    by_role = whole.completion_by_role
    assert sum(row.late for row in by_role)
    assert sum(row.on_time for row in by_role)
    assert sum(row.not_done for row in by_role)
    assert sum(row.still_open for row in by_role)
    assert whole.voluntary_completed
    assert any(row.additional for row in whole.completed)


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/New_York", "Pacific/Kiritimati"])
async def test_the_due_date_ends_at_midnight_where_the_council_is(
    database: Database, framework: Framework, zone: str
) -> None:
    # Ahead of UTC by hours and minutes, behind it, and fourteen hours ahead: on time is
    # worked out from the due date's end in the zone, whichever way the database does it.
    await _history(database, framework)
    for scope in SCOPES[:2]:
        each, summed = await _both_ways(
            database, framework, "2023-09", "2024-03", scope, ZoneInfo(zone)
        )
        assert summed == each, (zone, scope.label)


def test_timeliness_reads_the_due_date_and_the_day_the_report_is_made() -> None:
    due = date(2024, 1, 25)
    assert timeliness(date(2024, 1, 25), due, None) == "on_time"
    assert timeliness(date(2024, 1, 26), due, None) == "late"
    assert timeliness(None, due, date(2024, 1, 25)) == "still_open"
    assert timeliness(None, due, date(2024, 1, 26)) == "not_done"
    assert timeliness(None, due, None) == "not_done"
