"""Moderation: claims on sampled audits (first claim wins) and the moderators' verdicts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import report_tally
from storage.models import Moderation, ModerationRating, ModerationSample, utc_now


async def sample_of(*, session: AsyncSession, audit_id: int) -> ModerationSample | None:
    """Return the audit's place in a moderation sample, or None if it was not drawn."""
    return await session.get(ModerationSample, audit_id)


async def claim(*, session: AsyncSession, audit_id: int, moderator_id: int) -> bool:
    """Claim a sampled audit for a moderator; return False if someone claimed it first.

    The audit id is the moderation's primary key, so of two claims at the same instant
    the database keeps one and refuses the other.
    """
    try:
        async with session.begin_nested():
            session.add(Moderation(audit_id=audit_id, moderator_id=moderator_id))
    except IntegrityError:
        return False
    return True


async def moderation_of(*, session: AsyncSession, audit_id: int) -> Moderation | None:
    """Return the claim (and moderation so far) on an audit, or None."""
    return await session.get(Moderation, audit_id)


async def ratings_of(*, session: AsyncSession, audit_id: int) -> dict[str, ModerationRating]:
    """Return the moderator's view of each criterion answered so far."""
    rows = await session.exec(select(ModerationRating).where(ModerationRating.audit_id == audit_id))
    return {r.criterion_id: r for r in rows}


async def take_card(*, session: AsyncSession, audit_id: int, seq: int) -> int | None:
    """Consume the live moderation card `seq`; return the next number, or None if stale."""
    result = await session.exec(
        update(Moderation)
        .where(col(Moderation.audit_id) == audit_id, col(Moderation.card_seq) == seq)
        .values(card_seq=seq + 1)
    )
    return seq + 1 if result.rowcount else None


async def next_card(*, session: AsyncSession, moderation: Moderation) -> int:
    """Return the number for a fresh moderation card (older ones become stale)."""
    moderation.card_seq += 1
    session.add(moderation)
    await session.flush()
    return moderation.card_seq


async def save(
    *,
    session: AsyncSession,
    moderation: Moderation,
    views: dict[str, tuple[bool | None, str | None, str]],
    comment: str,
    submit: bool,
    now: datetime | None = None,
) -> None:
    """Save the moderator's views (agrees, rating, reason) by criterion, and maybe submit.

    A submitted moderation is dated `now` (the bot's clock).
    """
    # The reports' tallies count a submitted moderation's pairs: taken away as they were,
    # added as they now are, in the same transaction.
    await report_tally.untally(session=session, audit_ids=[moderation.audit_id])
    existing = await ratings_of(session=session, audit_id=moderation.audit_id)
    for criterion_id, (agrees, rating, reason) in views.items():
        row = existing.get(criterion_id) or ModerationRating(
            audit_id=moderation.audit_id, criterion_id=criterion_id
        )
        row.agrees = agrees
        row.rating = rating
        row.reason = reason
        session.add(row)
    moderation.overall_comment = comment
    if submit:
        moderation.submitted_at = now or utc_now()
    session.add(moderation)
    await report_tally.tally(session=session, audit_ids=[moderation.audit_id])
