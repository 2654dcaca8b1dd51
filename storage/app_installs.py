"""Installing the personal app for people through Graph: who still needs it, and how it went.

One row per person (by Entra object id) once the installer has tried: installed, pending
(will be tried again at `retry_at`) or refused (Graph's status and reason). A stored chat
(`teams_conversation`) is what makes a person reachable; this only says why one is missing.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlmodel import col, exists, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import InstallState, Staff, TeamsAppInstall, TeamsConversation

_REASON_LENGTH = 300


async def people_to_install(*, session: AsyncSession, now: datetime) -> list[Staff]:
    """Return active people with an Entra id, no stored chat, and no try still to wait for."""
    statement = (
        select(Staff)
        .outerjoin(TeamsAppInstall, col(TeamsAppInstall.aad_object_id) == col(Staff.aad_object_id))
        .where(
            col(Staff.active).is_(True),
            col(Staff.aad_object_id).is_not(None),
            ~exists().where(col(TeamsConversation.aad_object_id) == col(Staff.aad_object_id)),
            or_(
                col(TeamsAppInstall.retry_at).is_(None),
                col(TeamsAppInstall.retry_at) <= now,
            ),
        )
        .order_by(col(Staff.id))
    )
    return list(await session.exec(statement))


async def record_install(
    *,
    session: AsyncSession,
    aad_object_id: str,
    state: InstallState,
    now: datetime,
    status: int = 0,
    reason: str = "",
    retry_at: datetime | None = None,
) -> TeamsAppInstall:
    """Record how installing the app for this person went; count the try."""
    key = aad_object_id.lower()
    row = await session.get(TeamsAppInstall, key)
    if row is None:
        row = TeamsAppInstall(aad_object_id=key, state=state)
    row.state = state
    row.status = status
    row.reason = reason[:_REASON_LENGTH]
    row.attempts += 1
    row.tried_at = now
    row.retry_at = retry_at
    session.add(row)
    await session.flush()
    return row


async def installs_of(
    *, session: AsyncSession, aad_object_ids: Collection[str]
) -> dict[str, TeamsAppInstall]:
    """Return the install records of these people, by lower-cased Entra object id."""
    keys = {a.lower() for a in aad_object_ids if a}
    if not keys:
        return {}
    rows = await session.exec(
        select(TeamsAppInstall).where(col(TeamsAppInstall.aad_object_id).in_(keys))
    )
    return {r.aad_object_id: r for r in rows}


async def tenant_service_url(*, session: AsyncSession, tenant_id: str | None) -> str | None:
    """Return the service URL of the most recently stored chat (in this tenant, if named)."""
    statement = select(TeamsConversation.service_url).where(
        col(TeamsConversation.installed).is_(True)
    )
    if tenant_id:
        statement = statement.where(
            or_(
                col(TeamsConversation.tenant_id) == tenant_id.lower(),
                col(TeamsConversation.tenant_id) == tenant_id,
            )
        )
    statement = statement.order_by(col(TeamsConversation.updated_at).desc()).limit(1)
    return (await session.exec(statement)).first()
