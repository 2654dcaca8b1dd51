"""The Board's published packs: each version stored whole, never changed once published."""

from __future__ import annotations

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import BoardPack


async def publish_pack(
    *, session: AsyncSession, month: str, reason: str, content: str, html: str, published_by: str
) -> BoardPack:
    """Store the month's next version of the pack and return it."""
    latest = (
        await session.exec(select(func.max(BoardPack.version)).where(BoardPack.month == month))
    ).one()
    pack = BoardPack(
        month=month, version=(latest or 0) + 1, reason=reason, content=content, html=html,
        published_by=published_by,
    )  # fmt: skip
    session.add(pack)
    await session.flush()
    return pack


async def published_pack(
    *, session: AsyncSession, month: str, version: int | None = None
) -> BoardPack | None:
    """Return a version of the month's pack (the latest without one), or None."""
    query = select(BoardPack).where(BoardPack.month == month)
    if version is not None:
        query = query.where(BoardPack.version == version)
    return (await session.exec(query.order_by(col(BoardPack.version).desc()))).first()


async def pack_versions(*, session: AsyncSession, month: str) -> list[BoardPack]:
    """Return every published version of the month's pack, the first first."""
    return list(
        await session.exec(
            select(BoardPack).where(BoardPack.month == month).order_by(col(BoardPack.version))
        )
    )
