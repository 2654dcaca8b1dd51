"""The instances on one database, and which of them sends the outbox: the rows of both.

Every instance writes a heartbeat to `send_member` (when it was last seen, and the
requests per second it allows its answers to people); the instances that may send also
try to take or renew the lease in `send_leader`. The lease goes to one holder at a
time: it is taken only from its holder or once it has lapsed, in one conditional UPDATE
(PostgreSQL re-reads a row another transaction changed meanwhile before it applies the
condition; SQLite has one writer). When to renew and when to stop sending is decided in
`delivery.leader`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, func, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import SendLeader, SendMember

OUTBOX = "outbox"
# A member not seen for this long is forgotten (it stopped, or died long ago).
FORGET_AFTER = timedelta(hours=1)


@dataclass(frozen=True)
class Heartbeat:
    """What one heartbeat found: the lease (if it holds it) and the other living instances."""

    leader: bool
    term: int  # the lease's term if held, else 0
    others: int  # other instances seen within `stale`
    others_share: float  # the sum of their shares


async def heartbeat(
    *,
    session: AsyncSession,
    instance: str,
    now: datetime,
    share: float,
    stale: timedelta,
    lease: timedelta | None,
) -> Heartbeat:
    """Record this instance as living; take or renew the lease if `lease` is given."""
    await _seen(session, instance, now, share)
    term = 0
    if lease is not None:
        term = await _take_or_renew(session, instance, now, now + lease)
    count, total = (
        await session.exec(
            select(func.count(), func.coalesce(func.sum(SendMember.share), 0.0)).where(
                col(SendMember.instance) != instance, col(SendMember.seen_at) > now - stale
            )
        )
    ).one()
    await session.exec(delete(SendMember).where(col(SendMember.seen_at) < now - FORGET_AFTER))
    return Heartbeat(leader=term > 0, term=term, others=int(count), others_share=float(total))


async def _seen(session: AsyncSession, instance: str, now: datetime, share: float) -> None:
    result = await session.exec(
        update(SendMember)
        .where(col(SendMember.instance) == instance)
        .values(seen_at=now, share=share)
    )
    if result.rowcount == 0:
        # Only this instance writes its own row: no one else can insert it meanwhile.
        await session.exec(insert(SendMember).values(instance=instance, seen_at=now, share=share))


async def _take_or_renew(
    session: AsyncSession, instance: str, now: datetime, until: datetime
) -> int:
    """Return the lease's term if this instance holds it now, else 0."""
    mine = col(SendLeader.holder) == instance
    rows = await session.exec(
        update(SendLeader)
        .where(
            col(SendLeader.role) == OUTBOX,
            mine | (col(SendLeader.until) <= now),
        )
        .values(
            holder=instance,
            until=until,
            since=case((mine, col(SendLeader.since)), else_=now),
            term=case((mine, col(SendLeader.term)), else_=col(SendLeader.term) + 1),
        )
        .returning(col(SendLeader.term))
    )
    term = rows.first()
    if term is not None:
        return int(term[0])
    if await session.get(SendLeader, OUTBOX) is not None:
        return 0  # held by another instance
    try:
        async with session.begin_nested():
            await session.exec(
                insert(SendLeader).values(
                    role=OUTBOX, holder=instance, until=until, since=now, term=1
                )
            )
    except IntegrityError:
        return 0  # another instance made the row first, and holds it
    return 1


async def resign(*, session: AsyncSession, instance: str, now: datetime) -> bool:
    """Give up the lease if this instance holds it (another may take it at once)."""
    result = await session.exec(
        update(SendLeader)
        .where(col(SendLeader.role) == OUTBOX, col(SendLeader.holder) == instance)
        .values(until=now)
    )
    await session.exec(delete(SendMember).where(col(SendMember.instance) == instance))
    return bool(result.rowcount)


async def leader(*, session: AsyncSession, now: datetime) -> SendLeader | None:
    """Return the lease if someone holds it now."""
    found = await session.get(SendLeader, OUTBOX)
    if found is None or found.until <= now:
        return None
    return found
