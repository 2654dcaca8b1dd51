"""Read the facts the Board's report is built from, for a range of months, in a few queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from practice.framework import Framework
from practice.report import ActionFacts, AuditFacts, FeedbackQuote, ModerationPair
from storage.models import (
    AuditRequest,
    AuditStatus,
    CriterionRating,
    FeedbackCall,
    LearningAction,
    Moderation,
    ModerationRating,
    ModerationSample,
    Staff,
)

AUDIT = AuditRequest.__table__  # type: ignore[attr-defined]
RATING = CriterionRating.__table__  # type: ignore[attr-defined]
FEEDBACK = FeedbackCall.__table__  # type: ignore[attr-defined]
MODERATION = Moderation.__table__  # type: ignore[attr-defined]
MODERATION_RATING = ModerationRating.__table__  # type: ignore[attr-defined]
SAMPLE = ModerationSample.__table__  # type: ignore[attr-defined]
STAFF = Staff.__table__  # type: ignore[attr-defined]
ACTION = LearningAction.__table__  # type: ignore[attr-defined]
# ASCII's unit separator: between a criterion's id and its rating, and between criteria.
RATINGS_SEPARATOR = "\x1f"


@dataclass
class ReportFacts:
    """Everything a report for some months needs, and the names it may show."""

    audits: list[AuditFacts] = field(default_factory=list)
    feedback: list[FeedbackQuote] = field(default_factory=list)
    moderation: list[ModerationPair] = field(default_factory=list)
    actions: list[ActionFacts] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)


async def report_facts(
    *,
    session: AsyncSession,
    framework: Framework,
    zone: ZoneInfo,
    first_month: str,
    last_month: str,
) -> ReportFacts:
    """Return the audits of the months first..last with their ratings, quotes and moderation."""
    connection = await session.connection()
    in_range = and_(AUDIT.c.month >= first_month, AUDIT.c.month <= last_month)
    facts = ReportFacts()

    # Each audit's ratings come folded into its own row ("1.1<US>meets<US>1.2<US>below"),
    # fetched through the rating index audit by audit: one row per audit instead of one per
    # rating, and PostgreSQL no longer scans every rating ever made for a year's report.
    ratings = (
        select(
            func.aggregate_strings(
                RATING.c.criterion_id + RATINGS_SEPARATOR + RATING.c.rating, RATINGS_SEPARATOR
            )
        )
        .where(RATING.c.audit_id == AUDIT.c.id, RATING.c.rating.is_not(None))
        .scalar_subquery()
    )
    # Rows are unpacked by position: reading the columns of a year's 23,000 audits by name
    # took a tenth of a second.
    for (
        audit_id, month, standard, kind, status, due_on, submitted_at, auditor_id, role_code,
        team, subject_id, voluntary, additional, source, folded, sampled,
    ) in await connection.execute(
        select(
            AUDIT.c.id,
            AUDIT.c.month,
            AUDIT.c.standard,
            AUDIT.c.kind,
            AUDIT.c.status,
            AUDIT.c.due_on,
            AUDIT.c.submitted_at,
            AUDIT.c.auditor_id,
            STAFF.c.role_code,
            AUDIT.c.team,
            AUDIT.c.subject_worker_id,
            AUDIT.c.voluntary,
            AUDIT.c.additional,
            AUDIT.c.source,
            ratings,
            SAMPLE.c.audit_id,
        )
        .join(STAFF, STAFF.c.id == AUDIT.c.auditor_id)
        .outerjoin(SAMPLE, SAMPLE.c.audit_id == AUDIT.c.id)
        .where(in_range)
    ):  # fmt: skip
        submitted = submitted_at if status == AuditStatus.SUBMITTED else None
        facts.audits.append(
            AuditFacts(
                audit_id=audit_id,
                month=month,
                standard=standard,
                kind=kind,
                status=status,
                due_on=due_on,
                submitted_on=_local_date(submitted, zone),
                auditor_id=auditor_id,
                auditor_role=role_code,
                team=team,
                subject_id=subject_id,
                ratings=_ratings(folded),
                voluntary=voluntary,
                additional=additional,
                imported=source == "import",
                sampled_for_moderation=sampled is not None,
            )
        )

    rated_below = {a.audit_id for a in facts.audits if "below" in a.ratings.values()}
    for quote in await connection.execute(
        select(
            AUDIT.c.id,
            AUDIT.c.month,
            AUDIT.c.standard,
            AUDIT.c.team,
            FEEDBACK.c.what_they_said,
            AUDIT.c.additional,
        )
        .join(FEEDBACK, FEEDBACK.c.audit_id == AUDIT.c.id)
        .where(
            in_range,
            AUDIT.c.status == AuditStatus.SUBMITTED,
            FEEDBACK.c.suitable_for_report.is_(True),
            FEEDBACK.c.what_they_said != "",
        )
        .order_by(AUDIT.c.month, AUDIT.c.id)
    ):
        facts.feedback.append(
            FeedbackQuote(
                quote.id,
                quote.month,
                quote.standard,
                quote.team,
                quote.what_they_said,
                quote.additional,
                quote.id in rated_below,
            )
        )

    auditors_rating = RATING.alias("auditors_rating")
    for (
        audit_id,
        auditor_id,
        criterion_id,
        auditor_rating,
        agrees,
        moderator_rating,
    ) in await connection.execute(
        select(
            AUDIT.c.id,
            AUDIT.c.auditor_id,
            MODERATION_RATING.c.criterion_id,
            auditors_rating.c.rating,
            MODERATION_RATING.c.agrees,
            MODERATION_RATING.c.rating,
        )
        .join(MODERATION, MODERATION.c.audit_id == AUDIT.c.id)
        .join(MODERATION_RATING, MODERATION_RATING.c.audit_id == AUDIT.c.id)
        .join(
            auditors_rating,
            and_(
                auditors_rating.c.audit_id == AUDIT.c.id,
                auditors_rating.c.criterion_id == MODERATION_RATING.c.criterion_id,
            ),
        )
        .where(in_range, MODERATION.c.submitted_at.is_not(None))
    ):
        if auditor_rating is None:
            continue
        moderator = auditor_rating if agrees else moderator_rating
        if moderator is None:
            continue
        facts.moderation.append(
            ModerationPair(audit_id, auditor_id, criterion_id, auditor_rating, moderator)
        )

    facts.actions, facts.names = await actions_and_names(connection)
    return facts


async def actions_and_names(
    connection: AsyncConnection,
) -> tuple[list[ActionFacts], dict[int, str]]:
    """Return every learning action in the order logged, and every person's name by id."""
    actions = [
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
        for action in await connection.execute(select(ACTION).order_by(ACTION.c.id))
    ]
    names = {
        staff_id: name
        for staff_id, name in await connection.execute(select(STAFF.c.id, STAFF.c.name))
    }
    return actions, names


async def known_teams(*, session: AsyncSession) -> set[str]:
    """Return every team an audit was of or someone on the roster is in."""
    connection = await session.connection()
    audited = select(AUDIT.c.team).where(AUDIT.c.team != "").distinct()
    rostered = select(STAFF.c.team).where(STAFF.c.team != "").distinct()
    return {team for (team,) in await connection.execute(audited.union(rostered))}


def _ratings(folded: str | None) -> dict[str, str]:
    # Criterion ids are digits and a dot and ratings are fixed codes, so neither holds the
    # separator, and the pieces alternate: id, rating, id, rating.
    if not folded:
        return {}
    pieces = iter(folded.split(RATINGS_SEPARATOR))
    return dict(zip(pieces, pieces, strict=False))


def _local_date(moment: datetime | str | None, zone: ZoneInfo) -> date | None:
    # Core queries bypass the ORM's column type, so SQLite hands back naive UTC (or text).
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(zone).date()
