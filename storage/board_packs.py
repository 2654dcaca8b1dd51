"""The Board's packs: the draft its owners prepare, and each published version stored whole.

A published version is never changed; the draft (one a month) is what the owners' cards in
Teams read and save, kept in the database so that any owner can carry on where another left.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import BoardPack, BoardPackDraft, utc_now


@dataclass(frozen=True)
class Draft:
    """The month's pack as prepared so far."""

    quote_ids: tuple[int, ...] = ()
    summary: str = ""
    commentary: Mapping[int, str] = field(default_factory=dict)
    action_ids: tuple[int, ...] | None = None  # None: every action the report shows


async def draft_of(*, session: AsyncSession, month: str) -> Draft | None:
    """Return the month's draft, or None if nobody has saved one."""
    row = (await session.exec(select(BoardPackDraft).where(BoardPackDraft.month == month))).first()
    if row is None:
        return None
    actions = json.loads(row.action_ids) if row.action_ids is not None else None
    return Draft(
        quote_ids=tuple(int(i) for i in json.loads(row.quote_ids)),
        summary=row.summary,
        commentary={int(k): str(v) for k, v in json.loads(row.commentary).items()},
        action_ids=tuple(int(i) for i in actions) if actions is not None else None,
    )


async def save_draft(
    *, session: AsyncSession, month: str, draft: Draft, staff_id: int | None
) -> None:
    """Store the month's draft in place of the one before."""
    row = (await session.exec(select(BoardPackDraft).where(BoardPackDraft.month == month))).first()
    if row is None:
        row = BoardPackDraft(month=month, quote_ids="[]", summary="", commentary="{}")
    row.quote_ids = json.dumps(list(draft.quote_ids))
    row.summary = draft.summary
    row.commentary = json.dumps({str(k): v for k, v in sorted(draft.commentary.items())})
    row.action_ids = json.dumps(list(draft.action_ids)) if draft.action_ids is not None else None
    row.updated_by_id = staff_id
    row.updated_at = utc_now()
    session.add(row)
    await session.flush()


async def publish_pack(
    *,
    session: AsyncSession,
    month: str,
    reason: str,
    content: str,
    html: str,
    published_by: str,
    published_at: datetime,
) -> BoardPack:
    """Store the month's next version of the pack and return it."""
    latest = (
        await session.exec(select(func.max(BoardPack.version)).where(BoardPack.month == month))
    ).one()
    pack = BoardPack(
        month=month, version=(latest or 0) + 1, reason=reason, content=content, html=html,
        published_by=published_by, published_at=published_at,
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
