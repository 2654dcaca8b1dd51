"""Count a report's audits in the database: only the counts, the quotes and the actions come back.

A report's figures are counts (ratings per month, standard, criterion and rating; completed
audits per kind; requested audits per role, team and timeliness; moderated pairs per
criterion and auditor), so the database counts them with GROUP BY and the report's scope
(teams, auditor, audited worker, people, the moderation sample) as WHERE clauses. However
long the period, what reaches Python is a few thousand rows of counts, not every audit and
rating: ten years of history take as little memory as one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, String, and_, case, cast, exists, func, literal, or_, select
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause
from sqlmodel.ext.asyncio.session import AsyncSession

from practice.report import ActionFacts, FeedbackQuote, ReportCounts, ReportScope
from storage.models import AuditStatus
from storage.report_tally import count_from_tallies, moderated_ratings, tallied
from storage.reporting import (
    AUDIT,
    FEEDBACK,
    MODERATION_RATING,
    RATING,
    SAMPLE,
    STAFF,
    actions_and_names,
)

SECONDS_A_DAY = 24 * 3600


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
    # Every audit has its auditor on the roster (a foreign key), so only the count by role
    # joins the roster.
    audits: FromClause = AUDIT
    if scope.moderation_sample:
        audits = AUDIT.outerjoin(SAMPLE, SAMPLE.c.audit_id == AUDIT.c.id)
    in_scope = _in_scope(scope, first_month, last_month)
    completed = and_(AUDIT.c.status == AuditStatus.SUBMITTED, AUDIT.c.submitted_at.is_not(None))
    counts = ReportCounts()

    if tallied(scope):
        # Every audit, or some teams': the counts kept as audits were written.
        await count_from_tallies(connection, counts, first_month, last_month, scope.teams)
    else:
        await _count_audits(connection, counts, audits, in_scope, completed)
    await _count_timeliness(connection, counts, audits, in_scope, completed, zone, as_of)
    if not tallied(scope):
        await _count_moderation(connection, counts, audits, in_scope)
    facts = CountedFacts(counts)
    await _read_quotes(connection, facts, audits, in_scope)
    facts.actions, facts.names = await actions_and_names(connection)
    return facts


async def _count_audits(
    connection: Any,
    counts: ReportCounts,
    audits: Any,
    in_scope: ColumnElement[bool],
    completed: ColumnElement[bool],
) -> None:
    """Count the completed audits by kind, those rated, and their ratings (people's scopes)."""
    grouped = (AUDIT.c.month, AUDIT.c.standard, AUDIT.c.additional, AUDIT.c.voluntary,
               AUDIT.c.kind)  # fmt: skip
    for month, standard, additional, voluntary, kind, audits_done in await connection.execute(
        select(*grouped, func.count()).select_from(audits).where(in_scope, completed)
        .group_by(*grouped)
    ):  # fmt: skip
        if voluntary:
            counts.voluntary[standard] += audits_done
        else:
            counts.group(month, standard, bool(additional)).kinds[kind] += audits_done

    # An audit counts in its table's number of audits if it has a rating. Asked in WHERE (not
    # as a column) so that PostgreSQL can answer with one semi-join, not a probe per audit.
    rated = exists().where(RATING.c.audit_id == AUDIT.c.id, RATING.c.rating.is_not(None))
    grouped = (AUDIT.c.month, AUDIT.c.standard, AUDIT.c.additional)  # type: ignore[assignment]
    for month, standard, additional, audits_rated in await connection.execute(
        select(*grouped, func.count()).select_from(audits)
        .where(in_scope, completed, AUDIT.c.voluntary.is_(False), rated)
        .group_by(*grouped)
    ):  # fmt: skip
        counts.group(month, standard, bool(additional)).rated += audits_rated

    grouped = (AUDIT.c.month, AUDIT.c.standard, AUDIT.c.additional, RATING.c.criterion_id,
               RATING.c.rating)  # fmt: skip
    for month, standard, additional, criterion_id, rating, answers in await connection.execute(
        select(*grouped, func.count())
        .select_from(audits.join(RATING, RATING.c.audit_id == AUDIT.c.id))
        .where(in_scope, completed, AUDIT.c.voluntary.is_(False), RATING.c.rating.is_not(None))
        .group_by(*grouped)
    ):
        counts.group(month, standard, bool(additional)).ratings[(criterion_id, rating)] += answers


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
    due_dates = [
        due_on
        for (due_on,) in await connection.execute(
            select(AUDIT.c.due_on).select_from(audits).where(in_scope).distinct()
        )
    ]
    if not due_dates:
        return
    cutoff = _due_date_ends(connection.dialect.name, due_dates, zone)
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
        .select_from(audits.join(STAFF, STAFF.c.id == AUDIT.c.auditor_id))
        .where(in_scope, AUDIT.c.voluntary.is_(False), AUDIT.c.source != "import")
        .group_by(STAFF.c.role_code, AUDIT.c.team, when)
    ):
        counts.timeliness[(role, team or "", timeliness)] += audits_requested


def _due_date_ends(dialect: str, due_dates: list[date], zone: ZoneInfo) -> ColumnElement[Any]:
    """Return, for an audit, the moment (UTC) its due date ends in the council's time zone."""
    # On time is submitted on or before the due date where the council is: before the next
    # local midnight, which is the due date's UTC midnight plus 24 hours less the zone's
    # offset that night. Offsets are few (winter and summer time), so the due dates are
    # grouped by theirs and the end is worked out in SQL as the due date plus a fixed time.
    by_shift: dict[int, list[date]] = defaultdict(list)
    for due_on in due_dates:
        shift = _next_midnight(due_on, zone) - datetime.combine(due_on, time(0), tzinfo=UTC)
        by_shift[int(shift.total_seconds())].append(due_on)
    *others, last = sorted(by_shift)
    if not others:
        return _due_date_plus(dialect, last)
    return case(
        *((AUDIT.c.due_on.in_(by_shift[shift]), _due_date_plus(dialect, shift))
          for shift in others),
        else_=_due_date_plus(dialect, last),
    )  # fmt: skip


def _due_date_plus(dialect: str, seconds: int) -> ColumnElement[Any]:
    if dialect == "sqlite":
        # Moments are stored as text, "YYYY-MM-DD HH:MM:SS.ffffff" in UTC, which compares
        # rightly with "YYYY-MM-DD HH:MM:SS". Where the zone is at UTC or ahead of it (as
        # London always is) the end falls within the due date's UTC day, so it is the due
        # date's text and the time ("24:00:00" sorts after every moment of that day and before
        # the next day's): text joined per audit, cheaper than datetime() per audit.
        if 0 < seconds <= SECONDS_A_DAY:
            hours, rest = divmod(seconds, 3600)
            clock = f" {hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
            return cast(AUDIT.c.due_on, String).concat(clock)
        return func.datetime(AUDIT.c.due_on, f"{seconds:+d} seconds")
    # The due date plus the time is a wall time in UTC: made a timestamptz as such.
    return func.timezone("UTC", AUDIT.c.due_on + timedelta(seconds=seconds))


def _next_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)


async def _count_moderation(
    connection: Any, counts: ReportCounts, audits: Any, in_scope: ColumnElement[bool]
) -> None:
    """Count the moderated pairs of ratings by auditor, criterion and the two ratings."""
    moderated_pairs = moderated_ratings(audits)
    grouped = (AUDIT.c.auditor_id, MODERATION_RATING.c.criterion_id, moderated_pairs.auditors,
               moderated_pairs.moderators)  # fmt: skip
    for auditor_id, criterion_id, auditors, moderated, pairs in await connection.execute(
        select(*grouped, func.count())
        .select_from(moderated_pairs.joined)
        .where(in_scope, moderated_pairs.given)
        .group_by(*grouped)
    ):
        counts.moderated(auditor_id, criterion_id, auditors, moderated, pairs)


async def _read_quotes(
    connection: Any, facts: CountedFacts, audits: Any, in_scope: ColumnElement[bool]
) -> None:
    """Read the quotes marked suitable for the report (few: older words are erased)."""
    below = exists().where(RATING.c.audit_id == AUDIT.c.id, RATING.c.rating == "below")
    for audit_id, month, standard, team, text, additional, rated_below in await connection.execute(
        select(AUDIT.c.id, AUDIT.c.month, AUDIT.c.standard, AUDIT.c.team,
               FEEDBACK.c.what_they_said, AUDIT.c.additional, below)
        .select_from(audits.join(FEEDBACK, FEEDBACK.c.audit_id == AUDIT.c.id))
        .where(
            in_scope,
            AUDIT.c.status == AuditStatus.SUBMITTED,
            FEEDBACK.c.suitable_for_report.is_(True),
            FEEDBACK.c.what_they_said != "",
        )
        .order_by(AUDIT.c.month, AUDIT.c.id)
    ):  # fmt: skip
        facts.feedback.append(
            FeedbackQuote(audit_id, month, standard, team, text, additional, bool(rated_below))
        )
