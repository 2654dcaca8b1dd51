"""What the report summary reads beyond the report: the latest month reported, one's own audits."""

from __future__ import annotations

from collections import Counter

from sqlmodel import col, func, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import AuditRequest, AuditStatus, CriterionRating


async def latest_submitted_month(*, session: AsyncSession, up_to: str) -> str | None:
    """Return the latest month, up to `up_to` ('YYYY-MM'), with a submitted audit, or None."""
    return (
        await session.exec(
            select(func.max(AuditRequest.month)).where(
                AuditRequest.status == AuditStatus.SUBMITTED,
                col(AuditRequest.month) <= up_to,
            )
        )
    ).one()


async def audits_involving(
    *, session: AsyncSession, staff_id: int | None, first_month: str, last_month: str, limit: int
) -> list[AuditRequest]:
    """Return the latest audits of the months done by the person or of their work."""
    return list(
        await session.exec(
            select(AuditRequest)
            .where(
                col(AuditRequest.month) >= first_month,
                col(AuditRequest.month) <= last_month,
                or_(
                    AuditRequest.auditor_id == staff_id,
                    AuditRequest.subject_worker_id == staff_id,
                ),
            )
            .order_by(col(AuditRequest.month).desc(), col(AuditRequest.id))
            .limit(limit)
        )
    )


async def rating_counts(*, session: AsyncSession, audit_id: int) -> Counter[str | None]:
    """Return how many of an audit's criteria were given each rating."""
    return Counter(
        await session.exec(
            select(CriterionRating.rating).where(CriterionRating.audit_id == audit_id)
        )
    )
