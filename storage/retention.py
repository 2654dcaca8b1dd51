"""Erase the words of old audits, keeping their ratings for the statistics.

After the retention period (`PQF_RETENTION_MONTHS`, counted from submission), the free text
of a completed audit — the evidence, what the person or carer said, the reasons given, the
moderator's reasons and comment — is erased; the ratings, dates and who audited whom stay,
so reports over the years still add up. Messages the bot sent (which carry that text too)
are emptied once they are a month old. Audits not yet submitted are never touched.

With a `HeldRetention`, the purge also erases what a roster sync holds of people it could not
place, once no sync has confirmed it for that many days, or all of it when the roster is no
longer synced from the directory (`storage.directory_sync.erase_held_records`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.directory_sync import HeldRetention, erase_held_records
from storage.models import (
    AuditRequest,
    AuditStatus,
    CriterionRating,
    FeedbackCall,
    Moderation,
    ModerationRating,
    OutboxMessage,
    OutboxStatus,
    WorkerInvolvement,
)
from storage.progress import Progress, no_progress

SENT_MESSAGE_DAYS = 31
PURGED = "{}"


@dataclass(frozen=True)
class PurgeReport:
    """What a purge erased (or, in a dry run, would erase)."""

    audits: int
    evidence: int
    feedback: int
    moderations: int
    messages: int
    dry_run: bool
    held: int = 0  # records of people a roster sync could not place


def _months_before(moment: datetime, months: int) -> datetime:
    year, month = moment.year, moment.month - months
    while month < 1:
        month += 12
        year -= 1
    return moment.replace(year=year, month=month, day=min(moment.day, 28))


async def purge(
    *,
    session: AsyncSession,
    now: datetime,
    retention_months: int,
    dry_run: bool,
    progress: Progress = no_progress,
    held: HeldRetention | None = None,
) -> PurgeReport:
    """Erase the free text of audits submitted before the retention period; say what went.

    `held` says how long a roster sync's held records may stay; None leaves them alone.
    """
    cutoff = _months_before(now, retention_months)
    ids = list(
        await session.exec(
            select(AuditRequest.id).where(
                AuditRequest.status == AuditStatus.SUBMITTED,
                col(AuditRequest.submitted_at) < cutoff,
                col(AuditRequest.purged_at).is_(None),
            )
        )
    )
    message_cutoff = now - timedelta(days=SENT_MESSAGE_DAYS)
    messages = (
        select(func.count())
        .select_from(OutboxMessage)
        .where(
            col(OutboxMessage.status).in_([OutboxStatus.SENT, OutboxStatus.UNDELIVERABLE]),
            col(OutboxMessage.created_at) < message_cutoff,
            col(OutboxMessage.activity) != PURGED,
        )
    )
    counts = {
        "evidence": select(func.count())
        .select_from(CriterionRating)
        .where(col(CriterionRating.audit_id).in_(ids), CriterionRating.evidence != ""),
        "feedback": select(func.count())
        .select_from(FeedbackCall)
        .where(col(FeedbackCall.audit_id).in_(ids)),
        "moderations": select(func.count())
        .select_from(Moderation)
        .where(col(Moderation.audit_id).in_(ids)),
    }
    found = {name: int((await session.exec(query)).one()) for name, query in counts.items()}
    message_count = int((await session.exec(messages)).one())
    held_count = (
        await erase_held_records(session=session, now=now, rule=held, dry_run=dry_run)
        if held is not None
        else 0
    )
    if not dry_run:
        erasures = [
            update(CriterionRating)
            .where(col(CriterionRating.audit_id).in_(ids))
            .values(evidence=""),
            update(FeedbackCall)
            .where(col(FeedbackCall.audit_id).in_(ids))
            .values(what_they_said="", no_contact_reason=""),
            update(WorkerInvolvement)
            .where(col(WorkerInvolvement.audit_id).in_(ids))
            .values(reason=""),
            update(ModerationRating)
            .where(col(ModerationRating.audit_id).in_(ids))
            .values(reason=""),
            update(Moderation).where(col(Moderation.audit_id).in_(ids)).values(overall_comment=""),
            update(AuditRequest).where(col(AuditRequest.id).in_(ids)).values(purged_at=now),
        ]
        steps = (erasures if ids else []) + [
            update(OutboxMessage)
            .where(
                col(OutboxMessage.status).in_([OutboxStatus.SENT, OutboxStatus.UNDELIVERABLE]),
                col(OutboxMessage.created_at) < message_cutoff,
                col(OutboxMessage.activity) != PURGED,
            )
            .values(activity=PURGED)
        ]
        for done, statement in enumerate(steps, 1):
            await session.exec(statement)
            progress("erasing", done, len(steps))
    return PurgeReport(
        audits=len(ids),
        evidence=found["evidence"],
        feedback=found["feedback"],
        moderations=found["moderations"],
        messages=message_count,
        dry_run=dry_run,
        held=held_count,
    )
