"""The outbox: proactive messages written down before they are sent, each once."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import OutboxMessage, OutboxStatus, utc_now


async def enqueue(
    *,
    session: AsyncSession,
    key: str,
    recipient_id: int,
    purpose: str,
    period: str,
    activity: dict[str, Any],
    audit_id: int | None = None,
) -> tuple[OutboxMessage, bool]:
    """Add a message unless one with this key exists; return it and whether it is new."""
    existing = (
        await session.exec(select(OutboxMessage).where(OutboxMessage.idempotency_key == key))
    ).first()
    if existing is not None:
        return existing, False
    message = OutboxMessage(
        idempotency_key=key,
        recipient_id=recipient_id,
        purpose=purpose,
        period=period,
        audit_id=audit_id,
        activity=json.dumps(activity, separators=(",", ":")),
        status=OutboxStatus.PENDING,
    )
    try:
        async with session.begin_nested():
            session.add(message)
    except IntegrityError:
        # Written by someone else since we looked: theirs is the one.
        existing = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.idempotency_key == key))
        ).one()
        return existing, False
    return message, True


async def pending_for(*, session: AsyncSession, recipient_id: int) -> list[OutboxMessage]:
    """Return a recipient's messages not yet sent, oldest first."""
    rows = await session.exec(
        select(OutboxMessage)
        .where(
            OutboxMessage.recipient_id == recipient_id,
            OutboxMessage.status == OutboxStatus.PENDING,
        )
        .order_by(col(OutboxMessage.id))
    )
    return list(rows)


async def mark_sent(
    *, session: AsyncSession, message: OutboxMessage, activity_id: str | None
) -> None:
    """Record that the message reached Teams."""
    message.status = OutboxStatus.SENT
    message.sent_activity_id = activity_id
    message.sent_at = utc_now()
    message.attempts += 1
    message.last_error = ""
    session.add(message)


async def mark_failed(
    *, session: AsyncSession, message: OutboxMessage, error: str, undeliverable: bool
) -> None:
    """Record a failed attempt; an undeliverable message is not tried again."""
    message.attempts += 1
    message.last_error = error[:300]
    if undeliverable:
        message.status = OutboxStatus.UNDELIVERABLE
    session.add(message)
