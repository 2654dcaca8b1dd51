"""Count a report's audits in the database: only the counts, the quotes and the actions come back.

A report's figures are counts (ratings per month, standard, criterion and rating; completed
audits per kind; requested audits per role, team and timeliness; moderated pairs per
criterion and auditor), so the database counts them with GROUP BY and the report's scope
(teams, auditor, audited worker, people, the moderation sample) as WHERE clauses. However
long the period, what reaches Python is a few thousand rows of counts, not every audit and
rating: ten years of history take as little memory as one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, and_, case, exists, func, literal, or_, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel.ext.asyncio.session import AsyncSession

from practice.report import ActionFacts, FeedbackQuote, ReportCounts, ReportScope
from storage.models import AuditStatus, UTCDateTime
from storage.reporting import (
    ACTION,
    AUDIT,
    FEEDBACK,
    MODERATION,
    MODERATION_RATING,
    RATING,
    SAMPLE,
    STAFF,
)


@dataclass
class CountedFacts:
    """What a report needs from the database: its counts, quotes, actions and names."""

    counts: ReportCounts
    feedback: list[FeedbackQuote] = field(default_factory=list)
    actions: list[ActionFacts] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)


async def counted_facts(
    *,
    session: AsyncSession,
    zone: ZoneInfo,
    first_month: str,
    last_month: str,
    scope: ReportScope,
    as_of: date | None,
) -> CountedFacts:
    """Return the counts of the scope's audits of the months first..last, and what else shows."""
    connection = await session.connection()
    audits = AUDIT.join(STAFF, STAFF.c.id == AUDIT.c.auditor_id)
    if scope.moderation_sample:
        audits = audits.outerjoin(SAMPLE, SAMPLE.c.audit_id == AUDIT.c.id)
    in_scope = _in_scope(scope, first_month, last_month)
    completed = and_(AUDIT.c.status == AuditStatus.SUBMITTED, AUDIT.c.submitted_at.is_not(None))
    counts = ReportCounts()

    rated = exists().where(RATING.c.audit_id == AUDIT.c.id, RATING.c.rating.is_not(None))
    grouped = (AUDIT.c.month, AUDIT.c.standard, AUDIT.c.additional, AUDIT.c.voluntary,
               AUDIT.c.kind)  # fmt: skip
    for (
        month,
        standard,
        additional,
        voluntary,
        kind,
        audits_done,
        audits_rated,
    ) in await connection.execute(
        select(*grouped, func.count(), func.sum(case((rated, 1), else_=0)))
        .select_from(audits)
        .where(in_scope, completed)
        .group_by(*grouped)
    ):
        if voluntary:
            counts.voluntary[standard] += audits_done
            continue
        group = counts.group(month, standard, bool(additional))
        group.kinds[kind] += audits_done
        group.rated += int(audits_rated or 0)

    grouped = (AUDIT.c.month, AUDIT.c.standard, AUDIT.c.additional, RATING.c.criterion_id,
               RATING.c.rating)  # fmt: skip
    for month, standard, additional, criterion_id, rating, answers in await connection.execute(
        select(*grouped, func.count())
        .select_from(audits.join(RATING, RATING.c.audit_id == AUDIT.c.id))
        .where(in_scope, completed, AUDIT.c.voluntary.is_(False), RATING.c.rating.is_not(None))
        .group_by(*grouped)
    ):
        counts.group(month, standard, bool(additional)).ratings[(criterion_id, rating)] += answers

    await _count_timeliness(connection, counts, audits, in_scope, completed, zone, as_of)
    await _count_moderation(connection, counts, audits, in_scope)
    facts = CountedFacts(counts)
    await _read_quotes(connection, facts, audits, in_scope)
    for action in await connection.execute(select(ACTION).order_by(ACTION.c.id)):
        facts.actions.append(
            ActionFacts(
                id=action.id,
                theme=action.theme,
                action=action.action,
                owner=action.owner,
                due_on=action.due_on,
                status=action.status,
                logged_on=action.logged_on,
                closed_on=action.closed_on,
            )
        )
    for staff_id, name in await connection.execute(select(STAFF.c.id, STAFF.c.name)):
        facts.names[staff_id] = name
    return facts


def _in_scope(scope: ReportScope, first_month: str, last_month: str) -> ColumnElement[bool]:
    """Return the WHERE clause of `ReportScope.includes`, for the months first..last."""
    conditions: list[ColumnElement[bool]] = [
        AUDIT.c.month >= first_month,
        AUDIT.c.month <= last_month,
    ]
    if scope.teams is not None:
        conditions.append(AUDIT.c.team.in_(sorted(scope.teams)))
    if scope.auditor_id is not None:
        conditions.append(AUDIT.c.auditor_id == scope.auditor_id)
    if scope.subject_id is not None:
        conditions.append(AUDIT.c.subject_worker_id == scope.subject_id)
    people: list[ColumnElement[bool]] = []
    if scope.people is not None:
        chosen = sorted(scope.people)
        people.append(or_(AUDIT.c.auditor_id.in_(chosen), AUDIT.c.subject_worker_id.in_(chosen)))
    if scope.person_id is not None:
        people.append(
            or_(
                AUDIT.c.auditor_id == scope.person_id,
                AUDIT.c.subject_worker_id == scope.person_id,
            )
        )
    if scope.moderation_sample:
        # A moderator also sees the audits drawn for moderation, whoever did them.
        conditions.append(or_(SAMPLE.c.audit_id.is_not(None), and_(literal(True), *people)))
    else:
        conditions.extend(people)
    return and_(*conditions)


async def _count_timeliness(
    connection: Any,
    counts: ReportCounts,
    audits: Any,
    in_scope: ColumnElement[bool],
    completed: ColumnElement[bool],
    zone: ZoneInfo,
    as_of: date | None,
) -> None:
    """Count the requested audits (imported ones aside) by role, team and timeliness."""
    # On time: submitted on or before the due date in the council's time zone, that is before
    # the next day's local midnight. A few due dates cover a period, so each one's midnight
    # (in UTC, as submitted_at is stored) is worked out here and joined to the audits.
    due_dates = [
        due_on
        for (due_on,) in await connection.execute(
            select(AUDIT.c.due_on).select_from(audits).where(in_scope).distinct()
        )
    ]
    if not due_dates:
        return
    cutoff = case(
        {due_on: literal(_next_midnight(due_on, zone), UTCDateTime()) for due_on in due_dates},
        value=AUDIT.c.due_on,
    )
    still_open = (
        [(AUDIT.c.due_on >= literal(as_of, Date), "still_open")] if as_of is not None else []
    )
    when = case(
        (and_(completed, AUDIT.c.submitted_at < cutoff), "on_time"),
        (completed, "late"),
        *still_open,
        else_="not_done",
    ).label("timeliness")
    for role, team, timeliness, audits_requested in await connection.execute(
        select(STAFF.c.role_code, AUDIT.c.team, when, func.count())
        .select_from(audits)
        .where(in_scope, AUDIT.c.voluntary.is_(False), AUDIT.c.source != "import")
        .group_by(STAFF.c.role_code, AUDIT.c.team, when)
    ):
        counts.timeliness[(role, team or "", timeliness)] += audits_requested


def _next_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)


async def _count_moderation(
    connection: Any, counts: ReportCounts, audits: Any, in_scope: ColumnElement[bool]
) -> None:
    """Count the moderated pairs of ratings by auditor, criterion and the two ratings."""
    auditors_rating = RATING.alias("auditors_rating")
    # A moderator who agreed left their own rating blank: theirs is the auditor's.
    moderators = case(
        (MODERATION_RATING.c.agrees.is_(True), auditors_rating.c.rating),
        else_=MODERATION_RATING.c.rating,
    )
    grouped = (AUDIT.c.auditor_id, MODERATION_RATING.c.criterion_id, auditors_rating.c.rating,
               moderators)  # fmt: skip
    for auditor_id, criterion_id, auditors, moderated, pairs in await connection.execute(
        select(*grouped, func.count())
        .select_from(
            audits.join(MODERATION, MODERATION.c.audit_id == AUDIT.c.id)
            .join(MODERATION_RATING, MODERATION_RATING.c.audit_id == AUDIT.c.id)
            .join(
                auditors_rating,
                and_(
                    auditors_rating.c.audit_id == AUDIT.c.id,
                    auditors_rating.c.criterion_id == MODERATION_RATING.c.criterion_id,
                ),
            )
        )
        .where(
            in_scope,
            MODERATION.c.submitted_at.is_not(None),
            auditors_rating.c.rating.is_not(None),
            moderators.is_not(None),
        )
        .group_by(*grouped)
    ):
        counts.moderation[(auditor_id, criterion_id, auditors, moderated)] += pairs


async def _read_quotes(
    connection: Any, facts: CountedFacts, audits: Any, in_scope: ColumnElement[bool]
) -> None:
    """Read the quotes marked suitable for the report (few: older words are erased)."""
    for audit_id, month, standard, team, text, additional in await connection.execute(
        select(AUDIT.c.id, AUDIT.c.month, AUDIT.c.standard, AUDIT.c.team,
               FEEDBACK.c.what_they_said, AUDIT.c.additional)
        .select_from(audits.join(FEEDBACK, FEEDBACK.c.audit_id == AUDIT.c.id))
        .where(
            in_scope,
            AUDIT.c.status == AuditStatus.SUBMITTED,
            FEEDBACK.c.suitable_for_report.is_(True),
            FEEDBACK.c.what_they_said != "",
        )
        .order_by(AUDIT.c.month, AUDIT.c.id)
    ):  # fmt: skip
        facts.feedback.append(FeedbackQuote(audit_id, month, standard, team, text, additional))
