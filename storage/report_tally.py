"""Keep the Board's report counts as audits are written: tallies a long report reads.

A whole-council or team report over ten years would otherwise count every rating of every
audit (1.5 million rows). The counts it needs are kept instead, per month, standard, team,
criterion and rating (`TalliedRatings`), per month, standard, kind and team
(`TalliedAudits`) and per moderated pair (`TalliedModeration`), so such a report reads a few
thousand rows.

Every write that changes what an audit counts for calls `untally` before it and `tally`
after it, in the same transaction: each subtracts or adds the audit's contribution as the
database holds it at that moment (submitting an audit, importing audits from earlier forms,
a moderation saved or submitted). The contribution is worked out by the same conditions as
the live counts in storage/report_counts.py, so the two agree by construction; the tests
compare them after each kind of write. `rebuild` counts everything afresh (after a bulk
load; migration 0011 backfills the same way).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import Table, and_, case, delete, exists, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause
from sqlmodel.ext.asyncio.session import AsyncSession

from practice.report import ReportCounts, ReportScope
from storage.models import (
    AuditStatus,
    TalliedAudits,
    TalliedModeratedAuditors,
    TalliedModeratedCriteria,
    TalliedRatings,
    TalliedTeamRatings,
)
from storage.reporting import AUDIT, MODERATION, MODERATION_RATING, RATING

TALLIED_AUDITS: Table = TalliedAudits.__table__  # type: ignore[attr-defined]
TALLIED_RATINGS: Table = TalliedRatings.__table__  # type: ignore[attr-defined]
TALLIED_TEAM_RATINGS: Table = TalliedTeamRatings.__table__  # type: ignore[attr-defined]
TALLIED_MODERATED_CRITERIA: Table = TalliedModeratedCriteria.__table__  # type: ignore[attr-defined]
TALLIED_MODERATED_AUDITORS: Table = TalliedModeratedAuditors.__table__  # type: ignore[attr-defined]
# Audits per statement when tallying many (an import): a bound IN list every database takes.
CHUNK = 500


def _completed() -> Any:
    return and_(AUDIT.c.status == AuditStatus.SUBMITTED, AUDIT.c.submitted_at.is_not(None))


def _audits_counted() -> Select[Any]:
    """Completed audits by month, standard, additional, voluntary, kind, team and rated."""
    rated = exists().where(RATING.c.audit_id == AUDIT.c.id, RATING.c.rating.is_not(None))
    rated_flag = case((rated, True), else_=False)
    grouped = (AUDIT.c.month, AUDIT.c.standard, AUDIT.c.additional, AUDIT.c.voluntary,
               AUDIT.c.kind, AUDIT.c.team, rated_flag)  # fmt: skip
    return select(*grouped, func.count()).where(_completed()).group_by(*grouped)


def _ratings_counted(*, by_team: bool) -> Select[Any]:
    """Ratings of completed requested audits by month, standard, additional, criterion, rating."""
    grouped = (*((AUDIT.c.team,) if by_team else ()), AUDIT.c.month, AUDIT.c.standard,
               AUDIT.c.additional, RATING.c.criterion_id, RATING.c.rating)  # fmt: skip
    return (
        select(*grouped, func.count())
        .select_from(AUDIT.join(RATING, RATING.c.audit_id == AUDIT.c.id))
        .where(_completed(), AUDIT.c.voluntary.is_(False), RATING.c.rating.is_not(None))
        .group_by(*grouped)
    )


@dataclass(frozen=True)
class ModeratedRatings:
    """Each submitted moderation's ratings beside the auditor's own, as columns to count by."""

    joined: FromClause
    auditors: ColumnElement[Any]
    moderators: ColumnElement[Any]
    # Both ratings given, on a moderation submitted.
    given: ColumnElement[bool]


def moderated_ratings(audits: FromClause = AUDIT) -> ModeratedRatings:
    """Return the moderated pairs of ratings of these audits (every audit by default)."""
    auditors_rating = RATING.alias("auditors_rating")
    # A moderator who agreed left their own rating blank: theirs is the auditor's.
    moderators = case(
        (MODERATION_RATING.c.agrees.is_(True), auditors_rating.c.rating),
        else_=MODERATION_RATING.c.rating,
    )
    joined = (
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
    given = and_(
        MODERATION.c.submitted_at.is_not(None),
        auditors_rating.c.rating.is_not(None),
        moderators.is_not(None),
    )
    return ModeratedRatings(joined, auditors_rating.c.rating, moderators, given)


def _moderation_counted(by: str) -> Select[Any]:
    """Moderated pairs by month, team, criterion or auditor, and the two ratings."""
    pairs = moderated_ratings()
    who = MODERATION_RATING.c.criterion_id if by == "criterion" else AUDIT.c.auditor_id
    grouped = (AUDIT.c.month, AUDIT.c.team, who, pairs.auditors, pairs.moderators)
    return (
        select(*grouped, func.count())
        .select_from(pairs.joined)
        .where(pairs.given)
        .group_by(*grouped)
    )


# Each tally, the query that counts it, its key columns and its count column.
TALLIES: tuple[tuple[Table, Any, tuple[str, ...], str], ...] = (
    (TALLIED_AUDITS, _audits_counted,
     ("month", "standard", "additional", "voluntary", "kind", "team", "rated"), "audits"),
    (TALLIED_RATINGS, partial(_ratings_counted, by_team=False),
     ("month", "standard", "additional", "criterion_id", "rating"), "answers"),
    (TALLIED_TEAM_RATINGS, partial(_ratings_counted, by_team=True),
     ("team", "month", "standard", "additional", "criterion_id", "rating"), "answers"),
    (TALLIED_MODERATED_CRITERIA, partial(_moderation_counted, "criterion"),
     ("month", "team", "criterion_id", "auditor_rating", "moderator_rating"), "pairs"),
    (TALLIED_MODERATED_AUDITORS, partial(_moderation_counted, "auditor"),
     ("month", "team", "auditor_id", "auditor_rating", "moderator_rating"), "pairs"),
)  # fmt: skip


async def tally(*, session: AsyncSession, audit_ids: Collection[int]) -> None:
    """Add the audits' counts, as the database (with this session's changes) now holds them."""
    await _apply(session, audit_ids, +1)


async def untally(*, session: AsyncSession, audit_ids: Collection[int]) -> None:
    """Take away the audits' counts, as the database (with this session's changes) holds them.

    Call it before changing what the audits count for, and `tally` after.
    """
    await _apply(session, audit_ids, -1)


async def _apply(session: AsyncSession, audit_ids: Collection[int], sign: int) -> None:
    ids = sorted(set(audit_ids))
    if not ids:
        return
    await session.flush()
    connection = await session.connection()
    for table, counted, keys, count in TALLIES:
        changes: dict[tuple[Any, ...], int] = {}
        for start in range(0, len(ids), CHUNK):
            chosen = ids[start : start + CHUNK]
            for *key, number in await connection.execute(counted().where(AUDIT.c.id.in_(chosen))):
                changes[tuple(key)] = changes.get(tuple(key), 0) + sign * number
        if not changes:
            continue
        # In the keys' order, so that two writers lock the rows they share in the same order.
        rows = [
            {**dict(zip(keys, key, strict=True)), count: number}
            for key, number in sorted(changes.items(), key=lambda item: _order(item[0]))
        ]
        await connection.execute(_upsert(connection.dialect.name, table, keys, count), rows)


def _order(key: Sequence[Any]) -> tuple[str, ...]:
    return tuple(str(part) for part in key)


def _upsert(dialect: str, table: Table, keys: Sequence[str], count: str) -> Any:
    """Return INSERT … ON CONFLICT (keys) DO UPDATE SET count = count + the new count."""
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    return insert.on_conflict_do_update(
        index_elements=list(keys), set_={count: table.c[count] + insert.excluded[count]}
    )


async def rebuild(*, session: AsyncSession) -> None:
    """Count every audit afresh into the tallies (after rows were loaded in bulk)."""
    connection = await session.connection()
    for table, counted, keys, count in TALLIES:
        await connection.execute(delete(table))
        await connection.execute(table.insert().from_select([*keys, count], counted()))
        if connection.dialect.name == "postgresql":
            # Their size changed at a stroke: tell the planner now, not at autovacuum's turn.
            await connection.execute(text(f"ANALYZE {table.name}"))


async def tallies(*, session: AsyncSession) -> dict[str, dict[tuple[Any, ...], int]]:
    """Return every tally's non-zero counts by key (for checks and tests)."""
    connection = await session.connection()
    found: dict[str, dict[tuple[Any, ...], int]] = {}
    for table, _, keys, count in TALLIES:
        rows = await connection.execute(
            select(*(table.c[key] for key in keys), table.c[count]).where(table.c[count] != 0)
        )
        found[table.name] = {tuple(row[:-1]): row[-1] for row in rows}
    return found


def tallied(scope: ReportScope) -> bool:
    """Return whether the tallies can count a report of this scope (every audit, or teams)."""
    return (
        scope.auditor_id is None and scope.subject_id is None and scope.person_id is None
        and scope.people is None and not scope.moderation_sample
    )  # fmt: skip


async def count_from_tallies(
    connection: Any,
    counts: ReportCounts,
    first_month: str,
    last_month: str,
    teams: frozenset[str] | None,
) -> None:
    """Count the audits, ratings and moderated pairs of the months (and teams) from the tallies."""

    def chosen(table: Table, count: str) -> list[Any]:
        conditions = [
            table.c.month >= first_month, table.c.month <= last_month, table.c[count] != 0
        ]  # fmt: skip
        if teams is not None:
            conditions.append(table.c.team.in_(sorted(teams)))
        return conditions

    table = TALLIED_AUDITS
    grouped: tuple[Any, ...] = (table.c.month, table.c.standard, table.c.additional,
                                table.c.voluntary, table.c.kind, table.c.rated)  # fmt: skip
    for month, standard, additional, voluntary, kind, rated, audits in await connection.execute(
        select(*grouped, func.sum(table.c.audits)).where(*chosen(table, "audits"))
        .group_by(*grouped)
    ):  # fmt: skip
        if voluntary:
            counts.voluntary[standard] += audits
            continue
        group = counts.group(month, standard, bool(additional))
        group.kinds[kind] += audits
        if rated:
            group.rated += audits
    table = TALLIED_RATINGS if teams is None else TALLIED_TEAM_RATINGS
    grouped = (table.c.month, table.c.standard, table.c.additional, table.c.criterion_id,
               table.c.rating)  # fmt: skip
    for month, standard, additional, criterion_id, rating, answers in await connection.execute(
        select(*grouped, func.sum(table.c.answers)).where(*chosen(table, "answers"))
        .group_by(*grouped)
    ):  # fmt: skip
        counts.group(month, standard, bool(additional)).ratings[(criterion_id, rating)] += answers
    table = TALLIED_MODERATED_CRITERIA
    grouped = (table.c.criterion_id, table.c.auditor_rating, table.c.moderator_rating)
    for criterion_id, auditors, moderated, pairs in await connection.execute(
        select(*grouped, func.sum(table.c.pairs)).where(*chosen(table, "pairs"))
        .group_by(*grouped)
    ):  # fmt: skip
        counts.moderated_criteria[(criterion_id, auditors, moderated)] += pairs
    table = TALLIED_MODERATED_AUDITORS
    grouped = (table.c.auditor_id, table.c.auditor_rating, table.c.moderator_rating)
    for auditor_id, auditors, moderated, pairs in await connection.execute(
        select(*grouped, func.sum(table.c.pairs)).where(*chosen(table, "pairs"))
        .group_by(*grouped)
    ):  # fmt: skip
        counts.moderated_auditors[(auditor_id, auditors, moderated)] += pairs
