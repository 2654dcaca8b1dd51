"""What the monthly jobs read and write beyond the dispatch: reminders, digests, samples."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    AuditRequest,
    AuditStatus,
    AuditStatusChange,
    ModerationSample,
    Staff,
)


async def unfinished_requests(*, session: AsyncSession, month: str) -> list[AuditRequest]:
    """Return the month's requested (not voluntary) audits not submitted yet."""
    return list(
        await session.exec(
            select(AuditRequest).where(
                AuditRequest.month == month,
                AuditRequest.status != AuditStatus.SUBMITTED,
                col(AuditRequest.voluntary).is_(False),
            )
        )
    )


async def submitted_requests(*, session: AsyncSession, month: str) -> list[AuditRequest]:
    """Return the month's requested (not voluntary) audits that were submitted."""
    return list(
        await session.exec(
            select(AuditRequest).where(
                AuditRequest.month == month,
                AuditRequest.status == AuditStatus.SUBMITTED,
                col(AuditRequest.voluntary).is_(False),
            )
        )
    )


async def requests_of(*, session: AsyncSession, auditor_id: int, month: str) -> list[AuditRequest]:
    """Return the audits a person was asked for in a month (not the voluntary ones)."""
    return list(
        await session.exec(
            select(AuditRequest).where(
                AuditRequest.auditor_id == auditor_id,
                AuditRequest.month == month,
                col(AuditRequest.voluntary).is_(False),
            )
        )
    )


async def team_of(*, session: AsyncSession, manager_id: int | None) -> list[Staff]:
    """Return the people a manager supervises, by name."""
    return list(
        await session.exec(
            select(Staff).where(Staff.supervisor_id == manager_id).order_by(col(Staff.name))
        )
    )


async def supervisor_ids(*, session: AsyncSession) -> list[int]:
    """Return the ids of everyone an active member of staff reports to, in order."""
    found = set(
        await session.exec(
            select(Staff.supervisor_id).where(
                col(Staff.supervisor_id).is_not(None), col(Staff.active).is_(True)
            )
        )
    )
    return sorted(i for i in found if i is not None)


async def active_staff_in_roles(
    *, session: AsyncSession, role_codes: Collection[str]
) -> list[Staff]:
    """Return the active staff holding any of these roles, by id."""
    return list(
        await session.exec(
            select(Staff)
            .where(col(Staff.role_code).in_(role_codes), col(Staff.active).is_(True))
            .order_by(col(Staff.id))
        )
    )


async def mark_overdue(*, session: AsyncSession, month: str, now: datetime) -> int:
    """Mark the month's requested audits not submitted (nor marked yet) overdue; count them."""
    late = list(
        await session.exec(
            select(AuditRequest).where(
                AuditRequest.month == month,
                AuditRequest.status != AuditStatus.SUBMITTED,
                col(AuditRequest.overdue_at).is_(None),
                col(AuditRequest.voluntary).is_(False),
            )
        )
    )
    for audit in late:
        assert audit.id is not None
        session.add(
            AuditStatusChange(audit_id=audit.id, status=AuditStatus.OVERDUE, note="month end")
        )
    if late:
        await session.exec(
            update(AuditRequest)
            .where(col(AuditRequest.id).in_([a.id for a in late]))
            .values(overdue_at=now)
        )
    return len(late)


async def sample_of_month(*, session: AsyncSession, month: str) -> list[ModerationSample]:
    """Return the audits drawn for a month's moderation sample."""
    return list(await session.exec(select(ModerationSample).where(ModerationSample.month == month)))


async def sampled_months(*, session: AsyncSession) -> list[str]:
    """Return the months that have a moderation sample, oldest first."""
    return sorted(set(await session.exec(select(ModerationSample.month))))


async def add_to_sample(*, session: AsyncSession, month: str, audit_ids: Collection[int]) -> None:
    """Put these audits in the month's moderation sample."""
    for audit_id in audit_ids:
        session.add(ModerationSample(audit_id=audit_id, month=month))
    await session.flush()
